"""Synthesizes the tiny MiniMax-shaped checkpoint and compiles the plan the mmrun serve tests use
(16 sequences per decode batch, so that 16 clients run at once).

Usage: make_model.py BIN_DIR OUT_DIR   -> OUT_DIR/model (checkpoint), OUT_DIR/tiny.mmp
"""
import os
import subprocess
import sys

bin_dir, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
subprocess.run([os.path.join(bin_dir, "mm-synth"), "--preset", "tiny", "--seed", "0", "--force",
                "--out", os.path.join(out, "model")], check=True, stdout=subprocess.DEVNULL)
subprocess.run([os.path.join(bin_dir, "mmc"), "compile", os.path.join(out, "model"), "-o",
                os.path.join(out, "tiny.mmp"), "--target", "sm_90", "--max-batch", "16", "--max-seq-len", "4096"],
               check=True)
print("model and plan in", out)
