"""DuoAttention head identification (algorithms.md section 6.1) on our model: one gate per KV head mixes full attention
with streaming attention (sink + recent window); all weights frozen, the gates trained so that the mixed model's last
hidden states on the answer tokens of synthetic retrieval examples match full attention's, with an L1 penalty pulling
gates to 0. Heads whose gate stays high need the whole memory (retrieval heads); the engine reads the gates as
`duo-heads.tsv` (one line per layer, a float per KV head) and binarizes them by sparsity.

    python -m engram_train.duo_gates MODEL_DIR DATA_DIR [--steps 400] [--out MODEL_DIR/duo-heads.tsv]
"""
import argparse
import json
import math
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from . import corpus, data, tasks

KINDS = ("passkey", "needle", "multikey", "dialogue", "reading")


def streaming_mask(n, sink, recent, device):
    """[n, n] bool: query i may attend key j when j <= i and (j < sink or i - j < recent)."""
    i = torch.arange(n, device=device)[:, None]
    j = torch.arange(n, device=device)[None, :]
    return (j <= i) & ((j < sink) | (i - j < recent))


def attention(q, k, v, mask):
    """q [H, n, d], k/v [H, n, d] (already expanded to the query heads), mask [n, n] bool -> [H, n, d]."""
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s.float(), dim=-1).to(q.dtype) @ v


def forward(model, ids, gates, sink, recent):
    """Last hidden states [n, hidden] with each layer's attention output mixed per KV head:
    gate * full + (1 - gate) * streaming. gates: [layers, kv_heads] (None: full attention everywhere)."""
    m = model.model
    cfg = model.config
    n = ids.shape[0]
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    group = heads // kv
    x = m.embed_tokens(ids[None])
    pos = torch.arange(n, device=ids.device)[None]
    cos, sin = m.rotary_emb(x, pos)
    full = streaming_mask(n, n, n, ids.device)
    stream = streaming_mask(n, sink, recent, ids.device)
    for li, layer in enumerate(m.layers):
        a = layer.self_attn
        h = layer.input_layernorm(x)
        q = a.q_proj(h).view(1, n, heads, d).transpose(1, 2)
        k = a.k_proj(h).view(1, n, kv, d).transpose(1, 2)
        v = a.v_proj(h).view(1, n, kv, d).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = k.repeat_interleave(group, dim=1)[0]
        v = v.repeat_interleave(group, dim=1)[0]
        q = q[0]
        o = attention(q, k, v, full)
        if gates is not None:
            g = gates[li].repeat_interleave(group)[:, None, None]
            o = g * o + (1 - g) * attention(q, k, v, stream)
        o = o.transpose(0, 1).reshape(1, n, heads * d)
        x = x + a.o_proj(o)
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return m.norm(x)[0]


def examples(data_dir, tokenizer, seed, max_tokens):
    """Endless (ids, answer positions) of retrieval examples that fit in max_tokens."""
    paragraphs = corpus.load_paragraphs(Path(data_dir) / "corpus", held_out=False)
    gen = tasks.TaskGenerator(paragraphs, split="train", seed=seed, refuse_share=0.0)
    enc = data.PieceEncoder(tokenizer)
    r = random.Random(seed)
    while True:
        ex = gen.example(target_words=r.randint(int(max_tokens * 0.3), int(max_tokens * 0.55)), kind=r.choice(KINDS))
        ids, w = enc.example(ex)
        if len(ids) > max_tokens:
            continue
        answer = [i - 1 for i, x in enumerate(w) if x != 1.0 and i > 0]  # hidden states that predict answer tokens
        if answer:
            yield torch.tensor(ids), torch.tensor(answer)


def lr_at(step, steps, lr):
    """DuoAttention's schedule: 20% ramp up, 20% ramp down, floor 0.1."""
    fifth = max(1, steps / 5)
    return lr * min(1.0, max((step + 1) / fifth, 0.1), max((steps - step) / fifth, 0.1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("data_dir", help="the training data folder (corpus/ for the synthetic examples' filler)")
    ap.add_argument("--out", help="gate file (default: MODEL_DIR/duo-heads.tsv)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--reg", type=float, default=0.05, help="L1 weight on the gates (DuoAttention's reg_weight)")
    ap.add_argument("--sink", type=int, default=64)
    ap.add_argument("--recent", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, help="longest example (default: the model's trained context)")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    model_dir = Path(a.model_dir)
    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = model.config
    max_tokens = a.max_tokens or cfg.max_position_embeddings
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    gates = torch.nn.Parameter(torch.ones(cfg.num_hidden_layers, cfg.num_key_value_heads))
    opt = torch.optim.AdamW([gates], lr=a.lr, weight_decay=0.0)
    stream = examples(a.data_dir, tokenizer, a.seed, max_tokens)
    t0 = time.time()
    for step in range(a.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, a.steps, a.lr)
        ids, answer = next(stream)
        with torch.no_grad():
            target = forward(model, ids, None, a.sink, a.recent)[answer]
        mixed = forward(model, ids, gates, a.sink, a.recent)[answer]
        distill = (mixed - target).pow(2).mean()
        loss = distill + a.reg * gates.abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            gates.clamp_(0, 1)
        if step % 25 == 0 or step == a.steps - 1:
            print(f"step {step:4d} | distill {distill.item():.4f} | mean gate {gates.mean().item():.3f} | "
                  f"{ids.shape[0]} tokens | {time.time() - t0:.0f}s", flush=True)
    out = Path(a.out) if a.out else model_dir / "duo-heads.tsv"
    with open(out, "w") as f:
        for row in gates.detach().tolist():
            f.write("\t".join(f"{g:.18e}" for g in row) + "\n")
    cfg_out = out.with_suffix(".json")
    cfg_out.write_text(json.dumps(dict(method="DuoAttention gates (algorithms.md 6.1)", steps=a.steps, lr=a.lr,
                                       reg_weight=a.reg, sink_size=a.sink, recent_size=a.recent, max_tokens=max_tokens,
                                       kinds=KINDS, seed=a.seed, supervision="distill, answer tokens"), indent=2) + "\n")
    print("gates per layer (rows) and KV head:")
    for row in gates.detach().tolist():
        print("  " + "  ".join(f"{g:.3f}" for g in row))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
