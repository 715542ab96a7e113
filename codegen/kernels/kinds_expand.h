// Expands the registry (kinds.def) with the MM_* macros the includer defined; the others expand to
// nothing. Every macro is undefined afterwards, so the file can be included again.
#ifndef MM_KIND
#define MM_KIND(NAME, Struct, ref, file, uses_w4)
#endif
#ifndef MM_OPERAND
#define MM_OPERAND(name, ctype, io, present, shape)
#endif
#ifndef MM_ALIAS
#define MM_ALIAS(name, ctype, io, present, shape)
#endif
#ifndef MM_INT
#define MM_INT(name, lo, hi)
#endif
#ifndef MM_INT_DEF
#define MM_INT_DEF(name, def, lo, hi)
#endif
#ifndef MM_FLOAT
#define MM_FLOAT(name, lo, hi)
#endif
#ifndef MM_REQUIRE
#define MM_REQUIRE(cond, message)
#endif
#ifndef MM_DERIVED
#define MM_DERIVED(name)
#endif
#ifndef MM_END
#define MM_END()
#endif
#include "codegen/kernels/kinds.def"
#undef MM_KIND
#undef MM_OPERAND
#undef MM_ALIAS
#undef MM_INT
#undef MM_INT_DEF
#undef MM_FLOAT
#undef MM_REQUIRE
#undef MM_DERIVED
#undef MM_END
