"""Evaluates an exported engram-tiny with the PyTorch reference (Hugging Face transformers): exact-match accuracy of
greedy answers per skill at 512/1K/2K tokens on held-out phrasings, entities and filler text, refusal accuracy, and
perplexity on held-out prose. Writes eval.json, eval_examples.jsonl (prompt pieces, question, expected and PyTorch
answers, for the Java engine to replay) and loss.png.

    python -m engram_train.evaluate MODEL_DIR DATA_DIR OUT_DIR [--per-cell 100]
"""
import argparse
import json
import math
import random
from pathlib import Path

import torch

from . import corpus, data, tasks

LENGTHS = (512, 1024, 2048)


def build_examples(enc, gen, kind, length, n, refuse, r):
    """n examples whose prompt (context + question) is 80-100% of `length` tokens (or the closest that fits when the
    filler paragraphs are too coarse for that window)."""
    out = []
    attempts = 0
    while len(out) < n and attempts < n * 30:
        words = int(length / 1.6)
        best = None
        for _ in range(6):
            attempts += 1
            ex = gen.example(target_words=words, kind=kind, refuse=refuse)
            q, ans = ex.qa[0]
            ids = enc.context(ex.pieces) + enc.question(q)
            if len(ids) <= length and (best is None or len(ids) > len(best[1])):
                best = (ex, ids)
            if 0.8 * length <= len(ids) <= length:
                break
            words = max(5, int(words * length * 0.9 / len(ids)))
        if best is not None:
            out.append(best)
    return out


def correct(text, value):
    """An answer is right when it is the refusal and a refusal was expected, or when it holds the expected value and
    is not a refusal (answers restate the question's key and copy the fact: tasks.echo)."""
    if isinstance(value, list):  # a summary: every fact's value
        return all(v in text for v in value)
    if value == tasks.REFUSAL:
        return text.strip() == tasks.REFUSAL
    return value in text and not text.strip().startswith(tasks.REFUSAL)


@torch.no_grad()
def greedy(model, prompts, device, max_new=48):
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), 3, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new,
                         do_sample=False, eos_token_id=data.EOS_ID, pad_token_id=3)
    res = []
    for row in out[:, width:].tolist():
        if data.EOS_ID in row:
            row = row[:row.index(data.EOS_ID)]
        res.append(row)
    return res


def run(model_dir: Path, data_dir: Path, out: Path, per_cell=100, device=None, lengths=LENGTHS, ppl_window=1024,
        kinds=None, name="eval"):
    """Writes NAME.json (accuracy per skill and length, held-out perplexity) and NAME_examples.jsonl. Lengths beyond the
    model's trained context are only generated (for the Java engine's memory policies to answer): no PyTorch answer."""
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    enc = data.PieceEncoder(tok)
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    held = corpus.load_paragraphs(data_dir / "corpus", held_out=True)
    if not held:  # a data folder without held-out sources (the smoke run): evaluate on training text, and say so
        print("no held-out text source: evaluating on training paragraphs", flush=True)
        held = corpus.load_paragraphs(data_dir / "corpus", held_out=False)
    r = random.Random(99)
    gen = tasks.TaskGenerator(held, "heldout", seed=4242)
    table, records = {}, []
    window = model.config.max_position_embeddings
    for kind in kinds or (tasks.TaskGenerator.KINDS + ("refusal",)):
        for length in lengths:
            if kind == "refusal":
                exs = []
                for k in ("passkey", "needle", "multikey", "uuid", "vars", "dialogue"):
                    exs += build_examples(enc, gen, k, length, max(1, per_cell // 6), True, r)
            else:
                exs = build_examples(enc, gen, kind, length, per_cell, False, r)
            answers = []
            if length > window:
                answers = [None] * len(exs)
            for i in range(0, len(exs) if length <= window else 0, 25):
                answers += greedy(model, [e[1] for e in exs[i:i + 25]], device, max_new=160 if kind == "summary" else 48)
            ok, recall = 0, 0.0
            for (ex, ids), ans in zip(exs, answers):
                text = tok.decode(ans).strip() if ans is not None else None
                expected, value = ex.qa[0][1], ex.values[0]
                hit = text is not None and correct(text, value)
                ok += hit
                if isinstance(value, list) and text is not None:
                    recall += sum(v in text for v in value) / len(value)
                records.append(dict(kind=kind, length=length, tokens=len(ids), pieces=ex.pieces, question=ex.qa[0][0],
                                    expected=expected, value=value, answer=text, answer_ids=ans, correct=hit))
            if length > window:
                print(f"eval {kind:9s} @ {length:5d}: {len(exs)} examples for the engine (beyond the {window}-token window)",
                      flush=True)
                continue
            table[f"{kind}@{length}"] = round(ok / max(1, len(exs)), 3)
            if kind == "summary":
                table[f"summary_fact_recall@{length}"] = round(recall / max(1, len(exs)), 3)
            print(f"eval {kind:9s} @ {length:5d}: {ok}/{len(exs)} = {ok / max(1, len(exs)):.3f}", flush=True)
    # perplexity on held-out prose
    wins = data.prose_windows(tok, held, ppl_window, 64)
    nll, n = 0.0, 0
    for w in wins:
        x = torch.tensor(w, device=device).unsqueeze(0)
        logits = model(input_ids=x[:, :-1]).logits.float()
        nll += torch.nn.functional.cross_entropy(logits[0], x[0, 1:], reduction="sum").item()
        n += x.size(1) - 1
    ppl = math.exp(nll / max(1, n))
    table[f"heldout_prose_ppl@{ppl_window}"] = round(ppl, 2)
    table["heldout_prose_tokens"] = n
    print(f"held-out prose perplexity ({ppl_window}-token windows, {n} tokens): {ppl:.2f}", flush=True)
    (out / f"{name}.json").write_text(json.dumps(table, indent=2) + "\n")
    with open(out / f"{name}_examples.jsonl", "w") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    plot(out / "train_log.jsonl", out / "loss.png")
    return table


def plot(log: Path, png: Path):
    if not log.exists():
        return
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no loss plot")
        return
    rows = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
    rows = [r for r in rows if "loss" in r]  # probe records carry accuracies only
    t = [r["tokens"] / 1e6 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(t, [r["loss"] for r in rows], label="all tokens", lw=1.2)
    ans = [(r["tokens"] / 1e6, r["answer_loss"]) for r in rows if r.get("answer_loss") is not None]
    ax.plot([a[0] for a in ans], [a[1] for a in ans], label="answer tokens", lw=1.2)
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_yscale("log")
    ax.set_title("engram-tiny training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--per-cell", type=int, default=100)
    ap.add_argument("--lengths", type=int, nargs="*", default=list(LENGTHS))
    ap.add_argument("--kinds", nargs="*", help="skills to evaluate (default: all, and refusals)")
    ap.add_argument("--ppl-window", type=int, default=512)
    ap.add_argument("--name", default="eval", help="output names: NAME.json, NAME_examples.jsonl")
    a = ap.parse_args()
    run(Path(a.model), Path(a.data), Path(a.out), a.per_cell, lengths=a.lengths, ppl_window=a.ppl_window,
        kinds=a.kinds, name=a.name)


if __name__ == "__main__":
    main()
