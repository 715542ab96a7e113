#!/usr/bin/env python3
"""Write a small MiniMax-M2-shaped W4A16 checkpoint in the exact on-disk format of the target.

This is an independent second generator next to the C++ `mm-synth`: it is written from
../shared/docs/minimax-m2-spec.md (sections 1, 2 and 4.1) only, so the C++ reader, compiler and
runtime are also tested on checkpoints that they did not produce themselves.

Standard library only (CI has python3 but no numpy/torch). Deterministic per seed: every tensor
draws from its own generator seeded by sha256(seed, tensor name), so the values of a tensor do not
depend on the order of generation, on the shard layout or on the quantization variant.

Quantization variants (spec 1.3, 4.1):
  auto-round  quant_method "auto-round", packing_format "auto_round:auto_gptq", extra_config marks
              every router gate 16-bit, non-quantized tensors BF16, e_score_correction_bias F32,
              no g_idx.
  gptq        quant_method "gptq" (desc_act false, sym, 4 bits, group 128), `dynamic` "-:" entries
              for the gates, a quantize_config.json, g_idx int32 [K] = k // 128 per quantized
              linear, every non-quantized tensor (bias included) F16.
Quantized linears: q/k/v/o_proj and every expert's w1/w2/w3, GPTQ v1 packing:
  qweight int32 [K/8, N] (row 8r+j in bits 4j..4j+3), qzeros int32 [K/128, N/8] all 0x77777777,
  scales fp16 [K/128, N], W[n,k] = (q - 8) * scale.
Masters are random bf16 values quantized with AutoRound's symmetric RTN rule: per group of 128
inputs of one output column, scale = -w*/8 where w* is the signed element of largest magnitude
(so that element lands on -8 and about half of the scales are negative), q = clamp(round(w /
scale), -8, 7) + 8.

Master distributions keep the random model healthy (activations O(1) through the layers) and its
greedy predictions decisive: linear weights N(0, 1/sqrt(K)), norm weights 1 + 0.1 N(0,1),
embeddings N(0,1), router bias 0.1 N(0,1), lm_head N(0, LOGIT_STD/sqrt(H)) so the logits have a
standard deviation of about LOGIT_STD (4).

Examples:
  make_checkpoint.py --preset unseen-a --out /tmp/unseen-a
  make_checkpoint.py --hidden 256 --intermediate 256 --layers 2 --heads 4 --kv-heads 2 \
      --head-dim 64 --rotary-dim 32 --experts 8 --top-k 2 --vocab 1024 --quant gptq --out DIR
"""

import argparse
import hashlib
import json
import math
import os
import random
import statistics
import struct
import sys
import time
from array import array

GROUP = 128
QZERO_WORD = 0x77777777  # eight nibbles of 7 = zero-point 8 minus the GPTQ v1 offset of 1
LOGIT_STD = 4.0

PRESETS = {
    # auto-round, rotary given as partial_rotary_factor, 2 shards + index.
    "unseen-a": dict(hidden=384, intermediate=256, layers=3, heads=6, kv_heads=2, head_dim=64,
                     rotary_dim=32, experts=6, top_k=3, vocab=512, quant="auto-round",
                     rope_spelling="partial_rotary_factor", shards=2, seed=1234,
                     rope_theta=5000000.0),
    # gptq, 8 q heads over 2 kv heads (q dim 512 = 2 x hidden, like the target's 6144 = 2 x 3072),
    # rotary given through rope_parameters with factor 0.25, 3 shards + index.
    "unseen-b": dict(hidden=256, intermediate=384, layers=2, heads=8, kv_heads=2, head_dim=64,
                     rotary_dim=16, experts=5, top_k=2, vocab=640, quant="gptq",
                     rope_spelling="rope_parameters", shards=3, seed=4321,
                     rope_theta=1000000.0),
}

DEFAULTS = dict(hidden=256, intermediate=256, layers=2, heads=4, kv_heads=2, head_dim=64,
                rotary_dim=32, experts=8, top_k=2, vocab=1024, quant="auto-round",
                rope_spelling="rotary_dim", shards=1, seed=0, rope_theta=5000000.0,
                max_position_embeddings=4096, rms_norm_eps=1e-6, bos=None, eos=None)


