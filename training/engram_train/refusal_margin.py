"""Whether a refusal threshold could be calibrated: for each held-out question (eval_examples.jsonl.gz beside the
model), the margin of the first answer token of "I don't know." over the best other token, and what adding a bias b
to that token would do to answerable accuracy and to refusals.

    python -m engram_train.refusal_margin MODEL_DIR [--biases 0 1 2 3 4]
"""
import argparse
import gzip
import json
from pathlib import Path

import torch

from . import data, tasks


def margins(model_dir: Path):
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    enc = data.PieceEncoder(tok)
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    first = enc.answer(tasks.REFUSAL)[0]
    out = []
    with torch.no_grad():
        for line in gzip.open(model_dir / "eval_examples.jsonl.gz", "rt"):
            e = json.loads(line)
            if e["kind"] in ("summary", "uuid") or e["answer"] is None:
                continue
            ids = enc.context(e["pieces"]) + enc.question(e["question"])
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
            refuse = logits[first].item()
            logits[first] = float("-inf")
            out.append((e["kind"], e["correct"], refuse - logits.max().item()))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--biases", type=float, nargs="+", default=[0, 1, 2, 3, 4])
    a = ap.parse_args()
    rows = margins(Path(a.model))
    answerable = [r for r in rows if r[0] != "refusal"]
    unanswerable = [r for r in rows if r[0] == "refusal"]
    print(f"{len(answerable)} answerable, {len(unanswerable)} unanswerable held-out questions")
    for b in a.biases:
        kept = sum(1 for _, ok, m in answerable if ok and m + b <= 0) / len(answerable)
        refused = sum(1 for _, _, m in answerable if m + b > 0) / len(answerable)
        right = sum(1 for _, _, m in unanswerable if m + b > 0) / len(unanswerable)
        print(f"bias {b:4.1f}: answerable right {kept:.3f} (refused {refused:.3f}), unanswerable refused {right:.3f}")


if __name__ == "__main__":
    main()
