#!/usr/bin/env python3
"""Golden references: run a MiniMax-M2 W4A16 checkpoint in Hugging Face transformers.

Loads a checkpoint directory (written by mm-synth or make_checkpoint.py, either quantization
variant) into transformers' native `MiniMaxM2ForCausalLM` with every weight dequantized to fp32
(W[n,k] = (q - z) * scale, z = 8 for AutoRound's symmetric format; spec 4.1), runs it in fp32 on
the CPU and writes a small JSON file with, per prompt (a list of token ids):
  - the greedy continuation of N tokens (each step a full forward over the whole prefix, so row i
    is exactly "the logits from which generated token i was chosen", design.md section 6),
  - at each step the top-5 ids and logits and the top-1/top-2 margin,
  - the full logits rows of the first few steps,
  - the same model in bf16 scored teacher-forced along the fp32 continuation (exact agreement,
    teacher-forced criterion of teacher_forced.py, logit error statistics) and the step where a
    free-running bf16 greedy run first leaves the fp32 continuation.

Needs torch and transformers >= 5 (not part of CI; the JSON files are committed). Usage:
  golden.py CKPT_DIR --name NAME --out test/inputs/golden/NAME.json [--source "how CKPT_DIR was made"]
"""

import argparse
import json
import os
import platform
import random
import re
import shlex
import sys
import time

import torch
import transformers
from safetensors import safe_open
from transformers import MiniMaxM2Config, MiniMaxM2ForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import teacher_forced  # noqa: E402  (the criterion is defined once, there)

GROUP = 128


# ----------------------------------------------------------------------------------------------
# Checkpoint reading

def load_json(path):
    with open(path) as f:
        return json.load(f)


def read_hparams(ckpt):
    cfg = load_json(os.path.join(ckpt, "config.json"))
    if cfg.get("model_type") != "minimax_m2":
        raise SystemExit("%s/config.json: model_type %r, expected minimax_m2"
                         % (ckpt, cfg.get("model_type")))
    hp = {k: cfg[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                              "num_attention_heads", "num_key_value_heads", "head_dim",
                              "num_local_experts", "num_experts_per_tok", "vocab_size",
                              "rms_norm_eps", "max_position_embeddings")}
    # Partial RoPE may be spelled three ways (spec 1.1).
    rp = cfg.get("rope_parameters") or {}
    theta = rp.get("rope_theta", cfg.get("rope_theta"))
    if "rotary_dim" in cfg:
        rotary = cfg["rotary_dim"]
    elif "partial_rotary_factor" in rp:
        rotary = round(rp["partial_rotary_factor"] * hp["head_dim"])
    elif "partial_rotary_factor" in cfg:
        rotary = round(cfg["partial_rotary_factor"] * hp["head_dim"])
    else:
        rotary = hp["head_dim"]
    if theta is None:
        raise SystemExit("%s/config.json: no rope_theta" % ckpt)
    hp["rotary_dim"] = rotary
    hp["rope_theta"] = float(theta)
    for flag, want in (("scoring_func", "sigmoid"), ("use_qk_norm", True),
                       ("qk_norm_type", "per_layer"), ("use_routing_bias", True)):
        if flag in cfg and cfg[flag] != want:
            raise SystemExit("%s/config.json: %s = %r, HF minimax_m2 implements %r"
                             % (ckpt, flag, cfg[flag], want))
    qc = cfg.get("quantization_config", {})
    hp["quant_method"] = qc.get("quant_method", "none")
    gen_path = os.path.join(ckpt, "generation_config.json")
    gen = load_json(gen_path) if os.path.exists(gen_path) else {}
    hp["bos_token_id"] = gen.get("bos_token_id")
    hp["eos_token_id"] = gen.get("eos_token_id")
    return hp


def open_tensors(ckpt):
    """{name: shard path} from the index, or from model.safetensors alone."""
    idx = os.path.join(ckpt, "model.safetensors.index.json")
    if os.path.exists(idx):
        wm = load_json(idx)["weight_map"]
        return {n: os.path.join(ckpt, f) for n, f in wm.items()}
    single = os.path.join(ckpt, "model.safetensors")
    with safe_open(single, "pt") as f:
        return {n: single for n in f.keys()}


