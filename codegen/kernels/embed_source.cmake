# cmake -DIN=<file> -DOUT=<cpp> -DNAME=<file name> -P embed_source.cmake
# Writes a C++ file that defines the text of IN as a raw string, registered under NAME.
file(READ "${IN}" text)
string(MAKE_C_IDENTIFIER "${NAME}" ident)
file(WRITE "${OUT}" "// Generated from ${NAME} by codegen/kernels/embed_source.cmake. Do not edit.\n"
     "namespace mm::kernels::embedded {\nextern const char* const ${ident};\n"
     "const char* const ${ident} = R\"mmsrc(${text})mmsrc\";\n}\n")
