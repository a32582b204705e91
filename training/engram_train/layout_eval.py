"""Accuracy of a model through the retrieval layout (memory_layout) on held-out long examples, and how often the
question step's attended memory held the example's own text in every layer ("fact seen"):

    python -m engram_train.layout_eval MODEL_DIR DATA_DIR --lengths 2048 4096 --kinds passkey needle --per-cell 12 \\
        [--per-query-head]
"""
import argparse
import random
from pathlib import Path

import torch

from . import corpus, evaluate, memory_layout


def seen(trace, own):
    """Whether every layer's attended ranges overlap the example's own tokens."""
    a, z = own
    return all(any(lo < z and hi > a for lo, hi in layer) for layer in trace)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--lengths", type=int, nargs="+", default=[2048, 4096])
    ap.add_argument("--kinds", nargs="+", default=["passkey", "needle"])
    ap.add_argument("--per-cell", type=int, default=12)
    ap.add_argument("--per-query-head", action="store_true")
    a = ap.parse_args()
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM
    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).eval()
    tok = Tokenizer.from_file(str(Path(a.model) / "tokenizer.json"))
    held = corpus.load_paragraphs(Path(a.data) / "corpus", held_out=True)
    lay = memory_layout.Layout(per_query_head=a.per_query_head)
    print(f"model {a.model}; layout {lay}")
    for length in a.lengths:
        for kind in a.kinds:
            samples = memory_layout.LongSamples(tok, held, seed=4242 + length, split="heldout", refuse_share=0.0)
            ok = fact = 0
            for _ in range(a.per_cell):
                ex = samples.sample(target=length, kind=kind)
                trace = []
                ans = tok.decode(memory_layout.greedy(model, ex, lay, trace=trace))
                ok += evaluate.correct(ans, ex.value)
                fact += seen(trace, ex.own)
            print(f"{length:6d} {kind:10s} accuracy {ok / a.per_cell:.3f}  fact seen {fact / a.per_cell:.3f}  "
                  f"({a.per_cell} examples)", flush=True)


if __name__ == "__main__":
    main()
