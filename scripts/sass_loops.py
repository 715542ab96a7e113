#!/usr/bin/env python3
"""Instruction mix of the loops of one generated kernel, from its SASS (no GPU needed).

usage: sass_loops.py [--arch sm_90] [--all] KIND NAME=VALUE ...
       sass_loops.py --sass FILE.sass [--all]

Prints, for every loop (a backward branch) that issues mma (HMMA) or cp.async (LDGSTS), its length
in instructions, its mma count, instructions per mma and the most frequent opcodes (--all: every
loop). A loop body is counted statically: branches inside it that run only on some iterations
(the group-end scaling of the W4 cores, the mask of diagonal attention tiles) count in full.
This is how the prefill W4 core and the attention loader were found issue-bound (docs/
benchmarks.md, fourth session): an mma on sm_90 takes about 6.5 cycles of a scheduler's tensor
pipe, so a loop near or above 6 instructions per mma cannot keep the tensor cores busy.

The kernel source comes from build/bin/mm-kernel-src (the specializer's parameters, as lit uses
it), the cubin from /usr/local/cuda/bin/nvcc -cubin, the listing from nvdisasm: the CUDA toolkit
here has none; `pip install nvidia-cuda-nvdisasm` brings one (nvidia/cu13/bin/nvdisasm inside the
package, found through the module path) or set NVDISASM.
"""
import argparse
import collections
import glob
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_nvdisasm():
    if os.environ.get("NVDISASM"):
        return os.environ["NVDISASM"]
    for d in sys.path:
        for c in glob.glob(os.path.join(d, "nvidia", "cu*", "bin", "nvdisasm")):
            return c
    for c in ("/usr/local/cuda/bin/nvdisasm",):
        if os.path.exists(c):
            return c
    sys.exit("sass_loops.py: no nvdisasm (pip install nvidia-cuda-nvdisasm, or set NVDISASM)")


def sass_of(kind_args, arch):
    src = subprocess.run([os.path.join(ROOT, "build", "bin", "mm-kernel-src")] + kind_args, check=True,
                         capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        cu, cubin = os.path.join(tmp, "k.cu"), os.path.join(tmp, "k.cubin")
        with open(cu, "w") as f:
            f.write(src)
        r = subprocess.run(["/usr/local/cuda/bin/nvcc", "-arch=" + arch, "-cubin", "-O3", "-Xptxas", "-v", "-o", cubin,
                            cu], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(r.stderr)
        usage = [l.strip() for l in r.stderr.splitlines() if "registers" in l or "spill" in l]
        return subprocess.run([find_nvdisasm(), "-c", cubin], check=True, capture_output=True, text=True).stdout, usage


def loops(sass):
    """(label, body opcodes) per backward branch, in program order."""
    insts, labels = [], {}
    for line in sass.splitlines():
        m = re.match(r"^\s*(\.L_x_\d+):", line)
        if m:
            labels[m.group(1)] = len(insts)
            continue
        m = re.search(r"/\*[0-9a-f]{4,}\*/\s+(.*?);", line)
        if m:
            insts.append(m.group(1).strip())
    for i, text in enumerate(insts):
        m = re.search(r"BRA\s+`\((\.L_x_\d+)\)", text)
        if m and m.group(1) in labels and labels[m.group(1)] <= i:
            ops = []
            for t in insts[labels[m.group(1)]:i + 1]:
                words = t.split()
                op = words[1] if words[0].startswith("@") and len(words) > 1 else words[0]
                ops.append(op.split(".")[0])
            yield m.group(1), ops


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("--sass", help="a listing of nvdisasm -c instead of a kernel to build")
    ap.add_argument("--all", action="store_true", help="every loop, not only those with mma or cp.async")
    ap.add_argument("kernel", nargs="*", help="KIND NAME=VALUE ... as for mm-kernel-src")
    a = ap.parse_args()
    if a.sass:
        sass, usage = open(a.sass).read(), []
    elif a.kernel:
        sass, usage = sass_of(a.kernel, a.arch)
    else:
        ap.error("give a kernel (KIND NAME=VALUE ...) or --sass FILE")
    for u in usage:
        print(u)
    for label, ops in loops(sass):
        c = collections.Counter(ops)
        if not (a.all or c["HMMA"] or c["LDGSTS"]):
            continue
        per = f"{len(ops) / c['HMMA']:.2f} per mma" if c["HMMA"] else "no mma"
        mix = " ".join(f"{k}:{v}" for k, v in c.most_common(12))
        print(f"loop {label}: {len(ops)} instructions, {c['HMMA']} mma ({per}), {c['LDGSTS']} cp.async | {mix}")


if __name__ == "__main__":
    main()
