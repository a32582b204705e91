"""A ranking projection for the retrieval memory: per layer and KV head a matrix M that the engine applies to a step's
grouped query before ranking units (score = (M q) . r instead of q . r), learned while the model stays frozen.

Every retrieval-training probe so far (training/PROBES.md: ret, ret2, mix, qk) moved the model's own weights and cost
the native skills that copy answers. The ranking projection leaves the answering path as shipped: the model's logits
at native context are the same floats, and only which units a layer retrieves beyond the window changes.

    python -m engram_train.rank_adapter collect MODEL DATA OUT.pt --examples 400 --split train
    python -m engram_train.rank_adapter fit TRAIN.pt HELD.pt OUT_DIR [--rank-reg 1e-3] [--epochs 300]
    python -m engram_train.rank_adapter eval MODEL DATA [--ranking FILE] --lengths 4096 --per-cell 12

`collect` reads long examples (a QA example at a random depth of filler, memory_layout.LongSamples) through the
engine's layout with the frozen model and keeps, per layer, each question step's grouped query (before any
projection), the unit representatives and which units hold the answer's value. `fit` learns M per layer on those
(softmax over units, -log of the mass on the answer's units; M starts at the identity and is pulled towards it) and
writes `ranking.safetensors` (tensors `layers.N.query` [kv_heads * head_dim, head_dim], row g * head_dim + i giving
KV head g's element i, metadata: the layout's window,
whose rotation the queries carry). `eval` reports accuracy and how often the answer's unit was retrieved in every
layer, through the layout, with and without the projection.
"""
import argparse
from pathlib import Path

import torch

from . import corpus, evaluate, memory_layout

FILE = "ranking.safetensors"


def answer_units(tok, ex, units):
    """Indices of the units whose text (a few tokens beyond each edge) holds the example's value, within its own text."""
    a, z = ex.own
    out = []
    for i, (s, e) in enumerate(units):
        if s >= z or e <= a:
            continue
        text = tok.decode(ex.ids[max(0, s - 6):e + 6])
        if ex.value in text:
            out.append(i)
    return out


def collect(model, tok, paragraphs, n, seed, split, lengths, lay, out=None, distractors=0):
    """Probes of n sampled examples (those whose value lands in a unit); with `out`, written there every 20 examples
    too, so that a long collection stopped early keeps what it read. `distractors`: other examples' fact sentences in
    the filler of each."""
    samples = memory_layout.LongSamples(tok, paragraphs, seed=seed, split=split, refuse_share=0.0, lengths=lengths,
                                        distractors=distractors)
    rows = []  # per example: per layer (query [G, D], reprs [U, G, D], hit list)
    with torch.no_grad():
        for i in range(n):
            ex = samples.sample()
            probe = []
            memory_layout.forward(model, torch.tensor(ex.ids[:ex.answer_start]),
                                  [s for s in ex.steps if s[1] <= ex.answer_start], lay, probe=probe)
            if not probe or not probe[0]:
                continue
            units = probe[0][-1][2]
            hit = answer_units(tok, ex, units)
            if not hit:
                continue
            rows.append([(p[-1][0].float(), p[-1][1].float(), hit) for p in probe])
            if (i + 1) % 20 == 0:
                print(f"collected {len(rows)} of {i + 1} examples", flush=True)
                if out:
                    torch.save(rows, out)
    return rows


def recall(rows, rank, top, shared=False):
    """Share of examples whose answer unit is among the `top` best-ranked units in every layer, and per layer; with
    `shared`, every layer retrieves layer 0's choice (memory_layout.Layout.shared)."""
    layers = len(rows[0])
    per = [0] * layers
    every = 0
    for r in rows:
        ok = True
        for li, (q, reps, hit) in enumerate(r):
            if not (shared and li > 0):
                qq = q if rank is None else torch.einsum("gij,gj->gi", rank[li], q)
                score = (reps.double() * qq[None].double()).sum(dim=(1, 2))
                best = score.sort(descending=True, stable=True).indices[:top].tolist()
            good = any(h in best for h in hit)
            per[li] += good
            ok &= good
        every += ok
    return every / len(rows), [p / len(rows) for p in per]


