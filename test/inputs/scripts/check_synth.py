#!/usr/bin/env python3
"""Independent check of an mm-synth checkpoint (standard library only: CI has no numpy).

Written from ../shared/docs/minimax-m2-spec.md sections 1, 2 and 4.1 and the generator contract in
models/synth/masters.h, not from the C++ code:
  * every shard's safetensors header: length prefix, JSON, dtype x shape == byte length, data
    offsets contiguous from 0 and ending at the file's end, names agree with the index, the
    index's metadata.total_size is the sum of all tensors;
  * config.json / quantization config: the keys and values spec 1.1 / 1.3 fix;
  * one quantized linear (unless --headers-only): qzeros all 0x77777777, g_idx == k // 128 when
    present, and qweight/scales bit-identical to re-quantizing the masters regenerated here from
    (seed, name) with AutoRound's symmetric rule (spec 4.1); dequantized error <= half a step
    (one step where +8 clamps to +7).

Usage: check_synth.py MODEL_DIR [--seed N] [--linear PREFIX] [--max-elements N] [--headers-only]
Prints a summary (one "key: value" per line) and exits 1 with a message on the first failure.
"""
import argparse
import json
import math
import os
import struct
import sys

DTYPE_SIZE = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I8": 1, "U8": 1, "I16": 2, "I32": 4,
              "I64": 8, "BOOL": 1, "F8_E4M3": 1}
MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


class CheckError(Exception):
    pass


def fail(msg):
    raise CheckError(msg)


# --- generator contract (models/synth/masters.h) ---------------------------------------------
def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for c in s.encode():
        h = ((h ^ c) * 0x100000001B3) & MASK64
    return h


def to_f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def to_bf16(x):
    u = struct.unpack("<I", struct.pack("<f", x))[0]
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFFFFFF
    return struct.unpack("<f", struct.pack("<I", u & 0xFFFF0000))[0]


def masters(seed, name, mean, std, begin, count):
    key = mix64(fnv1a64(name) ^ mix64(seed))
    out = []
    for i in range(begin, begin + count):
        p = i // 2
        b1 = mix64((key + (2 * p + 1) * GAMMA) & MASK64)
        b2 = mix64((key + (2 * p + 2) * GAMMA) & MASK64)
        u1 = ((b1 >> 11) + 1) * 2.0 ** -53
        u2 = (b2 >> 11) * 2.0 ** -53
        r = math.sqrt(-2.0 * math.log(u1))
        t = 2.0 * math.pi * u2
        z = r * math.cos(t) if i % 2 == 0 else r * math.sin(t)
        out.append(to_bf16(to_f32(mean + std * z)))
    return out


def f16_bits_to_float(b):
    return struct.unpack("<e", struct.pack("<H", b))[0]


def f16_round(x):
    return struct.unpack("<e", struct.pack("<e", x))[0]


# --- files -------------------------------------------------------------------------------------
def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")


def read_header(path):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) != 8:
            fail(f"{path}: shorter than the 8-byte header length")
        (hlen,) = struct.unpack("<Q", prefix)
        if hlen % 8 != 0 or 8 + hlen > size:
            fail(f"{path}: header length {hlen} is not a multiple of 8 within the file")
        text = f.read(hlen)
    try:
        header = json.loads(text)
    except ValueError as e:
        fail(f"{path}: header is not JSON: {e}")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    spans = []
    for name, t in tensors.items():
        if t["dtype"] not in DTYPE_SIZE:
            fail(f"{path}: tensor {name} has unknown dtype {t['dtype']}")
        n = DTYPE_SIZE[t["dtype"]]
        for d in t["shape"]:
            n *= d
        b, e = t["data_offsets"]
        if e - b != n:
            fail(f"{path}: tensor {name}: {e - b} bytes for dtype {t['dtype']} shape {t['shape']}")
        spans.append((b, e, name))
        t["abs"] = 8 + hlen + b
    spans.sort()
    pos = 0
    for b, e, name in spans:
        if b != pos:
            fail(f"{path}: tensor {name} starts at {b}, expected {pos} (gap or overlap)")
        pos = e
    if 8 + hlen + pos != size:
        fail(f"{path}: data ends at {8 + hlen + pos} but the file has {size} bytes")
    return tensors


def read_data(path, t):
    with open(path, "rb") as f:
        f.seek(t["abs"])
        n = t["data_offsets"][1] - t["data_offsets"][0]
        data = f.read(n)
    if len(data) != n:
        fail(f"{path}: short read of {n} bytes")
    return data


