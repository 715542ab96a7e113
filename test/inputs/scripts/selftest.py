#!/usr/bin/env python3
"""Self-test of the Python test tooling (standard library only, runs in CI).

  - make_checkpoint.py: both variants are written in the exact format (safetensors layout,
    dtypes and shapes of spec 2, GPTQ packing and AutoRound's symmetric rule of spec 4.1 checked
    against the regenerated bf16 masters, configs, index), deterministically per seed.
  - teacher_forced.py: .npy round trip; the committed goldens pass against themselves; a
    disagreement at a decisive step fails, one at a near tie passes; --drive re-prompts a fake
    runtime after each disagreement and scores every step on HF's path.
Usage: selftest.py [--keep DIR]
"""

import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from array import array

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_checkpoint as mc  # noqa: E402
import teacher_forced as tf  # noqa: E402

GOLDEN_DIR = os.path.join(HERE, "..", "golden")
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL: " + what)


# ----------------------------------------------------------------------------------------------
# A minimal independent safetensors reader

DTYPE_SIZE = {"BF16": 2, "F16": 2, "F32": 4, "I32": 4}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    check((8 + n) % 8 == 0, "%s: data region not 8-byte aligned" % path)
    base = 8 + n
    tensors, ends = {}, []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        count = 1
        for d in info["shape"]:
            count *= d
        check(e - b == count * DTYPE_SIZE[info["dtype"]], "%s: byte length" % name)
        ends.append((b, e))
        tensors[name] = (info["dtype"], info["shape"], data[base + b:base + e])
    ends.sort()
    pos = 0
    for b, e in ends:
        check(b == pos, "%s: gap or overlap at %d" % (path, b))
        pos = e
    check(base + pos == len(data), "%s: trailing bytes" % path)
    return tensors