def _batch(rows, li):
    """Layer li's probes padded to one tensor: queries [N, G, D], representatives [N, U, G, D], unit mask [N, U] and
    answer-unit mask [N, U]."""
    n = len(rows)
    u = max(len(r[li][1]) for r in rows)
    G, D = rows[0][li][0].shape
    q = torch.stack([r[li][0] for r in rows])
    reps = torch.zeros(n, u, G, D)
    valid = torch.zeros(n, u, dtype=torch.bool)
    hit = torch.zeros(n, u, dtype=torch.bool)
    for i, r in enumerate(rows):
        k = len(r[li][1])
        reps[i, :k] = r[li][1]
        valid[i, :k] = True
        hit[i, r[li][2]] = True
    return q, reps, valid, hit


def fit(train, held, top, epochs=300, reg=1e-3, lr=3e-3, low_rank=0, objective="mass"):
    """Per layer, M (identity plus a full or rank-`low_rank` update, pulled towards the identity by `reg`) that puts
    the answer's units first: full-batch Adam on -log of the softmax mass on them ("mass"), or on a margin that asks
    the best answer unit to beat the `top`-th best other unit, what retrieval of `top` units needs ("margin"; with
    hundreds of units the softmax mass is spent on the crowd, while a retrieval only needs the answer's unit above
    the few best others), or both."""
    layers = len(train[0])
    G, D = train[0][0][0].shape
    rank = []
    for li in range(layers):
        q, reps, valid, hit = _batch(train, li)
        eye = torch.eye(D).repeat(G, 1, 1)
        # raw scores run to hundreds: one scale for the layer keeps the first softmax soft
        with torch.no_grad():
            s0 = torch.einsum("nugd,ngd->nu", reps, q)
            scale = 1.0 / float(s0[valid].std().clamp_min(1e-6))
        if low_rank:
            a = (torch.randn(G, D, low_rank) * 1e-2).requires_grad_(True)
            b = torch.zeros(G, D, low_rank).requires_grad_(True)
            params = [a, b]
            make = lambda: eye + a @ b.transpose(1, 2)  # noqa: E731
        else:
            m = eye.clone().requires_grad_(True)
            params = [m]
            make = lambda: m  # noqa: E731
        opt = torch.optim.Adam(params, lr=lr)
        for ep in range(epochs):
            mm = make()
            s = torch.einsum("nugd,ngd->nu", reps, torch.einsum("gij,ngj->ngi", mm, q)) * scale
            loss = reg * ((mm - eye) ** 2).sum()
            if objective in ("mass", "both"):
                logp = s.masked_fill(~valid, float("-inf")).log_softmax(dim=1)
                loss = loss - torch.logsumexp(logp.masked_fill(~hit, float("-inf")), dim=1).mean()
            if objective in ("margin", "both"):
                best = s.masked_fill(~hit, float("-inf")).max(dim=1).values
                others = s.masked_fill(~valid | hit, float("-inf"))
                kth = others.topk(min(top, others.shape[1]), dim=1).values[:, -1]
                gap = torch.where(torch.isfinite(kth), kth - best + 1.0, torch.full_like(best, -30.0))
                loss = loss + torch.nn.functional.softplus(gap).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if ep % 100 == 0 or ep == epochs - 1:
                print(f"layer {li} epoch {ep} loss {float(loss):.3f}", flush=True)
        rank.append(make().detach().clone())
    print("train recall (every layer, per layer): identity", recall(train, None, top), "fitted", recall(train, rank, top))
    print("held-out recall: identity", recall(held, None, top), "fitted", recall(held, rank, top))
    print("held-out recall, every layer retrieving layer 0's units: identity", recall(held, None, top, True),
          "fitted", recall(held, rank, top, True))
    return rank


def save(rank, lay, out_dir):
    from safetensors.torch import save_file
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tensors = {f"layers.{i}.query": m.float().reshape(-1, m.shape[-1]).contiguous() for i, m in enumerate(rank)}
    save_file(tensors, str(Path(out_dir) / FILE), metadata={
        "format": "engram-ranking-1", "local_tokens": str(lay.local), "init_tokens": str(lay.init),
        "unit_tokens": str(lay.unit), "top_units": str(lay.top), "repr_tokens": str(lay.repr),
        "shared_selection_layer": "0" if lay.shared else "-1"})


def shared_selection(path):
    """Whether a ranking file asks every layer to retrieve layer 0's units (metadata shared_selection_layer 0)."""
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        layer = int((f.metadata() or {}).get("shared_selection_layer", "-1"))
    if layer not in (-1, 0):
        raise ValueError(f"{path}: shared_selection_layer {layer}: the layout shares layer 0's choice only")
    return layer == 0


