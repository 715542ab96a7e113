#!/usr/bin/env python3
"""The markdown fragment for docs/benchmarks.md from the output folders of `scripts/bench.sh run`.

usage: bench_report.py OUT... > fragment.md

The device tool gives every command a fresh output folder, so the steps of one benchmark run may
lie in several folders: a file found in more than one is taken from the last folder given. The
settings shown in the commands come from the environment bench.sh ran with (PP, TG, DEPTHS, RUNS,
RUNS16, LOAD_RUNS; the defaults otherwise).
"""
import glob
import os
import re
import sys


def main(dirs):
    env = {k: os.environ.get(k, d) for k, d in (("PP", "2048"), ("TG", "32"), ("DEPTHS", "0,2048,16384"),
                                                 ("RUNS", "3"), ("RUNS16", "2"), ("LOAD_RUNS", "2"))}

    def read(name):
        found = [os.path.join(d, name) for d in dirs if os.path.exists(os.path.join(d, name))]
        return open(found[-1]).read().strip() if found else None

    dev = read("device.txt") or ""
    lines = dev.splitlines()
    gpu = next((l for l in lines if l.startswith("GPU ")), "GPU: see device.txt")
    date = lines[0] if lines else "(date: device step not run)"
    commit = next((l for l in lines if re.fullmatch(r"[0-9a-f]{40}", l)), "unknown")
    out = [f"## Measured {date}\n",
           f"Device: {gpu}; source commit {commit}. Produced by `scripts/bench.sh run` "
           "(raw logs in its output folders).\n"]
    common = f"--depth {env['DEPTHS']} --pp {env['PP']}"
    sections = [
        ("Decode and prefill, 62 layers, bf16 KV cache (random weights)", ["bf16-b1.md", "bf16-b16.md"],
         f"mmrun bench full62.mmp --weights random --batch 1|16 {common} --tg {env['TG']} "
         f"--runs {env['RUNS']}|{env['RUNS16']}"),
        ("Decode and prefill, 62 layers, fp8 KV cache (random weights)", ["fp8-b1.md", "fp8-b16.md"],
         f"mmrun bench full62-fp8.mmp --weights random --batch 1|16 {common} --tg {env['TG']} "
         f"--runs {env['RUNS']}|{env['RUNS16']}"),
        ("24 layers at the llama.cpp peer's settings (random weights)", ["mmc24.md"],
         f"mmrun bench full24.mmp --weights random --batch 1 {common} --tg 128 --runs 2"),
        ("Weight loading: 24-layer real-bytes checkpoint, cold page cache", ["load.md", "load-buffered.md"],
         "mm-synth --preset minimax-m2.7-reap-172b --layers 24 --out DIR; sync; echo 3 > /proc/sys/vm/drop_caches\n"
         f"mmrun bench full24.mmp --weights DIR --load --runs {env['LOAD_RUNS']}\n"
         "mmrun bench full24.mmp --weights DIR --load --load-io buffered --runs 1"),
    ]
    for title, files, cmd in sections:
        parts = [read(f) for f in files]
        if not any(parts):
            continue
        out.append(f"### {title}\n\n```\n{cmd}\n```\n")
        out += [p + "\n" for p in parts if p]
    gen = read("load-generate.log")
    if gen:
        keep = [l.strip() for l in gen.splitlines()
                if re.search(r"^(backend|cuda )|Maximum resident|Elapsed \(wall", l.strip())]
        out.append("Start-up through `mmrun generate full24.mmp --weights DIR` (cold page cache, "
                   "`/usr/bin/time -v`):\n\n```\n" + "\n".join(keep) + "\n```\n")
    k = read("kernels.log")
    if k:
        bench = [l for l in k.splitlines() if l.startswith("[bench]")]
        if bench:
            out.append("### Decode kernels (`kernels_gpu_test --gtest_filter='GpuBench.*'`)\n\n```\n" +
                       "\n".join(bench) + "\n```\n")
    peer = sorted({os.path.basename(p): p for d in dirs
                   for p in glob.glob(os.path.join(d, "peer", "bench_N*_*.md"))}.values())
    if peer:
        out.append("### llama.cpp peer (`run_peer.sh 24`: llama-bench -ngl 99 -fa 1, Q4_K, 24 layers)\n")
        out += [open(p).read().strip() + "\n" for p in peer]
    steps = [l for d in dirs if os.path.exists(os.path.join(d, "summary.txt"))
             for l in open(os.path.join(d, "summary.txt")).read().splitlines() if l]
    if steps:
        out.append("Steps: " + "; ".join(steps) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