class Tensors:
    def __init__(self, ckpt):
        self.where = open_tensors(ckpt)
        self.files = {}
        self.used = set()

    def has(self, name):
        return name in self.where

    def get(self, name):
        path = self.where.get(name)
        if path is None:
            raise SystemExit("tensor %s missing from the checkpoint" % name)
        if path not in self.files:
            self.files[path] = safe_open(path, "pt")
        self.used.add(name)
        return self.files[path].get_tensor(name)


def unpack_nibbles(words, axis_len):
    """int32 [R, C] holding 8 nibbles per word along dim 0 -> int [8R, C] (nibble j of word r is
    row 8r+j). Arithmetic shifts are fine: the mask keeps only the 4 bits of interest."""
    shifts = torch.arange(8, dtype=torch.int32) * 4
    q = (words.unsqueeze(1) >> shifts.view(1, 8, 1)) & 0xF
    out = q.reshape(words.shape[0] * 8, words.shape[1])
    assert out.shape[0] == axis_len
    return out


def linear_fp32(t, prefix, k_in, n_out):
    """fp32 W[n_out, k_in] of a linear, dequantized if <prefix>.qweight exists (spec 4.1/4.2)."""
    if not t.has(prefix + ".qweight"):
        w = t.get(prefix + ".weight").to(torch.float32)
        assert tuple(w.shape) == (n_out, k_in), (prefix, w.shape)
        return w
    qweight = t.get(prefix + ".qweight")
    qzeros = t.get(prefix + ".qzeros")
    scales = t.get(prefix + ".scales")
    groups = k_in // GROUP
    assert qweight.dtype == torch.int32 and tuple(qweight.shape) == (k_in // 8, n_out), prefix
    assert qzeros.dtype == torch.int32 and tuple(qzeros.shape) == (groups, n_out // 8), prefix
    assert scales.dtype == torch.float16 and tuple(scales.shape) == (groups, n_out), prefix
    if t.has(prefix + ".g_idx"):
        g_idx = t.get(prefix + ".g_idx")
        want = torch.arange(k_in, dtype=torch.int32) // GROUP
        if not torch.equal(g_idx.to(torch.int32), want):
            raise SystemExit("%s.g_idx is not k // 128 (act-order is not supported)" % prefix)
    q = unpack_nibbles(qweight, k_in).to(torch.float32)                      # [K, N]
    z = unpack_nibbles(qzeros.t().contiguous(), n_out).t().to(torch.float32) + 1  # [G, N]
    s = scales.to(torch.float32)                                             # [G, N]
    w = (q - z.repeat_interleave(GROUP, dim=0)) * s.repeat_interleave(GROUP, dim=0)
    return w.t().contiguous()                                                # [N, K]


def hf_state_dict(t, hp):
    """The checkpoint's tensors under HF's native parameter names, all fp32."""
    H, I, E = hp["hidden_size"], hp["intermediate_size"], hp["num_local_experts"]
    Q = hp["num_attention_heads"] * hp["head_dim"]
    KV = hp["num_key_value_heads"] * hp["head_dim"]
    f32 = lambda name: t.get(name).to(torch.float32)  # noqa: E731
    sd = {
        "model.embed_tokens.weight": f32("model.embed_tokens.weight"),
        "model.norm.weight": f32("model.norm.weight"),
        "lm_head.weight": f32("lm_head.weight"),
    }
    for l in range(hp["num_hidden_layers"]):
        src = "model.layers.%d." % l
        dst = "model.layers.%d." % l
        for n in ("input_layernorm", "post_attention_layernorm"):
            sd[dst + n + ".weight"] = f32(src + n + ".weight")
        for n in ("q_norm", "k_norm"):
            sd[dst + "self_attn." + n + ".weight"] = f32(src + "self_attn." + n + ".weight")
        for n, (k_in, n_out) in (("q_proj", (H, Q)), ("k_proj", (H, KV)), ("v_proj", (H, KV)),
                                 ("o_proj", (Q, H))):
            sd[dst + "self_attn." + n + ".weight"] = linear_fp32(t, src + "self_attn." + n,
                                                                 k_in, n_out)
        moe = src + "block_sparse_moe."
        sd[dst + "mlp.gate.weight"] = linear_fp32(t, moe + "gate", H, E)
        sd[dst + "mlp.e_score_correction_bias"] = f32(moe + "e_score_correction_bias")
        gate_up, down = [], []
        for e in range(E):
            x = moe + "experts.%d." % e
            w1 = linear_fp32(t, x + "w1", H, I)
            w3 = linear_fp32(t, x + "w3", H, I)
            gate_up.append(torch.cat([w1, w3], dim=0))           # [2I, H]: gate rows, then up
            down.append(linear_fp32(t, x + "w2", I, H))          # [H, I]
        sd[dst + "mlp.experts.gate_up_proj"] = torch.stack(gate_up)
        sd[dst + "mlp.experts.down_proj"] = torch.stack(down)
    return sd


def build_model(ckpt, hp):
    cfg = MiniMaxM2Config(
        vocab_size=hp["vocab_size"], hidden_size=hp["hidden_size"],
        intermediate_size=hp["intermediate_size"], num_hidden_layers=hp["num_hidden_layers"],
        num_attention_heads=hp["num_attention_heads"],
        num_key_value_heads=hp["num_key_value_heads"], head_dim=hp["head_dim"],
        max_position_embeddings=hp["max_position_embeddings"], rms_norm_eps=hp["rms_norm_eps"],
        num_local_experts=hp["num_local_experts"],
        num_experts_per_tok=hp["num_experts_per_tok"], tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": hp["rope_theta"],
                         "partial_rotary_factor": hp["rotary_dim"] / hp["head_dim"]},
        bos_token_id=hp["bos_token_id"], eos_token_id=hp["eos_token_id"],
        attn_implementation="eager", experts_implementation="eager")
    torch.manual_seed(0)
    model = MiniMaxM2ForCausalLM(cfg).to(torch.float32).eval()
    inv_freq = model.model.rotary_emb.inv_freq
    if inv_freq.numel() != hp["rotary_dim"] // 2:
        raise SystemExit("HF rotary embedding has %d frequencies, expected rotary_dim/2 = %d"
                         % (inv_freq.numel(), hp["rotary_dim"] // 2))
    want = 1.0 / (hp["rope_theta"] ** (torch.arange(0, hp["rotary_dim"], 2,
                                                   dtype=torch.float64) / hp["rotary_dim"]))
    assert torch.allclose(inv_freq.double(), want, rtol=1e-6), "inv_freq disagrees with spec 3.3"

    t = Tensors(ckpt)
    sd = hf_state_dict(t, hp)
    expected = set(model.state_dict().keys())
    missing, extra = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if missing or extra:
        raise SystemExit("HF parameter names disagree: missing %s, unexpected %s"
                         % (missing[:5], extra[:5]))
    for name, value in model.state_dict().items():
        if tuple(value.shape) != tuple(sd[name].shape):
            raise SystemExit("%s: HF shape %s, checkpoint gives %s"
                             % (name, tuple(value.shape), tuple(sd[name].shape)))
    model.load_state_dict(sd, strict=True)
    # Every parameter and persistent buffer now holds checkpoint values (none left random).
    for name, value in model.state_dict().items():
        assert torch.equal(value, sd[name]), name
    unused = sorted(set(t.where) - t.used)
    ignored = [n for n in unused if re.match(r"model\.layers\.(\d+)\.", n)
               and int(n.split(".")[2]) >= hp["num_hidden_layers"] or "mtp" in n]
    if sorted(set(unused) - set(ignored)):
        raise SystemExit("checkpoint tensors not loaded into HF: %s" % unused[:10])
    n_params = sum(v.numel() for v in model.state_dict().values())
    print("loaded %d HF tensors (%d values) from %d checkpoint tensors; %d MTP tensors ignored"
          % (len(sd), n_params, len(t.used), len(ignored)), file=sys.stderr)
    return model


# ----------------------------------------------------------------------------------------------
# Runs

@torch.no_grad()
def last_logits(model, ids):
    out = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False)
    return out.logits[0, -1].to(torch.float32)


@torch.no_grad()
def all_logits(model, ids):
    out = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False)
    return out.logits[0].to(torch.float32)


@torch.no_grad()
def logits_and_route_gaps(model, ids, top_k):
    """All positions' logits plus, per position, the smallest gap over layers between the k-th and
    (k+1)-th routing choice score (sigmoid(router logit) + bias): a small gap is a routing
    near-tie, where rounding can swap an expert and move the logits far."""
    gaps = []

    def hook(layer):
        def record(module, inputs, out):
            choice = torch.sigmoid(out[0].float()) + layer.mlp.e_score_correction_bias.float()
            srt = choice.sort(dim=-1, descending=True).values
            gaps.append(srt[:, top_k - 1] - srt[:, top_k] if top_k < srt.shape[-1]
                        else torch.full_like(srt[:, 0], 99.0))  # top-k = all experts: no tie possible
        return record

    handles = [l.mlp.gate.register_forward_hook(hook(l)) for l in model.model.layers]
    try:
        logits = all_logits(model, ids)
    finally:
        for h in handles:
            h.remove()
    return logits, torch.stack(gaps).min(dim=0).values


def greedy_fp32(model, prompt, steps):
    ids, rows = list(prompt), []
    for _ in range(steps):
        row = last_logits(model, ids)
        rows.append(row)
        ids.append(int(torch.argmax(row)))
    return ids[len(prompt):], torch.stack(rows)


def greedy_free(model, prompt, steps):
    ids = list(prompt)
    for _ in range(steps):
        ids.append(int(torch.argmax(last_logits(model, ids))))
    return ids[len(prompt):]


def make_prompts(vocab, lengths, specials, seed):
    """Deterministic prompt id lists: plain ids below min(vocab, 2000) (the tiny tokenizer's BPE
    range) with the special ids sprinkled in (the first prompt starts with the first special)."""
    rng = random.Random(seed)
    plain = min(vocab, 2000)
    prompts = []
    for i, n in enumerate(lengths):
        p = [rng.randrange(plain) for _ in range(n)]
        if specials:
            if i == 0:
                p[0] = specials[0]
            for j, s in enumerate(specials[1:] if i == 0 else specials):
                if (i + j) % 2 == 1 and n > 2:
                    p[rng.randrange(1, n)] = s
        prompts.append(p)
    return prompts


def rounded(xs, nd=5):
    return [round(float(x), nd) for x in xs]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--source", help="command that produced CKPT (default: make_checkpoint.json)")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--prompt-lengths", default="5,12,23,40")
    ap.add_argument("--prompt-seed", type=int, default=7)
    ap.add_argument("--special-ids", default="",
                    help="comma-separated ids to place in prompts (default: generation_config bos)")
    ap.add_argument("--full-rows", type=int, default=4, help="steps whose full logits are kept")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--threshold", type=float,
                    help="near-tie margin threshold stored in the file (default: "
                         "THRESHOLD_PER_LOGIT_STD x mean logit std)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()

    hp = read_hparams(a.ckpt)
    source = a.source
    mc = os.path.join(a.ckpt, "make_checkpoint.json")
    if source is None and os.path.exists(mc):
        source = "python3 test/inputs/scripts/make_checkpoint.py " + " ".join(
            shlex.quote(x) for x in load_json(mc)["argv"])
    if source is None:
        raise SystemExit("--source is required for checkpoints not made by make_checkpoint.py")
    specials = ([int(x) for x in a.special_ids.split(",") if x] if a.special_ids else
                ([hp["bos_token_id"]] if hp["bos_token_id"] is not None else []))
    for s in specials:
        if not 0 <= s < hp["vocab_size"]:
            raise SystemExit("special id %d outside the vocabulary" % s)
    prompts = make_prompts(hp["vocab_size"], [int(x) for x in a.prompt_lengths.split(",")],
                           specials, a.prompt_seed)

    model = build_model(a.ckpt, hp)
    model_bf16 = build_model(a.ckpt, hp).to(torch.bfloat16)  # like from_pretrained(dtype=bf16)
    results, agree_all, steps_all, crit_fail_all = [], 0, 0, 0
    per_prompt = []
    for p in prompts:
        cont, rows = greedy_fp32(model, p, a.steps)
        # Consistency: one forward over the whole sequence gives the same rows (teacher forcing
        # is the same computation as the step-by-step loop, up to fp32 summation order).
        tf_rows, gaps = logits_and_route_gaps(model, p + cont[:-1], hp["num_experts_per_tok"])
        tf_rows, gaps = tf_rows[len(p) - 1:], gaps[len(p) - 1:].tolist()
        consistency = float((tf_rows - rows).abs().max())
        assert consistency < 1e-3, "fp32 full-sequence and stepwise logits disagree: %g" % consistency

        top5 = torch.topk(rows, 5, dim=-1)
        stds = rows.std(dim=-1).tolist()
        steps = []
        for i in range(a.steps):
            vals, ids = top5.values[i].tolist(), top5.indices[i].tolist()
            assert ids[0] == cont[i]
            steps.append({"token": cont[i], "top5_ids": ids, "top5_logits": rounded(vals),
                          "margin": round(vals[0] - vals[1], 6), "logit_std": round(stds[i], 4),
                          "route_gap": round(gaps[i], 6)})
        per_prompt.append((p, cont, rows, steps))

    # The near-tie threshold scales with the logits (teacher_forced.py explains the factor).
    all_std = [s["logit_std"] for _, _, _, st in per_prompt for s in st]
    threshold = round(teacher_forced.THRESHOLD_PER_LOGIT_STD * sum(all_std) / len(all_std), 3)
    if a.threshold is not None:
        threshold = a.threshold

    for p, cont, rows, steps in per_prompt:
        # bf16, teacher-forced along the fp32 continuation (one prefill over prompt + tokens).
        b_rows = all_logits(model_bf16, p + cont[:-1])[len(p) - 1:]
        golden_view = {"steps": steps}
        rep = teacher_forced.compare(golden_view, b_rows.tolist(),
                                     [int(x) for x in torch.argmax(b_rows, -1)], threshold,
                                     teacher_forced.ROUTE_GAP_THRESHOLD)
        free = greedy_free(model_bf16, p, a.steps)
        first_div = next((i for i in range(a.steps) if free[i] != cont[i]), None)
        err = (b_rows - rows)
        bf16 = {"exact_agreement": rep["exact_agreement"], "criterion_ok": rep["ok"],
                "criterion_failures": rep["failures"],
                "max_abs_logit_err": round(float(err.abs().max()), 5),
                "rms_logit_err": round(float(err.pow(2).mean().sqrt()), 5),
                "disagreements": rep["disagreements"],
                "free_running_first_divergence": first_div}
        agree_all += rep["agree"]
        steps_all += a.steps
        crit_fail_all += len(rep["failures"])
        results.append({
            "prompt_ids": p, "continuation": cont, "steps": steps,
            "full_logits": [rounded(r) for r in rows[:a.full_rows].tolist()],
            "hf_bf16": bf16})
        print("prompt len %2d: bf16 teacher-forced agreement %.3f, criterion %s, "
              "free-running divergence at %s, max |dlogit| %.4f"
              % (len(p), rep["exact_agreement"], "ok" if rep["ok"] else "FAIL", first_div,
                 bf16["max_abs_logit_err"]), file=sys.stderr)

    margins = sorted(s["margin"] for r in results for s in r["steps"])
    flips = [d["hf_margin"] for r in results for d in r["hf_bf16"]["disagreements"]]
    doc = {
        "format": "mmc-golden-1",
        "name": a.name,
        "command": "python3 test/inputs/scripts/golden.py " + " ".join(
            shlex.quote(x) for x in argv),
        "checkpoint_source": source,
        "reference": "transformers %s MiniMaxM2ForCausalLM, torch %s, fp32 on CPU (%s), "
                     "eager attention and experts, weights dequantized to fp32"
                     % (transformers.__version__, torch.__version__, platform.machine()),
        "hparams": hp,
        "steps": a.steps,
        "margin_threshold": threshold,
        "margin_threshold_rule": "%g x mean logit std over all steps (teacher_forced.py)"
                                 % teacher_forced.THRESHOLD_PER_LOGIT_STD,
        "route_gap_threshold": teacher_forced.ROUTE_GAP_THRESHOLD,
        "row_semantics": "steps[i] / full_logits[i]: logits at the last position of "
                         "prompt_ids + continuation[:i]; continuation[i] is their argmax",
        "margin_quantiles": {"min": margins[0], "p10": margins[len(margins) // 10],
                             "median": margins[len(margins) // 2]},
        "near_tie_fraction": round(sum(
            s["margin"] < threshold or s["route_gap"] < teacher_forced.ROUTE_GAP_THRESHOLD
            for r in results for s in r["steps"]) / len(margins), 4),
        "hf_bf16_summary": {"exact_agreement": round(agree_all / steps_all, 4),
                            "criterion_failures": crit_fail_all,
                            "largest_margin_flipped": max(flips) if flips else None,
                            "max_abs_logit_err": max(r["hf_bf16"]["max_abs_logit_err"]
                                                     for r in results)},
        "prompts": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("%s: %d prompts x %d steps, HF bf16 vs fp32 agreement %.3f, %d criterion failures, "
          "%.0f KB, %.1f s" % (a.out, len(prompts), a.steps, agree_all / steps_all,
                               crit_fail_all, os.path.getsize(a.out) / 1024, time.time() - t0),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