def load(path):
    from safetensors.torch import load_file
    t = load_file(str(path))
    out = []
    for i in range(len(t)):
        m = t[f"layers.{i}.query"]
        out.append(m.view(m.shape[0] // m.shape[1], m.shape[1], m.shape[1]))
    return out


def evaluate_layout(model, tok, held, rank, lengths, kinds, per_cell, lay):
    from .layout_eval import seen
    for length in lengths:
        for kind in kinds:
            samples = memory_layout.LongSamples(tok, held, seed=4242 + length, split="heldout", refuse_share=0.0)
            ok = fact = 0
            for _ in range(per_cell):
                ex = samples.sample(target=length, kind=kind)
                trace = []
                ans = tok.decode(memory_layout.greedy(model, ex, lay, trace=trace, rank=rank))
                ok += evaluate.correct(ans, ex.value)
                fact += seen(trace, ex.own)
            print(f"{length:6d} {kind:10s} accuracy {ok / per_cell:.3f}  fact seen {fact / per_cell:.3f}  "
                  f"({per_cell} examples, top {lay.top}, {'projection' if rank else 'identity'})", flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("model"), c.add_argument("data"), c.add_argument("out")
    c.add_argument("--examples", type=int, default=400)
    c.add_argument("--split", default="train", choices=["train", "heldout"])
    c.add_argument("--seed", type=int, default=5151)
    c.add_argument("--lengths", type=int, nargs=2, default=[2000, 6000])
    c.add_argument("--distractors", type=int, default=0,
                   help="other examples' fact sentences set in each example's filler (keyed skills)")
    f = sub.add_parser("fit")
    f.add_argument("train"), f.add_argument("held"), f.add_argument("out")
    f.add_argument("--epochs", type=int, default=300)
    f.add_argument("--rank-reg", type=float, default=1e-3)
    f.add_argument("--lr", type=float, default=3e-3)
    f.add_argument("--low-rank", type=int, default=0, help="rank of the update to the identity (0: full matrices)")
    f.add_argument("--objective", default="mass", choices=["mass", "margin", "both"])
    f.add_argument("--shared", action="store_true", help="write the file for shared selection (layer 0's units)")
    f.add_argument("--extra-train", nargs="*", default=[], help="more probe files to fit on (e.g. short and long)")
    e = sub.add_parser("eval")
    e.add_argument("model"), e.add_argument("data")
    e.add_argument("--ranking")
    e.add_argument("--lengths", type=int, nargs="+", default=[4096])
    e.add_argument("--kinds", nargs="+", default=["passkey", "needle"])
    e.add_argument("--per-cell", type=int, default=12)
    e.add_argument("--top", type=int, default=memory_layout.Layout.top, help="units retrieved per layer and step")
    a = ap.parse_args()
    torch.manual_seed(0)
    lay = memory_layout.Layout(top=getattr(a, "top", memory_layout.Layout.top), shared=getattr(a, "shared", False))
    if a.cmd == "fit":
        train, held = torch.load(a.train), torch.load(a.held)
        for extra in a.extra_train:
            train = train + torch.load(extra)
        print(f"{len(train)} training and {len(held)} held-out examples")
        save(fit(train, held, lay.top, a.epochs, a.rank_reg, a.lr, a.low_rank, a.objective), lay, a.out)
        return
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM
    model = LlamaForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).eval()
    tok = Tokenizer.from_file(str(Path(a.model) / "tokenizer.json"))
    if a.cmd == "collect":
        paras = corpus.load_paragraphs(Path(a.data) / "corpus", held_out=a.split == "heldout")
        rows = collect(model, tok, paras, a.examples, a.seed, a.split, tuple(a.lengths), lay, out=a.out,
                       distractors=a.distractors)
        torch.save(rows, a.out)
        print(f"{len(rows)} examples written to {a.out}")
    else:
        held = corpus.load_paragraphs(Path(a.data) / "corpus", held_out=True)
        if a.ranking:
            from dataclasses import replace
            lay = replace(lay, shared=shared_selection(a.ranking))
        evaluate_layout(model, tok, held, load(a.ranking) if a.ranking else None, a.lengths, a.kinds, a.per_cell, lay)


if __name__ == "__main__":
    main()
