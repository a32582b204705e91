"""Training through the attention layout the engine's retrieval memory hands the model (InfLLM, RetrievalMemory.java).

Beyond its trained window the engine never shows the model a contiguous context. Per step (one content event, at most
a prefill chunk; the question; each generated token) every query of layer l attends, in one softmax, to:
  - the first `init` tokens of the stream, the tokens that left the window but are not packed into a unit yet, and the
    `top` units of layer l whose representative keys best match the step's mean query, all at one fixed position 0;
  - the local window: the last `local` tokens before the step and the step itself, at positions relative to the
    window start (so no query position exceeds local + step).
Units are the storage blocks of `unit` tokens past the init tokens ([init, unit), then [unit, 2*unit), ...), packed
once they left the window; a unit's representative keys are, per KV head, the mean raw (unrotated) key of the `repr`
tokens that received the most attention while in the window. The unit ranking is the inner product of the step's mean
raw query, rotated to distance `local` and summed over each KV head's query heads, with the representatives (summed
over KV heads). Questions and answers are transient: they neither pack units nor add attention mass. While the stream
fits the window (window start 0) the layout is exact causal attention.

`forward` runs a Hugging Face Llama through this layout (gradients flow through the attention; unit choice and
representatives are made without them, as the engine makes them), so that a model learns to use what the memory
retrieves. A model trained to 1,024 positions answered passkeys at 4K tokens a quarter of the time through the engine's
InfLLM and EM-LLM against every time at native context (docs/bench/memory.md).
"""
import math
import random
from dataclasses import dataclass

import torch

from . import data, tasks


@dataclass(frozen=True)
class Layout:
    """engram-tiny's sizes in the engine (MemorySettings.sizedFor: 64 init + 704 local + 256 memory = 2 units of 128)."""
    init: int = 64
    local: int = 704
    unit: int = 128
    top: int = 2
    repr: int = 4
    # InfLLM's code: representatives per query head (top tokens by that head's mass, GQA keys expanded) and the score
    # summed over query heads; False: per KV head over its group's summed mass and queries, as the engine does
    per_query_head: bool = False
    # every layer retrieves the units layer 0 ranked best for the step (the engine's shared selection), instead of
    # ranking per layer
    shared: bool = False


def rope(x, pos, inv_freq):
    """x rotated at positions pos: Llama's rotate-half RoPE. x [..., n, D], pos [n]."""
    ang = pos.to(inv_freq.dtype)[:, None] * inv_freq[None, :]
    emb = torch.cat([ang, ang], dim=-1)
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * emb.cos().to(x.dtype) + rot * emb.sin().to(x.dtype)


def _sum_sorted(keys):
    """The sum of keys [r, D] taken in lexicographic order of their values (an order that depends on the set alone)."""
    order = sorted(range(keys.shape[0]), key=lambda i: keys[i].tolist())
    r = keys[order[0]]
    for i in order[1:]:
        r = r + keys[i]
    return r


