//===- Passes.td - exec dialect passes ---------------------*- tablegen -*-===//
#ifndef MM_EXEC_PASSES_TD
#define MM_EXEC_PASSES_TD

include "mlir/Pass/PassBase.td"

def ExecPlanMemory : Pass<"exec-plan-memory", "mlir::ModuleOp"> {
  let summary = "Assign arena offsets to program buffers from their live ranges";
  let description = [{
    For each `exec.program`, a buffer is live from the first to the last launch that names it.
    Buffers are placed largest first at the lowest `alignment`-aligned offset that overlaps no
    placed buffer with an intersecting live range; the program's `arena_bytes` is the peak end.
    A buffer no launch uses is an error (the lowering made it for nothing).

    ```mlir
    // before: exec.buffer @a {size = 100 : i64}  (live in launches 0..1)
    //         exec.buffer @b {size = 100 : i64}  (live in launches 2..3)
    // after:  both at offset 0, arena_bytes = 256
    ```
  }];
  let options = [
    Option<"alignment", "alignment", "int64_t", /*default=*/"256",
           "byte alignment of every buffer offset">,
    Option<"report", "report", "bool", /*default=*/"false",
           "emit a remark with each program's peak and the sum of its buffers">,
  ];
  let dependentDialects = ["mm::exec::ExecDialect"];
}

#endif // MM_EXEC_PASSES_TD