def check_config(d):
    c = load_json(os.path.join(d, "config.json"))
    expect = {"model_type": "minimax_m2", "architectures": ["MiniMaxM2ForCausalLM"],
              "use_qk_norm": True, "qk_norm_type": "per_layer", "scoring_func": "sigmoid",
              "use_routing_bias": True, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
              "hidden_act": "silu"}
    for k, v in expect.items():
        if c.get(k) != v:
            fail(f"config.json: {k} is {c.get(k)!r}, expected {v!r}")
    if c.get("attn_type_list") != [1] * c["num_hidden_layers"]:
        fail("config.json: attn_type_list is not num_hidden_layers x 1")
    q = c.get("quantization_config")
    if not isinstance(q, dict):
        fail("config.json: no quantization_config object")
    if q["bits"] != 4 or q["group_size"] != 128 or q["sym"] is not True:
        fail("config.json: quantization_config is not bits 4 / group 128 / sym")
    if q["quant_method"] == "auto-round":
        side = "quantization_config.json"
        if q["packing_format"] != "auto_round:auto_gptq":
            fail(f"config.json: packing_format {q['packing_format']!r}")
        for L in range(c["num_hidden_layers"]):
            gate = f"model.layers.{L}.block_sparse_moe.gate"
            if q["extra_config"].get(gate) != {"bits": 16, "data_type": "float"}:
                fail(f"config.json: extra_config lacks the 16-bit entry of {gate}")
    elif q["quant_method"] == "gptq":
        side = "quantize_config.json"
        if q["desc_act"] is not False:
            fail("config.json: gptq desc_act must be false")
        if len([k for k in q["dynamic"] if k.startswith("-:")]) != c["num_hidden_layers"]:
            fail("config.json: gptq dynamic needs one '-:' entry per router gate")
    else:
        fail(f"config.json: quant_method {q['quant_method']!r}")
    if load_json(os.path.join(d, side)) != q:
        fail(f"{side} differs from config.json's quantization_config")
    return c, q


