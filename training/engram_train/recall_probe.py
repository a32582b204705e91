"""Associative-recall probe (MQAR-style): how many steps a Llama of a given size needs on this machine before it looks a
value up by its key, the skill every QA answer needs after copying.

Each sequence is BOS, then --pairs pairs `key d d d d ;` (keys distinct within the sequence, from --keys ids; values
of --digits digit tokens, as our tokenizer writes numbers), then questions `? key d d d d` for some of the keys; the
loss and the exact-match rate printed are over the questions' digits (teacher-forced argmax). Uniform guessing is
ln(10) = 2.30 nats per digit; a model that recalls goes towards 0.

    python -m engram_train.recall_probe --layers 2 --width 128 --steps 2000
"""
import argparse
import random
import time

import torch
import torch.nn.functional as F

from . import train

DIGITS = list(range(19, 29))  # '0'..'9' in the engram tokenizer
SEP, ASK = 14, 15             # two punctuation-like ids as separators


def batch(r, n, seq, keys, pairs, digits, questions):
    xs, ws = [], []
    for _ in range(n):
        ids, w = [], []
        while len(ids) < seq + 1:
            ks = r.sample(range(100, 100 + keys), pairs)
            vals = {k: [r.choice(DIGITS) for _ in range(digits)] for k in ks}
            ids += [1]
            w += [0.0]
            for k in ks:
                ids += [k] + vals[k] + [SEP]
                w += [0.0] * (digits + 2)
            for k in r.sample(ks, questions):
                ids += [ASK, k] + vals[k]
                w += [0.0, 0.0] + [1.0] * digits
        xs.append(ids[:seq + 1])
        ws.append(w[:seq + 1])
    return torch.tensor(xs), torch.tensor(ws)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--keys", type=int, default=256, help="ids keys are drawn from")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--digits", type=int, default=4)
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", help="start from this training checkpoint's weights (its config: --config)")
    ap.add_argument("--config", default=None)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    r = random.Random(a.seed)
    from transformers import LlamaForCausalLM
    if a.init:
        model = LlamaForCausalLM(train.model_config(dict(train.CONFIGS[a.config]), 4096))
        model.load_state_dict(torch.load(a.init, map_location="cpu")["model"])
    else:
        c = dict(hidden_size=a.width, num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.heads,
                 intermediate_size=2 * a.width, seq_len=a.seq)
        model = LlamaForCausalLM(train.model_config(c, 4096))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.0)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        x, w = batch(r, a.batch, a.seq, a.keys, a.pairs, a.digits, a.questions)
        logits = model(input_ids=x[:, :-1]).logits
        ce = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="none")
        ans = w[:, 1:].reshape(-1) > 0
        loss = ce.mean() + ce[ans].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == 1:
            hit = (logits.argmax(-1).reshape(-1) == x[:, 1:].reshape(-1))[ans].float().mean().item()
            print(f"step {step:5d} | recalled-digit loss {ce[ans].mean().item():.3f} | digit accuracy {hit:.2f}"
                  f" | {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