def load_dir(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    out = {}
    if os.path.exists(idx):
        wm = json.load(open(idx))["weight_map"]
        for f in sorted(set(wm.values())):
            t = read_safetensors(os.path.join(d, f))
            for name in t:
                check(wm.get(name) == f, "%s: index says %s, found in %s" % (name, wm.get(name), f))
            out.update(t)
        check(set(wm) == set(out), "index and shards disagree")
    else:
        out = read_safetensors(os.path.join(d, "model.safetensors"))
    return out


def u32(b):
    a = array("I", b)
    if sys.byteorder != "little":
        a.byteswap()
    return a


def f16s(b):
    return struct.unpack("<%de" % (len(b) // 2), b)


# ----------------------------------------------------------------------------------------------

def check_linear(t, a, prefix, k_in, n_out, gptq, full):
    qw, qz, sc = (t.get(prefix + s) for s in (".qweight", ".qzeros", ".scales"))
    check(qw is not None and qw[0] == "I32" and qw[1] == [k_in // 8, n_out], prefix + ".qweight")
    check(qz is not None and qz[0] == "I32" and qz[1] == [k_in // 128, n_out // 8],
          prefix + ".qzeros")
    check(sc is not None and sc[0] == "F16" and sc[1] == [k_in // 128, n_out], prefix + ".scales")
    check(all(w == 0x77777777 for w in u32(qz[2])), prefix + ": qzeros not all 0x77777777")
    gi = t.get(prefix + ".g_idx")
    if gptq:
        check(gi is not None and gi[0] == "I32" and gi[1] == [k_in]
              and list(u32(gi[2])) == [k // 128 for k in range(k_in)], prefix + ".g_idx")
    else:
        check(gi is None, prefix + ": g_idx in the auto-round variant")
    if not full:
        return 0
    # Dequantize (spec 4.1) and compare with the regenerated bf16 master.
    words, scales = u32(qw[2]), f16s(sc[2])
    table = mc.value_table(0.0, 1.0 / math.sqrt(k_in), "master")
    idx = mc.uniform16(mc.tensor_rng(a.seed, prefix + ".weight"), n_out * k_in)
    neg = 0
    for n in range(n_out):
        for g in range(k_in // 128):
            s = scales[g * n_out + n]
            neg += s < 0
            qs = [(words[(k >> 3) * n_out + n] >> (4 * (k & 7))) & 0xF
                  for k in range(g * 128, g * 128 + 128)]
            master = [table[i] for i in idx[n * k_in + g * 128:n * k_in + g * 128 + 128]]
            check(0 in qs, "%s n=%d g=%d: no element on -8" % (prefix, n, g))
            big = max(range(128), key=lambda j: abs(master[j]))
            check(qs[big] == 0, "%s n=%d g=%d: largest-magnitude element not on -8" % (prefix, n, g))
            for q, w in zip(qs, master):
                err = abs((q - 8) * s - w)
                if err > abs(s) * 0.5 + 1e-6 and not (q == 15 and w / s > 7.5):
                    check(False, "%s n=%d g=%d: |W - master| = %g > |scale|/2" % (prefix, n, g, err))
                    return neg
    return neg


def test_make_checkpoint(tmp):
    shapes = dict(hidden=256, intermediate=256, layers=2, heads=4, kv_heads=2, head_dim=64,
                  rotary_dim=32, experts=3, top_k=2, vocab=96)
    flags = []
    for k, v in shapes.items():
        flags += ["--" + k.replace("_", "-"), str(v)]
    for quant, spelling, shards in (("auto-round", "rotary_dim", 0),
                                    ("gptq", "partial_rotary_factor", 2),
                                    ("auto-round", "rope_parameters", 3)):
        d = os.path.join(tmp, "%s-%s" % (quant, spelling))
        argv = flags + ["--quant", quant, "--rope-spelling", spelling, "--shards", str(shards),
                        "--seed", "5", "--out", d]
        a = mc.parse_args(argv)
        mc.generate(a)
        t = load_dir(d)
        gptq = quant == "gptq"
        f16 = "F16" if gptq else "BF16"
        cfg = json.load(open(os.path.join(d, "config.json")))
        qc = cfg["quantization_config"]
        check(json.load(open(os.path.join(d, "quantization_config.json"))) == qc,
              "quantization_config.json differs from config.json")
        if gptq:
            check(qc["quant_method"] == "gptq" and qc["desc_act"] is False and qc["sym"] is True
                  and len(qc["dynamic"]) == 2
                  and all(k.startswith("-:") for k in qc["dynamic"]), "gptq quantization_config")
            check(os.path.exists(os.path.join(d, "quantize_config.json")), "quantize_config.json")
        else:
            check(qc["quant_method"] == "auto-round"
                  and qc["packing_format"] == "auto_round:auto_gptq"
                  and set(qc["extra_config"]) == {"model.layers.%d.block_sparse_moe.gate" % l
                                                  for l in range(2)}, "auto-round config")
        rot = (cfg.get("rotary_dim") or round(cfg.get("partial_rotary_factor", 0) * 64)
               or round(cfg.get("rope_parameters", {}).get("partial_rotary_factor", 0) * 64))
        check(rot == 32, "%s: rotary spelled as %s gives %s" % (d, spelling, rot))
        check(os.path.exists(os.path.join(d, "model.safetensors.index.json")) == (shards != 0),
              "index presence")
        gen = json.load(open(os.path.join(d, "generation_config.json")))
        check(gen["bos_token_id"] == 94 and gen["eos_token_id"] == 95, "generation_config")
        # Tensor inventory (spec 2): 3 + L * (4 norms + 4 attention linears + gate + bias
        # + 3 experts * 3 linears), linears 3 or 4 tensors.
        per_linear = 4 if gptq else 3
        want = 3 + 2 * (4 + 1 + 1 + (4 + 9) * per_linear)
        check(len(t) == want, "%s: %d tensors, expected %d" % (d, len(t), want))
        for name, shape in (("model.embed_tokens.weight", [96, 256]), ("lm_head.weight", [96, 256]),
                            ("model.norm.weight", [256]),
                            ("model.layers.1.self_attn.q_norm.weight", [256]),
                            ("model.layers.1.self_attn.k_norm.weight", [128]),
                            ("model.layers.0.block_sparse_moe.gate.weight", [3, 256])):
            check(t[name][0] == f16 and t[name][1] == shape, "%s: %s %s" % (name, t[name][:2], f16))
        bias = t["model.layers.0.block_sparse_moe.e_score_correction_bias"]
        check(bias[0] == ("F16" if gptq else "F32") and bias[1] == [3], "bias dtype/shape")
        neg = check_linear(t, a, "model.layers.0.self_attn.q_proj", 256, 256, gptq, True)
        neg += check_linear(t, a, "model.layers.1.block_sparse_moe.experts.2.w2", 256, 256, gptq,
                            True)
        check(0.3 < neg / 1024 < 0.7, "fraction of negative scales %g" % (neg / 1024))
        check_linear(t, a, "model.layers.1.self_attn.o_proj", 256, 256, gptq, False)
        check_linear(t, a, "model.layers.0.self_attn.k_proj", 256, 128, gptq, False)
        # Norms ~ 1 + 0.1 N.
        norm = [struct.unpack("<f", struct.pack("<I", b << 16))[0] if not gptq else b
                for b in (array("H", t["model.norm.weight"][2]) if not gptq
                          else f16s(t["model.norm.weight"][2]))]
        mean = sum(norm) / len(norm)
        check(0.97 < mean < 1.03, "norm weight mean %g" % mean)
    # Determinism: same seed, same bytes; the variant does not change the masters.
    d1, d2 = os.path.join(tmp, "det1"), os.path.join(tmp, "det2")
    for d in (d1, d2):
        mc.generate(mc.parse_args(flags + ["--seed", "9", "--out", d]))
    for f in os.listdir(d1):
        if f.endswith(".safetensors"):
            check(open(os.path.join(d1, f), "rb").read() == open(os.path.join(d2, f), "rb").read(),
                  "not deterministic: " + f)
    # Bad shapes are refused, not written.
    p = subprocess.run([sys.executable, os.path.join(HERE, "make_checkpoint.py"), "--hidden", "200",
                        "--out", os.path.join(tmp, "bad")], capture_output=True, text=True)
    check(p.returncode == 2 and "multiples of 128" in p.stderr, "bad hidden size accepted")


# ----------------------------------------------------------------------------------------------

def rows_from_golden(prompt, vocab, swap_at=None):
    """Synthetic logits rows: HF's top-5 logits at their ids, everything else far below; with
    swap_at, HF's top-1 and top-2 are exchanged at that step."""
    rows = []
    for i, s in enumerate(prompt["steps"]):
        r = prompt["full_logits"][i][:] if i < len(prompt["full_logits"]) else [-100.0] * vocab
        for t, l in zip(s["top5_ids"], s["top5_logits"]):
            r[t] = l
        if i == swap_at:
            a, b = s["top5_ids"][:2]
            r[a], r[b] = r[b], r[a]
        rows.append(r)
    return rows


FAKE_RUNTIME = r'''
import json, sys
sys.path.insert(0, %(here)r)
import selftest, teacher_forced as tf
golden = json.load(open(%(golden)r))
p = golden["prompts"][%(prompt)d]
argv = sys.argv[1:]
opt = {argv[i]: argv[i + 1] for i in range(0, len(argv) - 1) if argv[i].startswith("--")}
assert opt["--temperature"] == "0"
ids = [int(x) for x in opt["--prompt-ids"].split(",")]
j = len(ids) - len(p["prompt_ids"])
assert ids == p["prompt_ids"] + p["continuation"][:j]
rows = selftest.rows_from_golden(p, golden["hparams"]["vocab_size"], %(swap)d)[j:]
rows = rows[:int(opt["--max-new-tokens"])]
forced = "--force-ids" in opt
if forced:
    assert [int(x) for x in opt["--force-ids"].split(",")] == p["continuation"][j:]
out, dumped, off = [], [], False
for k, r in enumerate(rows):
    if off and not forced:  # past our own divergence the context is ours: emulate different logits
        r = [0.0] * len(r)
        r[7] = 1.0
    dumped.append(r)
    out.append(tf.argmax(r))
    off = off or out[-1] != p["continuation"][j + k]
tf.write_npy(opt["--dump-logits"], dumped)
print(json.dumps(out))
'''


def test_teacher_forced(tmp):
    # .npy round trip
    path = os.path.join(tmp, "x.npy")
    tf.write_npy(path, [[1.0, -2.5, 3.25], [0.0, 7.0, -1.0]])
    rows = tf.npy_rows(path)
    check([list(r) for r in rows] == [[1.0, -2.5, 3.25], [0.0, 7.0, -1.0]], "npy round trip")
    open(path, "wb").write(b"not numpy")
    try:
        tf.read_npy(path)
        check(False, "bad .npy accepted")
    except tf.InputError:
        pass

    goldens = sorted(f for f in os.listdir(GOLDEN_DIR) if f.endswith(".json"))
    check(goldens, "no committed goldens in " + GOLDEN_DIR)
    for name in goldens:
        gpath = os.path.join(GOLDEN_DIR, name)
        g = json.load(open(gpath))
        check(os.path.getsize(gpath) < 2 * 1024 * 1024, name + ": over 2 MB")
        vocab = g["hparams"]["vocab_size"]
        thr, rthr = g["margin_threshold"], g["route_gap_threshold"]
        p = g["prompts"][0]
        rows = rows_from_golden(p, vocab)
        rep = tf.compare(p, rows, [tf.argmax(r) for r in rows], thr, rthr)
        check(rep["ok"] and rep["exact_agreement"] == 1.0 and rep["full_rows_max_abs_err"] < 1e-4,
              name + ": golden against itself")
        steps = p["steps"]
        decisive = next((i for i, s in enumerate(steps)
                         if s["margin"] >= thr and s["route_gap"] >= rthr), None)
        tie = next((i for i, s in enumerate(steps) if s["margin"] < thr), None)
        if decisive is not None:
            rows = rows_from_golden(p, vocab, swap_at=decisive)
            rep = tf.compare(p, rows, None, thr, rthr)
            check(not rep["ok"] and rep["failures"][0]["step"] == decisive,
                  name + ": flip at a decisive step passed")
        if tie is not None:
            rows = rows_from_golden(p, vocab, swap_at=tie)
            rep = tf.compare(p, rows, None, thr, rthr)
            check(rep["ok"] and rep["agree"] == len(steps) - 1, name + ": near-tie flip failed")
            # The CLI: exit 0 on the near tie, 1 on the decisive flip, 2 on bad input.
            npy = os.path.join(tmp, "ours.npy")
            tf.write_npy(npy, rows)
            check(tf.main([gpath, "--prompt", "0", "--logits", npy]) == 0, name + ": CLI pass")
            if decisive is not None:
                tf.write_npy(npy, rows_from_golden(p, vocab, swap_at=decisive))
                check(tf.main([gpath, "--prompt", "0", "--logits", npy]) == 1, name + ": CLI fail")
            check(tf.main([gpath, "--prompt", "9", "--logits", npy]) == 2, name + ": CLI bad input")
            # --drive: the fake runtime leaves HF's path at the tie and must be re-prompted.
            fake = os.path.join(tmp, "fake_runtime.py")
            with open(fake, "w") as f:
                f.write(FAKE_RUNTIME % {"here": HERE, "golden": gpath, "prompt": 0, "swap": tie})
            for mode in ([], ["--reprompt"]):
                code = tf.main([gpath, "--prompt", "0", "--drive",
                                "%s %s" % (sys.executable, fake), "--json"] + mode)
                check(code == 0, name + ": --drive %s through a near tie" % mode)


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="write checkpoints here and keep them")
    a = ap.parse_args(argv)
    tmp = a.keep or tempfile.mkdtemp(prefix="mmc-selftest-")
    try:
        test_make_checkpoint(tmp)
        test_teacher_forced(tmp)
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("selftest: %s" % ("FAILED (%d)" % len(FAILS) if FAILS else "ok"))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
