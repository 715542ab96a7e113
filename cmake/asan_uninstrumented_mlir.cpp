// Linked into the binaries that use Debian's uninstrumented libMLIR, only in an AddressSanitizer
// build (cmake/MMSanitize.cmake explains why): ASan ignores manual poisoning there. The options in
// ASAN_OPTIONS still apply on top of these defaults.
extern "C" const char* __asan_default_options() { return "allow_user_poisoning=0"; }
