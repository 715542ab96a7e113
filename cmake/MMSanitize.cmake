# Sanitizer and fuzzing configurations (docs/reliability.md).
#
# MM_SANITIZE=address,undefined builds every target with AddressSanitizer and
# UndefinedBehaviorSanitizer; a finding ends the process with an error (no recovery), so the test
# suite fails on it. Debian's libMLIR is not instrumented: the LLVM headers our code includes
# poison and unpoison BumpPtrAllocator slabs (LLVM_ADDRESS_SANITIZER_BUILD) that the library's
# own uninstrumented code then hands out without unpoisoning, so ASan's manual-poisoning checks
# cannot be right in a binary linking it. mm_uninstrumented_mlir(target) links those binaries
# (mmc, mm-opt) with ASan defaults that ignore manual poisoning (allow_user_poisoning=0); every
# other check stays on, and no other binary is affected.
#
# MM_BUILD_FUZZERS=ON (clang only) instruments everything for libFuzzer's coverage and builds the
# fuzz targets of test/fuzz.
set(MM_SANITIZE "" CACHE STRING "Sanitizers to build with, e.g. address,undefined (empty: none)")
option(MM_BUILD_FUZZERS "Build the libFuzzer targets of test/fuzz (needs clang)" OFF)

if(MM_SANITIZE)
  # Line tables only: file:line in every report at a fraction of full debug info's compile time.
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    add_compile_options(-fsanitize=${MM_SANITIZE} -fno-omit-frame-pointer -gline-tables-only)
  else()
    add_compile_options(-fsanitize=${MM_SANITIZE} -fno-omit-frame-pointer -g1)
  endif()
  add_link_options(-fsanitize=${MM_SANITIZE})
  if(MM_SANITIZE MATCHES "undefined")
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
  if(MM_SANITIZE MATCHES "address")
    # Tests that measure resident memory skip that check: ASan's redzones and quarantine change it.
    add_compile_definitions(MM_SANITIZE_ADDRESS=1)
  endif()
endif()

if(MM_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MM_BUILD_FUZZERS needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++-22 "
                        "-DCMAKE_C_COMPILER=clang-22")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

function(mm_uninstrumented_mlir target)
  if(MM_SANITIZE MATCHES "address")
    target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/cmake/asan_uninstrumented_mlir.cpp)
  endif()
endfunction()
