# The two ceilings of a GPU run, for the ratios of the prefill benches (scripts/gpu_check.sh prefill):
# the FLOP rate of a bf16 cuBLAS GEMM (torch.matmul on random data; the square one and the prefill
# shapes of q|k|v and o_proj at 2048 tokens) and the bandwidth of a 4 GiB device-to-device copy
# (bytes read + written). Needs python3 with torch on the GPU machine.
import torch
def bench(fn, iters):
    for _ in range(3): fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); b.synchronize(); ts.append(a.elapsed_time(b))
    ts.sort(); return ts[len(ts) // 2] / 1e3
print(torch.cuda.get_device_name(0), torch.__version__)
for m, n, k in [(8192, 8192, 8192), (2048, 8192, 3072), (2048, 3072, 6144)]:
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16); w = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
    t = bench(lambda: x @ w, 20)
    print(f"ceiling bf16 GEMM {m}x{n}x{k}: {t*1e6:9.1f} us {2*m*n*k/t/1e12:7.1f} TFLOP/s")
src = torch.empty(4 << 30, dtype=torch.uint8, device="cuda"); src.random_(0, 255); dst = torch.empty_like(src)
t = bench(lambda: dst.copy_(src), 10)
print(f"ceiling device copy 4 GiB: {t*1e3:8.2f} ms {2*src.numel()/t/1e9:7.1f} GB/s (read + write)")