# ----------------------------------------------------------------------------------------------
# Number encodings

def bf16_bits(values):
    """Round float values to bfloat16 (round to nearest even) and return their 16-bit patterns."""
    words = array("I", struct.pack("<%df" % len(values), *values))
    if sys.byteorder != "little":
        words.byteswap()
    out = []
    for w in words:
        if (w & 0x7F800000) == 0x7F800000:  # inf/nan: keep, quiet nans
            out.append((w >> 16) | (0x40 if (w & 0x7FFFFF) else 0))
        else:
            out.append((w + 0x7FFF + ((w >> 16) & 1)) >> 16)
    return out


def bits_to_bf16_float(bits):
    words = array("I", [b << 16 for b in bits])
    if sys.byteorder != "little":
        words.byteswap()
    return list(struct.unpack("<%df" % len(bits), words.tobytes()))


def f16_bits(values):
    return list(struct.unpack("<%dH" % len(values), struct.pack("<%de" % len(values), *values)))


def f16_round(x):
    return struct.unpack("<e", struct.pack("<e", x))[0]


def u16_le_bytes(bits):
    a = array("H", bits)
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def i32_le_bytes(words):
    a = array("I", words) if not isinstance(words, array) else words
    if sys.byteorder != "little":
        a = array("I", a)
        a.byteswap()
    return a.tobytes()


# ----------------------------------------------------------------------------------------------
# Random sources

_Z_TABLE = None


def z_table():
    """65536 standard normal quantiles; a 16-bit uniform index into it is a fast normal sample."""
    global _Z_TABLE
    if _Z_TABLE is None:
        nd = statistics.NormalDist()
        _Z_TABLE = [nd.inv_cdf((i + 0.5) / 65536.0) for i in range(65536)]
    return _Z_TABLE


_VALUE_TABLES = {}


def value_table(mean, std, kind):
    """Encoded values of mean + std * z for all 65536 quantiles.

    kind "bf16": 16-bit patterns; "f16": 16-bit patterns; "master": bf16-rounded Python floats.
    """
    key = (mean, std, kind)
    if key not in _VALUE_TABLES:
        vals = [mean + std * z for z in z_table()]
        if kind == "f16":
            _VALUE_TABLES[key] = f16_bits(vals)
        else:
            bits = bf16_bits(vals)
            _VALUE_TABLES[key] = bits if kind == "bf16" else bits_to_bf16_float(bits)
    return _VALUE_TABLES[key]


def tensor_rng(seed, name):
    h = hashlib.sha256(("%d:%s" % (seed, name)).encode()).digest()
    return random.Random(int.from_bytes(h[:16], "little"))


def uniform16(rng, count):
    a = array("H", rng.randbytes(2 * count))
    if sys.byteorder != "little":
        a.byteswap()
    return a


# ----------------------------------------------------------------------------------------------
# Tensors: each returns {name: (dtype, shape, bytes)}

def sixteen_bit_tensor(seed, name, shape, mean, std, dtype):
    count = 1
    for d in shape:
        count *= d
    table = value_table(mean, std, "bf16" if dtype == "BF16" else "f16")
    idx = uniform16(tensor_rng(seed, name), count)
    return {name: (dtype, list(shape), u16_le_bytes([table[i] for i in idx]))}


def router_bias_tensor(seed, name, experts, dtype):
    rng = tensor_rng(seed, name)
    vals = [0.1 * rng.gauss(0.0, 1.0) for _ in range(experts)]
    if dtype == "F32":
        data = struct.pack("<%df" % experts, *vals)
    else:
        data = struct.pack("<%de" % experts, *vals)
    return {name: (dtype, [experts], data)}