def check_linear(d, c, q, tensors, seed, prefix, max_elements):
    qw_name = prefix + ".qweight"
    if qw_name not in tensors:
        fail(f"no tensor {qw_name}")
    file_of = lambda n: os.path.join(d, tensors[n]["file"])
    qw_t, qz_t, sc_t = (tensors[prefix + s] for s in (".qweight", ".qzeros", ".scales"))
    K8, N = qw_t["shape"]
    K = K8 * 8
    if (qw_t["dtype"], qz_t["dtype"], sc_t["dtype"]) != ("I32", "I32", "F16"):
        fail(f"{prefix}: dtypes {qw_t['dtype']}/{qz_t['dtype']}/{sc_t['dtype']}, expected I32/I32/F16")
    if qz_t["shape"] != [K // 128, N // 8] or sc_t["shape"] != [K // 128, N]:
        fail(f"{prefix}: qzeros {qz_t['shape']} / scales {sc_t['shape']} do not fit qweight {qw_t['shape']}")
    qz = struct.unpack(f"<{K // 128 * N // 8}I", read_data(file_of(prefix + ".qzeros"), qz_t))
    if any(w != 0x77777777 for w in qz):
        fail(f"{prefix}.qzeros: not all 0x77777777")
    if prefix + ".g_idx" in tensors:
        g_t = tensors[prefix + ".g_idx"]
        g = struct.unpack(f"<{K}i", read_data(file_of(prefix + ".g_idx"), g_t))
        if list(g) != [k // 128 for k in range(K)]:
            fail(f"{prefix}.g_idx: not k // 128")
    qw = struct.unpack(f"<{K8 * N}I", read_data(file_of(prefix + ".qweight"), qw_t))
    sc = struct.unpack(f"<{K // 128 * N}H", read_data(file_of(prefix + ".scales"), sc_t))

    cols = max(1, min(N, max_elements // K))
    std = 1.0 / math.sqrt(K)  # models/synth/synth.h: linears ~ N(0, 1/sqrt(K))
    negative = 0
    worst = 0.0
    for n in range(cols):
        w = masters(seed, prefix, 0.0, std, n * K, K)  # W[n, k] row-major [N, K]
        for g in range(K // 128):
            grp = w[g * 128:(g + 1) * 128]
            wstar = 0.0
            for x in grp:
                if abs(x) > abs(wstar):
                    wstar = x
            scale = 0.0 if wstar == 0 else f16_round(-wstar / 8)
            stored = f16_bits_to_float(sc[g * N + n])
            if stored != scale:
                fail(f"{prefix}.scales[{g},{n}] = {stored}, re-quantization gives {scale}")
            negative += stored < 0
            for j, x in enumerate(grp):
                k = g * 128 + j
                expect = 8 if scale == 0 else min(15, max(0, round(to_f32(x / scale)) + 8))
                got = (qw[(k >> 3) * N + n] >> (4 * (k & 7))) & 0xF
                if got != expect:
                    fail(f"{prefix}: q({k},{n}) = {got}, re-quantization gives {expect}")
                err = abs((got - 8) * stored - x)
                bound = abs(stored) if got == 15 else abs(stored) / 2
                if err > bound + 1e-7:
                    fail(f"{prefix}: dequantized ({k},{n}) off by {err} > {bound}")
                worst = max(worst, err / abs(stored) if stored else 0.0)
    groups = cols * (K // 128)
    print(f"linear: {prefix} K={K} N={N} checked_columns={cols}")
    print(f"requantization: exact ({groups} groups, {negative} negative scales)")
    print(f"negative_scale_fraction: {negative / groups:.2f}")


def master_distribution(name, c):
    """(mean, std) of a 16/32-bit tensor's masters, per the table in models/synth/synth.h."""
    H = c["hidden_size"]
    if name == "model.embed_tokens.weight":
        return 0.0, 1.0
    if name == "lm_head.weight":
        return 0.0, 4.0 / math.sqrt(H)
    if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
        return 1.0, 0.1
    if name.endswith(".block_sparse_moe.gate.weight"):
        return 0.0, 2.0 / math.sqrt(H)
    if name.endswith(".e_score_correction_bias"):
        return 0.0, 0.01
    fail(f"no master distribution known for {name}")


def check_sampled(d, c, tensors, seed, names):
    """Regenerates sampled elements of 16/32-bit tensors (first, last, around 2^24 slice edges)."""
    fmt = {"BF16": ("<H", lambda b: struct.unpack("<f", struct.pack("<I", b << 16))[0]),
           "F16": ("<H", f16_bits_to_float), "F32": ("<f", lambda v: v)}
    for name in names:
        t = tensors[name]
        numel = 1
        for dim in t["shape"]:
            numel *= dim
        idx = {0, 1, 2, numel // 2, numel // 2 + 1, numel - 1}
        for edge in range(1 << 24, numel, 1 << 24):
            idx |= {edge - 1, edge}
        mean, std = master_distribution(name, c)
        prefix = name[:-len(".weight")] if name.endswith(".weight") else name
        code, conv = fmt[t["dtype"]]
        size = DTYPE_SIZE[t["dtype"]]
        with open(os.path.join(d, t["file"]), "rb") as f:
            for i in sorted(idx):
                f.seek(t["abs"] + i * size)
                (raw,) = struct.unpack(code, f.read(size))
                got = conv(raw)
                want = masters(seed, prefix, mean, std, i, 1)[0]
                if got != want:
                    fail(f"{name}[{i}] = {got}, regenerated master is {want}")
    print(f"sampled: {len(names)} tensors match their regenerated masters")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--linear", default="model.layers.0.self_attn.q_proj")
    ap.add_argument("--max-elements", type=int, default=1 << 18,
                    help="re-quantize at most this many master elements (whole columns)")
    ap.add_argument("--headers-only", action="store_true", help="read no tensor data (sparse files)")
    a = ap.parse_args()
    d = a.model_dir
    try:
        c, q = check_config(d)
        index = load_json(os.path.join(d, "model.safetensors.index.json"))
        wmap = index["weight_map"]
        tensors = {}
        total = 0
        files = sorted(set(wmap.values()))
        for fname in files:
            for name, t in read_header(os.path.join(d, fname)).items():
                if wmap.get(name) != fname:
                    fail(f"{fname}: tensor {name} is mapped to {wmap.get(name)!r} in the index")
                t["file"] = fname
                tensors[name] = t
                total += t["data_offsets"][1] - t["data_offsets"][0]
        missing = set(wmap) - set(tensors)
        if missing:
            fail(f"index names {len(missing)} tensors no shard has, e.g. {sorted(missing)[0]}")
        if index["metadata"]["total_size"] != total:
            fail(f"index total_size {index['metadata']['total_size']} != {total}")
        gen = load_json(os.path.join(d, "generation_config.json"))
        for f in ("tokenizer.json", "chat_template.jinja"):
            if not os.path.isfile(os.path.join(d, f)):
                fail(f"{f} missing")
        print(f"quant_method: {q['quant_method']}")
        print(f"layers: {c['num_hidden_layers']} experts: {c['num_local_experts']} top_k: {c['num_experts_per_tok']}")
        print(f"bos: {gen['bos_token_id']} eos: {gen['eos_token_id']}")
        print(f"shards: {len(files)}")
        print(f"tensors: {len(tensors)}")
        print(f"total_size: {total} ({total / 2**30:.1f} GiB)")
        if not a.headers_only:
            check_linear(d, c, q, tensors, a.seed, a.linear, a.max_elements)
            last = c["num_hidden_layers"] - 1
            check_sampled(d, c, tensors, a.seed, [
                "model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
                f"model.layers.{last}.self_attn.q_norm.weight",
                f"model.layers.{last}.block_sparse_moe.gate.weight",
                f"model.layers.{last}.block_sparse_moe.e_score_correction_bias"])
    except CheckError as e:
        print(f"check_synth: error: {e}", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
