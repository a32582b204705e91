"""Induction probe: how many steps a Llama of a given size needs on this machine before it copies repeated token runs.

Each sequence is BOS + a random run of 8-24 tokens (from the first --vocab ids) repeated --repeats times, packed to
--seq tokens; the loss printed is the mean over every copy after the first (the predictable tokens). Uniform guessing
is ln(vocab) nats; a model that copies goes towards 0. Copying is the circuit every retrieval skill is built on, so a
training recipe should know this number before it spends hours on QA (training/PROBES.md).

    python -m engram_train.induction_probe --layers 2 --width 128 --vocab 512 --repeats 4 --steps 2000
"""
import argparse
import random
import time

import torch
import torch.nn.functional as F

from . import train


def batch(r, n, seq, vocab, repeats, run_min=8, run_max=24):
    xs, ws = [], []
    for _ in range(n):
        ids, w = [], []
        while len(ids) < seq + 1:
            run = [r.randrange(4, 4 + vocab) for _ in range(r.randint(run_min, run_max))]
            ids += [1] + run
            w += [0.0] * (1 + len(run))
            for _ in range(repeats - 1):
                ids += run
                w += [1.0] * len(run)
        xs.append(ids[:seq + 1])
        ws.append(w[:seq + 1])
    return torch.tensor(xs), torch.tensor(ws)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=512, help="ids the runs are drawn from")
    ap.add_argument("--model-vocab", type=int, default=4096)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-min", type=int, default=8)
    ap.add_argument("--run-max", type=int, default=24)
    ap.add_argument("--cpu-shape", action="store_true", help="the shape of the CPU model (train.CPU_SHAPE), GQA included")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    r = random.Random(a.seed)
    from transformers import LlamaForCausalLM
    c = dict(hidden_size=a.width, num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.heads,
             intermediate_size=2 * a.width, seq_len=a.seq)
    if a.cpu_shape:
        c = dict(train.CPU_SHAPE, seq_len=a.seq)
    model = LlamaForCausalLM(train.model_config(c, a.model_vocab))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=a.weight_decay)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        x, w = batch(r, a.batch, a.seq, a.vocab, a.repeats, a.run_min, a.run_max)
        logits = model(input_ids=x[:, :-1]).logits
        ce = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="none")
        copy = w[:, 1:].reshape(-1) > 0
        loss = ce.mean() + ce[copy].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == 1:
            print(f"step {step:5d} | copied-token loss {ce[copy].mean().item():.3f} | {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