def quantized_linear(seed, prefix, k_in, n_out, with_g_idx):
    """Random bf16 master W[n_out, k_in] ~ N(0, 1/sqrt(K)), quantized per spec 4.1."""
    if k_in % GROUP or n_out % 8:
        raise ValueError("%s: K=%d must be a multiple of %d and N=%d a multiple of 8"
                         % (prefix, k_in, GROUP, n_out))
    groups = k_in // GROUP
    table = value_table(0.0, 1.0 / math.sqrt(k_in), "master")
    idx = uniform16(tensor_rng(seed, prefix + ".weight"), n_out * k_in)
    qweight = array("I", bytes(4 * (k_in // 8) * n_out))
    scale_vals = [0.0] * (groups * n_out)
    for n in range(n_out):
        row = [table[i] for i in idx[n * k_in:(n + 1) * k_in]]  # W[n, :], contiguous in k
        qrow = []
        for g in range(groups):
            grp = row[g * GROUP:(g + 1) * GROUP]
            wstar = max(grp, key=abs)
            scale = f16_round(-wstar / 8.0)
            scale_vals[g * n_out + n] = scale
            if scale == 0.0:
                qrow.extend([8] * GROUP)
            else:
                # |w / scale| <= 8 (up to the fp16 rounding of scale), so only +8 needs clamping.
                qrow.extend([min(round(w / scale), 7) + 8 for w in grp])
        qb = bytes(qrow)
        # Two nibbles per byte, even k in the low nibble; 4 bytes little-endian = one word, so
        # row 8r+j lands in bits 4j..4j+3 of word r.
        packed = (int.from_bytes(qb[0::2], "little")
                  | (int.from_bytes(qb[1::2], "little") << 4)).to_bytes(k_in // 2, "little")
        col = array("I", packed)
        if sys.byteorder != "little":
            col.byteswap()
        qweight[n::n_out] = col  # column n of the row-major [K/8, N] word matrix
    out = {
        prefix + ".qweight": ("I32", [k_in // 8, n_out], i32_le_bytes(qweight)),
        prefix + ".qzeros": ("I32", [groups, n_out // 8],
                             i32_le_bytes([QZERO_WORD] * (groups * n_out // 8))),
        prefix + ".scales": ("F16", [groups, n_out],
                             struct.pack("<%de" % len(scale_vals), *scale_vals)),
    }
    if with_g_idx:
        out[prefix + ".g_idx"] = ("I32", [k_in], i32_le_bytes([k // GROUP for k in range(k_in)]))
    return out


# ----------------------------------------------------------------------------------------------
# Model

def layer_tensors(a, layer):
    seed = a.seed
    H, I, E = a.hidden, a.intermediate, a.experts
    Q, KV = a.heads * a.head_dim, a.kv_heads * a.head_dim
    gptq = a.quant == "gptq"
    f16 = "F16" if gptq else "BF16"
    p = "model.layers.%d." % layer
    t = {}
    t.update(sixteen_bit_tensor(seed, p + "input_layernorm.weight", [H], 1.0, 0.1, f16))
    t.update(quantized_linear(seed, p + "self_attn.q_proj", H, Q, gptq))
    t.update(quantized_linear(seed, p + "self_attn.k_proj", H, KV, gptq))
    t.update(quantized_linear(seed, p + "self_attn.v_proj", H, KV, gptq))
    t.update(quantized_linear(seed, p + "self_attn.o_proj", Q, H, gptq))
    t.update(sixteen_bit_tensor(seed, p + "self_attn.q_norm.weight", [Q], 1.0, 0.1, f16))
    t.update(sixteen_bit_tensor(seed, p + "self_attn.k_norm.weight", [KV], 1.0, 0.1, f16))
    t.update(sixteen_bit_tensor(seed, p + "post_attention_layernorm.weight", [H], 1.0, 0.1, f16))
    moe = p + "block_sparse_moe."
    t.update(sixteen_bit_tensor(seed, moe + "gate.weight", [E, H], 0.0, 1.0 / math.sqrt(H), f16))
    t.update(router_bias_tensor(seed, moe + "e_score_correction_bias", E,
                                "F16" if gptq else "F32"))
    for e in range(E):
        x = moe + "experts.%d." % e
        t.update(quantized_linear(seed, x + "w1", H, I, gptq))
        t.update(quantized_linear(seed, x + "w3", H, I, gptq))
        t.update(quantized_linear(seed, x + "w2", I, H, gptq))
    return t


def config_json(a):
    cfg = {
        "architectures": ["MiniMaxM2ForCausalLM"],
        "model_type": "minimax_m2",
        "auto_map": {
            "AutoConfig": "configuration_minimax_m2.MiniMaxM2Config",
            "AutoModelForCausalLM": "modeling_minimax_m2.MiniMaxM2ForCausalLM",
        },
        "attn_type_list": [1] * a.layers,
        "head_dim": a.head_dim,
        "hidden_act": "silu",
        "hidden_size": a.hidden,
        "initializer_range": 0.02,
        "intermediate_size": a.intermediate,
        "layernorm_full_attention_beta": 1.0,
        "layernorm_linear_attention_beta": 1.0,
        "layernorm_mlp_beta": 1.0,
        "max_position_embeddings": a.max_position_embeddings,
        "mtp_transformer_layers": 1,
        "num_attention_heads": a.heads,
        "num_experts_per_tok": a.top_k,
        "num_hidden_layers": a.layers,
        "num_key_value_heads": a.kv_heads,
        "num_local_experts": a.experts,
        "num_mtp_modules": 3,
        "output_router_logits": False,
        "qk_norm_type": "per_layer",
        "rms_norm_eps": a.rms_norm_eps,
        "router_aux_loss_coef": 0.001,
        "router_jitter_noise": 0.0,
        "scoring_func": "sigmoid",
        "shared_intermediate_size": 0,
        "shared_moe_mode": "sigmoid",
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.57.1",
        "use_cache": True,
        "use_mtp": True,
        "use_qk_norm": True,
        "use_routing_bias": True,
        "vocab_size": a.vocab,
    }
    factor = a.rotary_dim / a.head_dim
    if a.rope_spelling == "rotary_dim":
        cfg["rotary_dim"] = a.rotary_dim
        cfg["rope_theta"] = a.rope_theta
    elif a.rope_spelling == "partial_rotary_factor":
        cfg["partial_rotary_factor"] = factor
        cfg["rope_theta"] = a.rope_theta
    else:  # re-saved by transformers >= 5
        cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": a.rope_theta,
                                  "partial_rotary_factor": factor}
    cfg["quantization_config"] = quant_config(a)
    return dict(sorted(cfg.items()))


def gate_names(a):
    return ["model.layers.%d.block_sparse_moe.gate" % l for l in range(a.layers)]


def quant_config(a):
    if a.quant == "auto-round":
        return {
            "autoround_version": "0.12.2",
            "bits": 4,
            "data_type": "int",
            "extra_config": {g: {"bits": 16, "data_type": "float"} for g in gate_names(a)},
            "group_size": 128,
            "iters": 0,
            "packing_format": "auto_round:auto_gptq",
            "quant_method": "auto-round",
            "sym": True,
        }
    return {
        "bits": 4,
        "checkpoint_format": "gptq",
        "damp_percent": 0.01,
        "desc_act": False,
        "dynamic": {"-:" + g.replace(".", "\\."): {} for g in gate_names(a)},
        "group_size": 128,
        "lm_head": False,
        "provider": "auto-round",
        "quant_method": "gptq",
        "static_groups": False,
        "sym": True,
        "true_sequential": False,
    }


def safetensors_bytes(tensors):
    """Serialize {name: (dtype, shape, data)}: 8-byte LE header length, JSON header padded with
    spaces to a multiple of 8, then the data in header order."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    names = sorted(tensors)
    for name in names:
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((-len(hb)) % 8)
    return [struct.pack("<Q", len(hb)), hb] + [tensors[n][2] for n in names]


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def generate(a):
    t0 = time.time()
    f16 = "F16" if a.quant == "gptq" else "BF16"
    H = a.hidden
    # Units of sharding: embeddings, each layer, final norm + lm_head (a layer never straddles
    # shards in this generator; the reader must not rely on that).
    units = [lambda: sixteen_bit_tensor(a.seed, "model.embed_tokens.weight", [a.vocab, H],
                                        0.0, 1.0, f16)]
    units += [(lambda l=l: layer_tensors(a, l)) for l in range(a.layers)]
    units.append(lambda: dict(
        sixteen_bit_tensor(a.seed, "model.norm.weight", [H], 1.0, 0.1, f16),
        **sixteen_bit_tensor(a.seed, "lm_head.weight", [a.vocab, H], 0.0,
                             LOGIT_STD / math.sqrt(H), f16)))
    nshards = max(1, min(a.shards, len(units)))
    per = [len(units) // nshards + (1 if i < len(units) % nshards else 0) for i in range(nshards)]
    os.makedirs(a.out, exist_ok=True)
    weight_map, total, count, u = {}, 0, 0, 0
    for s in range(nshards):
        fname = ("model.safetensors" if a.shards == 0 else
                 "model-%05d-of-%05d.safetensors" % (s + 1, nshards))
        tensors = {}
        for fn in units[u:u + per[s]]:
            tensors.update(fn())
        u += per[s]
        with open(os.path.join(a.out, fname), "wb") as f:
            for chunk in safetensors_bytes(tensors):
                f.write(chunk)
        for name, (_, _, data) in tensors.items():
            weight_map[name] = fname
            total += len(data)
        count += len(tensors)
    if a.shards != 0:
        write_json(os.path.join(a.out, "model.safetensors.index.json"),
                   {"metadata": {"total_size": total},
                    "weight_map": dict(sorted(weight_map.items()))})
    write_json(os.path.join(a.out, "config.json"), config_json(a))
    write_json(os.path.join(a.out, "quantization_config.json"), quant_config(a))
    if a.quant == "gptq":
        write_json(os.path.join(a.out, "quantize_config.json"), quant_config(a))
    write_json(os.path.join(a.out, "generation_config.json"), {
        "bos_token_id": a.bos, "eos_token_id": a.eos, "do_sample": True,
        "temperature": 1.0, "top_p": 0.95, "top_k": 40, "transformers_version": "4.57.1"})
    # Provenance, so a checkpoint found on disk can be regenerated.
    write_json(os.path.join(a.out, "make_checkpoint.json"), {
        "generator": "test/inputs/scripts/make_checkpoint.py",
        "argv": sys.argv[1:], "resolved": {k: v for k, v in vars(a).items() if k != "out"}})
    return count, total, time.time() - t0


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="named shape set; flags override")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--quant", choices=["auto-round", "gptq"])
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--intermediate", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--kv-heads", type=int)
    ap.add_argument("--head-dim", type=int)
    ap.add_argument("--rotary-dim", type=int)
    ap.add_argument("--rope-spelling", choices=["rotary_dim", "partial_rotary_factor",
                                                "rope_parameters"],
                    help="how config.json states the partial RoPE width")
    ap.add_argument("--rope-theta", type=float)
    ap.add_argument("--experts", type=int)
    ap.add_argument("--top-k", type=int)
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--max-position-embeddings", type=int)
    ap.add_argument("--rms-norm-eps", type=float)
    ap.add_argument("--shards", type=int,
                    help="number of shards with an index; 0 = single model.safetensors, no index")
    ap.add_argument("--bos", type=int, help="generation_config bos (default vocab-2)")
    ap.add_argument("--eos", type=int, help="generation_config eos (default vocab-1)")
    a = ap.parse_args(argv)
    base = dict(DEFAULTS)
    if a.preset:
        base.update(PRESETS[a.preset])
    for k, v in base.items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    if a.bos is None:
        a.bos = a.vocab - 2
    if a.eos is None:
        a.eos = a.vocab - 1
    errors = []
    if a.hidden % GROUP or a.intermediate % GROUP or (a.heads * a.head_dim) % GROUP:
        errors.append("hidden, intermediate and heads*head_dim must be multiples of %d" % GROUP)
    if (a.kv_heads * a.head_dim) % 8:
        errors.append("kv_heads*head_dim must be a multiple of 8")
    if a.heads % a.kv_heads:
        errors.append("heads must be a multiple of kv heads")
    if a.rotary_dim % 2 or not 0 < a.rotary_dim <= a.head_dim:
        errors.append("rotary dim must be even and in (0, head_dim]")
    if not 0 < a.top_k <= a.experts:
        errors.append("top-k must be in [1, experts]")
    if not 0 <= a.bos < a.vocab or not 0 <= a.eos < a.vocab:
        errors.append("bos/eos must be < vocab")
    if errors:
        ap.error("; ".join(errors))
    return a


def main(argv):
    a = parse_args(argv)
    count, total, secs = generate(a)
    print("%s: %d tensors, %d data bytes, %s, seed %d, %.1f s"
          % (a.out, count, total, a.quant, a.seed, secs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
