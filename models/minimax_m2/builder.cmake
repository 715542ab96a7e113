# MMMiniMaxM2Builder: emits the moe-dialect module (weights + prefill + decode) of a ModelDesc.
# Included by CMakeLists.txt when MM_BUILD_COMPILER is on; the dialect target comes from dialects/.
# PARTIAL_SOURCES_INTENDED: arch.cpp in this folder belongs to mm_minimax_m2_arch (MLIR-free).
add_mlir_library(MMMiniMaxM2Builder
  Builder.cpp
  PARTIAL_SOURCES_INTENDED
  DEPENDS MMMoEOpsIncGen
  DISABLE_INSTALL)
target_link_libraries(MMMiniMaxM2Builder PUBLIC MMMoEDialect mm_checkpoint mm_minimax_m2_arch)
mlir_target_link_libraries(MMMiniMaxM2Builder PUBLIC MLIRIR MLIRFuncDialect MLIRSupport)