class _LayerMemory:
    """What one layer's retrieval memory holds while a sequence is read: attention mass per token and the units."""

    def __init__(self, lay: Layout, heads, length, device):
        self.lay = lay
        self.mass = torch.zeros(heads, length, device=device)  # per KV head, or per query head (per_query_head)
        self.units = []  # (start, end)
        self.reprs = []  # [G or H, D] each
        self.tops = []  # the representative tokens of each unit, [G or H, r]
        self.packed_end = lay.init

    def pack(self, k_raw, limit):
        """Units of the blocks that left the window (ending at or before `limit`)."""
        lay = self.lay
        while True:
            end = (self.packed_end // lay.unit + 1) * lay.unit
            if end > limit:
                return
            a = self.packed_end
            m = self.mass[:, a:end]  # [G or H, n]
            # the tokens with the most mass, the earlier first on ties (as the engine)
            top = m.sort(dim=1, descending=True, stable=True).indices[:, :lay.repr] + a  # [G or H, r]
            g = torch.arange(k_raw.shape[0], device=k_raw.device)[:, None]
            keys = k_raw[g, top]  # [G or H, r, D]
            # summed in the keys' own (lexicographic) order, then divided, as the engine does: units whose
            # representatives are the same keys in another mass order (frequent in layer 0, where a key depends on its
            # token alone) then tie exactly, and the earlier unit wins on both sides instead of rounding noise
            r = torch.stack([_sum_sorted(kg) for kg in keys])
            self.reprs.append(r / keys.shape[1])  # [G or H, D]
            self.tops.append(top)
            self.units.append((a, end))
            self.packed_end = end

    def select(self, q_mean_rot_grouped):
        """The top units for a step's query [G or H, D] (grouped per KV head, or per query head), in stream order."""
        if len(self.units) <= self.lay.top:
            return list(self.units)
        reprs = torch.stack(self.reprs)  # [U, G, D]
        score = (reprs.double() * q_mean_rot_grouped[None].double()).sum(dim=(1, 2))  # in double, as the engine
        # the engine's order: score descending, the earlier unit first on ties (units of one token's keys tie exactly
        # in layer 0, where a key depends on its token alone)
        picked = sorted(score.sort(descending=True, stable=True).indices[:self.lay.top].tolist())
        return [self.units[i] for i in picked]


def _retrieval_loss(mem, q, k, s, e, lay, inv_freq, target):
    """-log of the softmax mass of the units overlapping `target` among all units, scored as the engine ranks them
    (the step's mean query rotated to distance `local`, against the representative keys), with gradients to the
    queries and the representatives' keys; None when no unit holds the target."""
    hit = [i for i, (a, z) in enumerate(mem.units) if a < target[1] and z > target[0]]
    if not hit or len(mem.units) <= lay.top:
        return None
    H, _, D = q.shape
    G = k.shape[0]
    qm = rope(q[:, s:e].mean(dim=1)[:, None, :], torch.tensor([lay.local], device=q.device), inv_freq)[:, 0]
    qg = qm if lay.per_query_head else qm.view(G, H // G, D).sum(dim=1)
    kk = k.repeat_interleave(H // G, dim=0) if lay.per_query_head else k
    g = torch.arange(kk.shape[0], device=k.device)[:, None]
    reprs = torch.stack([kk[g, top].mean(dim=1) for top in mem.tops])  # [U, G or H, D]
    logp = (reprs * qg[None]).sum(dim=(1, 2)).float().log_softmax(dim=0)
    return -torch.logsumexp(logp[hit], dim=0)


def _attend(q, k, v, steps, lay: Layout, inv_freq, trace=None, aux=None, target=None, rank=None, probe=None,
            chosen=None):
    """One layer's attention through the layout. q [H, T, D], k/v [G, T, D] (raw, unrotated); steps: (start, end,
    transient) covering [0, T) in order. Returns [H, T, D]. With a trace list, appends the memory ranges each transient
    step of more than one token (a question) attended to. rank [G, D, D]: the ranking projection (rank_adapter), applied
    to the grouped query of every ranking; with a probe list, appends (grouped query before the projection, unit
    representatives [U, G, D], unit ranges) for each question step that ranks units."""
    H, T, D = q.shape
    G = k.shape[0]
    group = H // G
    mem = _LayerMemory(lay, H if lay.per_query_head else G, T, q.device)
    k_raw = k.detach().repeat_interleave(group, dim=0) if lay.per_query_head else k.detach()
    outs = []
    scale = 1.0 / math.sqrt(D)
    dev = q.device
    for s, e, transient in steps:
        w = max(0, s - lay.local)
        if w == 0:
            idx = torch.arange(0, e, device=dev)
            fixed = torch.zeros(e, dtype=torch.bool, device=dev)
        else:
            init_end = min(lay.init, w)
            rem_start = max(init_end, mem.packed_end)
            qm = q[:, s:e].detach().mean(dim=1)  # [H, D] raw
            qm = rope(qm[:, None, :], torch.tensor([lay.local], device=dev), inv_freq)[:, 0]
            grouped = qm if lay.per_query_head else qm.view(G, group, D).sum(dim=1)
            if probe is not None and transient and e - s > 1 and len(mem.units) > lay.top:
                probe.append((grouped.clone(), torch.stack(mem.reprs).clone(), list(mem.units)))
            if rank is not None:
                grouped = torch.einsum("gij,gj->gi", rank.to(grouped.dtype), grouped)
            if chosen is not None and s in chosen:  # shared selection: the units layer 0 chose for this step
                picked = chosen[s]
            else:
                picked = mem.select(grouped)
                if chosen is not None:
                    chosen[s] = picked
            ranges = [(0, init_end)] + [u for u in picked if u[0] < rem_start] + [(rem_start, w)]
            if trace is not None and transient and e - s > 1:
                trace.append(ranges + [(w, s)])
            if aux is not None and target is not None and transient and e - s > 1:
                loss = _retrieval_loss(mem, q, k, s, e, lay, inv_freq, target)
                if loss is not None:
                    aux.append(loss)
            mem_idx = torch.cat([torch.arange(a, z, device=dev) for a, z in ranges if z > a])
            idx = torch.cat([mem_idx, torch.arange(w, e, device=dev)])
            fixed = torch.cat([torch.ones(len(mem_idx), dtype=torch.bool, device=dev),
                               torch.zeros(e - w, dtype=torch.bool, device=dev)])
        pq = torch.arange(s, e, device=dev) - w
        pk = torch.where(fixed, torch.zeros_like(idx), idx - w)
        qr = rope(q[:, s:e], pq, inv_freq)  # [H, n, D]
        kr = rope(k[:, idx], pk, inv_freq).repeat_interleave(group, dim=0)  # [H, K, D]
        vv = v[:, idx].repeat_interleave(group, dim=0)
        sc = (qr @ kr.transpose(-1, -2)) * scale  # [H, n, K]
        future = idx[None, :] > torch.arange(s, e, device=dev)[:, None]  # [n, K]
        sc = sc.masked_fill(future[None], float("-inf"))
        p = torch.softmax(sc.float(), dim=-1).to(vv.dtype)
        outs.append(p @ vv)
        if not transient:
            window = ~fixed
            received = (p.detach().float().sum(dim=1) if lay.per_query_head  # [H, K]
                        else p.detach().float().view(G, group, e - s, -1).sum(dim=(1, 2)))  # [G, K]
            mem.mass[:, idx[window]] += received[:, window]
            mem.pack(k_raw, e - lay.local)
    return torch.cat(outs, dim=1)


def forward(model, ids, steps, lay: Layout = Layout(), trace=None, aux=None, target=None, rank=None, probe=None):
    """Logits [T, V] of a Hugging Face Llama over ids [T] read step by step through the layout (trace: see _attend,
    one entry per layer). With an aux list and a target token span, appends each layer's retrieval loss for the
    question step (_retrieval_loss). rank: per layer the ranking projection [G, D, D] (rank_adapter) or None; probe: a
    list that gets one list per layer of _attend's probes."""
    m = model.model
    cfg = model.config
    H, G = cfg.num_attention_heads, cfg.num_key_value_heads
    D = cfg.hidden_size // H
    T = ids.shape[0]
    inv_freq = m.rotary_emb.inv_freq.float()
    x = m.embed_tokens(ids)[None]  # [1, T, hidden]
    chosen = {} if lay.shared else None  # step start -> the units layer 0 retrieved
    for li, layer in enumerate(m.layers):
        a = layer.self_attn
        h = layer.input_layernorm(x)
        q = a.q_proj(h).view(T, H, D).transpose(0, 1)  # [H, T, D]
        k = a.k_proj(h).view(T, G, D).transpose(0, 1)  # [G, T, D]
        v = a.v_proj(h).view(T, G, D).transpose(0, 1)
        layer_probe = [] if probe is not None else None
        o = _attend(q, k, v, steps, lay, inv_freq, trace, aux, target, None if rank is None else rank[li],
                    layer_probe, chosen)  # [H, T, D]
        if probe is not None:
            probe.append(layer_probe)
        x = x + a.o_proj(o.transpose(0, 1).reshape(1, T, H * D))
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return model.lm_head(m.norm(x))[0]


def steps_of(piece_ends, chunk=512):
    """The engine's steps over a stream's content: each piece (event) in prefill chunks. Returns them and their end."""
    out, s = [], 0
    for e in piece_ends:
        while s < e:
            z = min(e, s + chunk)
            out.append((s, z, False))
            s = z
    return out, s


@dataclass
class LongExample:
    ids: list
    weights: list
    steps: list
    answer_start: int
    value: str
    own: tuple = (0, 0)  # tokens of the example's own text (the rest is filler)


class LongSamples:
    """One QA example set at a random depth in 1-3K+ tokens of filler (training prose and pieces of other examples
    that hold none of their values), its question and answer read the way the engine reads them."""

    def __init__(self, tokenizer, paragraphs, seed, lengths=(1200, 3200), kinds=("passkey", "needle", "multikey",
                                                                                   "dialogue", "vars", "reading"),
                 refuse_share=0.15, split="train", distractors=0):
        self.distractors = distractors
        self.enc = data.PieceEncoder(tokenizer)
        self.gen = tasks.TaskGenerator(paragraphs, split, seed=seed, refuse_share=refuse_share)
        self.r = random.Random(seed + 17)
        self.paragraphs = paragraphs
        self.lengths = lengths
        self.kinds = kinds

    def _filler_pieces(self, tokens):
        out, n = [], 0
        while n < tokens:
            if self.r.random() < 0.5:
                p = self.r.choice(self.paragraphs)
            else:
                ex = self.gen.example(target_words=self.r.randint(20, 120))
                values = [v for x in ex.values for v in (x if isinstance(x, list) else [x]) if v != tasks.REFUSAL]
                cand = [p for p in ex.pieces if not any(v in p for v in values)]
                if not cand:
                    continue
                p = self.r.choice(cand)
            out.append(p)
            n += int(len(p.split()) * 1.6) + 2
        return out

    DISTRACTOR_KINDS = ("needle", "multikey", "vars", "reading")

    def _distractor_pieces(self, ex):
        """The fact sentences of `self.distractors` other examples (keyed skills: each names its own entity, so it does
        not answer `ex`'s question), so that a question must find its own fact among others of the same shape."""
        out = []
        own = [v for x in ex.values for v in (x if isinstance(x, list) else [x]) if v != tasks.REFUSAL]
        while len(out) < self.distractors:
            d = self.gen.example(target_words=self.r.randint(20, 60), kind=self.r.choice(self.DISTRACTOR_KINDS))
            values = [v for x in d.values for v in (x if isinstance(x, list) else [x]) if v != tasks.REFUSAL]
            facts = [p for p in d.pieces if any(v in p for v in values)]
            if not facts or any(v in p for p in facts for v in own) or d.qa[0][0] == ex.qa[0][0]:
                continue
            out.append(self.r.choice(facts))
        return out

    def sample(self, target=None, kind=None):
        target = target or self.r.randint(*self.lengths)
        ex = self.gen.example(target_words=self.r.randint(40, 200), kind=kind or self.r.choice(self.kinds))
        q, a = ex.qa[0]
        own = len(self.enc.context(ex.pieces))
        pad = self._filler_pieces(max(0, target - own))
        for d in self._distractor_pieces(ex):
            pad.insert(self.r.randint(0, len(pad)), d)
        depth = self.r.randint(0, len(pad))
        pieces = pad[:depth] + list(ex.pieces) + pad[depth:]
        ids, ends = [], []
        own = [0, 0]
        for i, p in enumerate(pieces):
            if i == depth:
                own[0] = len(ids)
            ids += self.enc.context([p]) if i == 0 else self.enc.ids("\n\n" + p)
            ends.append(len(ids))
            if i == depth + len(ex.pieces) - 1:
                own[1] = len(ids)
        steps, qs = steps_of(ends)
        qi, ai = self.enc.question(q), self.enc.answer(a)
        weights = [1.0] * (len(ids) + len(qi)) + [data.FIRST_ANSWER_WEIGHT] + [data.ANSWER_WEIGHT] * (len(ai) - 1)
        answer_start = len(ids) + len(qi)
        steps.append((qs, answer_start, True))
        ids = ids + qi + ai
        steps += [(t, t + 1, True) for t in range(answer_start, len(ids))]
        return LongExample(ids, weights, steps, answer_start, ex.values[0], tuple(own))


@torch.no_grad()
def greedy(model, ex: LongExample, lay: Layout = Layout(), max_new=24, trace=None, rank=None):
    """The model's answer to a LongExample's question through the layout (its gold answer is ignored); trace gets the
    question step's attended memory ranges per layer."""
    prompt = ex.ids[:ex.answer_start]
    steps = [s for s in ex.steps if s[1] <= ex.answer_start]
    out = []
    for i in range(max_new):
        ids = torch.tensor(prompt + out)
        logits = forward(model, ids, steps, lay, trace if i == 0 else None, rank=rank)
        nxt = int(logits[-1].argmax())
        if nxt == data.EOS_ID:
            break
        steps = steps + [(len(prompt) + len(out), len(prompt) + len(out) + 1, True)]
        out.append(nxt)
    return out


def main():
    """python -m engram_train.memory_layout MODEL_DIR IN.json OUT.json: the logits of the last token of IN's last step
    ({"ids": [...], "steps": [[start, end, transient], ...]}, optionally "ranking": a ranking projection file,
    rank_adapter) through the layout, as {"logits": [...]} (the engine's parity test, RetrievalLayoutParityTest,
    compares them with its own InfLLM's)."""
    import json
    import sys
    from transformers import LlamaForCausalLM
    model_dir, inp, out = sys.argv[1:4]
    spec = json.loads(open(inp).read())
    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    lay = Layout(**spec.get("layout", {}))
    steps = [(s, e, bool(t)) for s, e, t in spec["steps"]]
    with torch.no_grad():
        rank = None
        if spec.get("ranking"):
            from dataclasses import replace
            from . import rank_adapter
            rank = rank_adapter.load(spec["ranking"])
            lay = replace(lay, shared=rank_adapter.shared_selection(spec["ranking"]))
        logits = forward(model, torch.tensor(spec["ids"]), steps, lay, rank=rank)
    with open(out, "w") as f:
        json.dump({"logits": logits[steps[-1][1] - 1].tolist()}, f)


if __name__ == "__main__":
    main()
