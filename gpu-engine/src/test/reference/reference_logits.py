#!/usr/bin/env python3
"""Independent reference logits for Engram's engine tests.

For each Hugging Face model folder given, computes with PyTorch (float32):
  - the logits of a fixed prompt at a few positions,
  - a 64-token greedy continuation (full causal recompute at every step: no KV cache),
and writes them as JSON goldens that the Java tests compare against (max |dlogit| <= 1e-3 for F32 weights).

The forward pass is Hugging Face `transformers`' LlamaForCausalLM / Qwen2ForCausalLM / MistralForCausalLM when
`transformers` is importable (the committed goldens come from transformers 5.18.0 on CPU); otherwise this file's own
PyTorch implementation of the same
conventions (rotate_half RoPE with rope_scaling linear/llama3, repeat_kv GQA, float32 RMSNorm, SwiGLU, q/k/v biases,
tied head). Nothing here shares code with the Java engine; safetensors are parsed from the format description.

usage: reference_logits.py OUT_DIR MODEL_DIR[=NAME] ...

Regenerating the goldens (the tiny models are rewritten bit-identically from their seed):
  pip install --target /tmp/hfsite transformers torch   # or the CPU torch wheel
  for m in LLAMA-F32 LLAMA_GQA-F32 LLAMA_GQA-BF16 QWEN2-F32 QWEN2-F16 MISTRAL-F32; do
    java -cp topology/target/engram.jar io.engram.engine.model.synthetic.TinyModels /tmp/tiny/$m ${m%-*} ${m##*-} 42; done
  PYTHONPATH=/tmp/hfsite python3 gpu-engine/src/test/reference/reference_logits.py gpu-engine/src/test/resources/golden \
    /tmp/tiny/* ../shared/models/stories260K-hf=stories260K
"""
import hashlib
import json
import math
import os
import random
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

GREEDY_STEPS = 64
PROMPT_LEN = 24


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        buf = raw[base + a: base + b]
        if t["dtype"] == "F32":
            arr = np.frombuffer(buf, dtype="<f4")
        elif t["dtype"] == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif t["dtype"] == "BF16":
            arr = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: unsupported dtype {t['dtype']}")
        out[name] = torch.from_numpy(arr.reshape(t["shape"]).copy())
    return out


def load_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    w = {}
    for f in files:
        w.update(read_safetensors(os.path.join(model_dir, f)))
    return w


def inv_freq(cfg, head_dim):
    theta = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    rs = cfg.get("rope_scaling")
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "linear":
            inv = inv / rs["factor"]
        elif kind == "llama3":
            factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
            old = rs["original_max_position_embeddings"]
            lo_wl, hi_wl = old / lo, old / hi
            wl = 2 * math.pi / inv
            scaled = torch.where(wl > lo_wl, inv / factor, inv)
            smooth = (old / wl - lo) / (hi - lo)
            smoothed = (1 - smooth) * scaled / factor + smooth * scaled
            medium = ~(wl < hi_wl) * ~(wl > lo_wl)
            inv = torch.where(medium, smoothed, scaled)
        elif kind != "default":
            raise ValueError(f"rope_scaling {kind} not handled by the reference")
    return inv


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


class OwnModel:
    """HF conventions written out in plain PyTorch."""

    def __init__(self, model_dir):
        self.cfg = json.load(open(os.path.join(model_dir, "config.json")))
        self.w = load_weights(model_dir)
        c = self.cfg
        self.heads = c["num_attention_heads"]
        self.kv = c.get("num_key_value_heads", self.heads)
        self.hd = c.get("head_dim") or c["hidden_size"] // self.heads
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.inv = inv_freq(c, self.hd)
        self.bias = c["architectures"][0] == "Qwen2ForCausalLM" or c.get("attention_bias", False)

    def logits(self, ids):
        c, w = self.cfg, self.w
        T = len(ids)
        x = w["model.embed_tokens.weight"][torch.tensor(ids)]
        pos = torch.arange(T, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv.float())
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        for l in range(c["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = rms_norm(x, w[p + "input_layernorm.weight"], self.eps)
            q = h @ w[p + "self_attn.q_proj.weight"].T
            k = h @ w[p + "self_attn.k_proj.weight"].T
            v = h @ w[p + "self_attn.v_proj.weight"].T
            if self.bias:
                q = q + w[p + "self_attn.q_proj.bias"]
                k = k + w[p + "self_attn.k_proj.bias"]
                v = v + w[p + "self_attn.v_proj.bias"]
            q = q.view(T, self.heads, self.hd).transpose(0, 1)
            k = k.view(T, self.kv, self.hd).transpose(0, 1)
            v = v.view(T, self.kv, self.hd).transpose(0, 1)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            rep = self.heads // self.kv
            k = k.repeat_interleave(rep, dim=0)
            v = v.repeat_interleave(rep, dim=0)
            att = (q @ k.transpose(1, 2)) / math.sqrt(self.hd)
            mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
            att = att.masked_fill(mask, float("-inf")).softmax(-1)
            o = (att @ v).transpose(0, 1).reshape(T, self.heads * self.hd)
            x = x + o @ w[p + "self_attn.o_proj.weight"].T
            h = rms_norm(x, w[p + "post_attention_layernorm.weight"], self.eps)
            g = h @ w[p + "mlp.gate_proj.weight"].T
            u = h @ w[p + "mlp.up_proj.weight"].T
            x = x + (F.silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
        x = rms_norm(x, w["model.norm.weight"], self.eps)
        head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        return (x @ head.T).double()


class HfModel:
    def __init__(self, model_dir):
        import transformers
        self.m = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
        self.version = transformers.__version__

    def logits(self, ids):
        with torch.no_grad():
            return self.m(torch.tensor([ids])).logits[0].double()


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_grad_enabled(False)
    try:
        import transformers  # noqa: F401
        use_hf = True
    except ImportError:
        use_hf = False
    for arg in sys.argv[2:]:
        model_dir, _, name = arg.partition("=")
        name = name or os.path.basename(model_dir.rstrip("/"))
        model = HfModel(model_dir) if use_hf else OwnModel(model_dir)
        ref = f"transformers {model.version}" if use_hf else f"own PyTorch {torch.__version__} forward (HF conventions)"
        cfg = json.load(open(os.path.join(model_dir, "config.json")))
        rng = random.Random(1234)
        prompt = [rng.randrange(0, min(cfg["vocab_size"], 456)) for _ in range(PROMPT_LEN)]
        lg = model.logits(prompt)
        positions = [0, PROMPT_LEN // 2, PROMPT_LEN - 1]
        ids = list(prompt)
        for _ in range(GREEDY_STEPS):
            ids.append(int(model.logits(ids)[-1].argmax()))
        st = [f for f in sorted(os.listdir(model_dir)) if f.endswith(".safetensors")]
        sha = {f: hashlib.sha256(open(os.path.join(model_dir, f), "rb").read()).hexdigest() for f in st}
        golden = {
            "model": name,
            "reference": ref,
            "safetensors_sha256": sha,
            "prompt_ids": prompt,
            "logit_positions": positions,
            "logits": [[round(float(v), 6) for v in lg[p]] for p in positions],
            "greedy_ids": ids[PROMPT_LEN:],
        }
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump(golden, f)
        print(f"{name}: {ref}; greedy {ids[PROMPT_LEN:PROMPT_LEN + 8]}...")


if __name__ == "__main__":
    main()
