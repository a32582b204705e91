"""Trains engram-tiny: a Llama-architecture model (RMSNorm, RoPE, GQA, SwiGLU, tied embeddings) on Debian prose plus
generated QA tasks, then exports the Hugging Face layout, a GGUF copy, a loss plot and evaluation results.

    python -m engram_train.train --config gpu --data DATA_DIR --out OUT_DIR      # the real run (GPU machine)
    python -m engram_train.train --config cpu-smoke --data DATA_DIR --out OUT    # CI-sized smoke run on CPU

DATA_DIR holds corpus/*.txt (engram_train.corpus) and tokenizer/ (engram_train.tokenizer). Training is bounded by
wall-clock time (--minutes): the learning rate follows warmup then cosine decay over the time budget, so a run ends
on schedule whatever the machine's speed. Checkpoints are written every --checkpoint-minutes to OUT/ckpt.pt, and a
run restarted with the same OUT resumes from it.
"""
import argparse
import json
import math
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # each DataLoader worker builds its own tokenizer

from . import corpus, data, evaluate, memory_layout

# the CPU model's shape, shared by its training stages (cpu-induct -> cpu-dense -> cpu) and probes
CPU_SHAPE = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=704)

CONFIGS = {
    # ~9.4M parameters: 8 layers, width 288, 6 query heads / 2 KV heads of 48, SwiGLU 768, vocabulary 8192.
    "gpu": dict(hidden_size=288, num_hidden_layers=8, num_attention_heads=6, num_key_value_heads=2,
                intermediate_size=768, seq_len=2048, batch=64, lr=2.5e-3, warmup_s=25, minutes=13.0, workers=12,
                compile=True, eval_per_cell=100, eval_lengths=(512, 1024, 2048), ppl_window=1024),
    # ~4.0M parameters for a 2-core CPU (probes in training/PROBES.md): 4 layers, width 256, 4 query heads / 2 KV heads
    # of 64, SwiGLU 704, vocabulary 4096 (a larger vocabulary spends a tiny model's compute on the softmax). The third
    # stage of the CPU recipe (--init from cpu-dense): sequence curriculum 256 -> 512 -> 1024 with filler growing to the
    # window, while a fifth of the QA stays dense and 5% of sequences stay digit copy runs so the circuits are kept.
    "cpu": dict(CPU_SHAPE, seq_len=1024, batch=8, lr=1e-3, warmup_s=30, minutes=110.0, workers=0,
                compile=False, eval_per_cell=100, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.8,
                phases=((0.0, 256, 32), (0.3, 512, 16), (0.75, 1024, 8)), copy_until=1.0, copy_share=0.05,
                copy_repeats=4, copy_digits=True, dense_share=0.2, probe_minutes=10.0),
    # associative-recall stage from a checkpoint (--init): facts with little or no filler, several questions each
    "cpu-dense": dict(CPU_SHAPE, seq_len=1024, batch=32, lr=1e-3, warmup_s=20, minutes=20.0, workers=0,
                      compile=False, eval_per_cell=100, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                      phases=((0.0, 256, 32),), probe_minutes=4.0, max_words=40,
                      kinds=("passkey", "needle", "multikey", "reading", "dialogue")),
    # the same with small batches: circuits form by steps (the induction stage needed ~1,850 steps of 2K tokens), so
    # 2K-token steps reach them ~4x sooner per token than cpu-dense's 8K-token steps
    "cpu-dense2": dict(CPU_SHAPE, seq_len=1024, batch=8, lr=1e-3, warmup_s=20, minutes=40.0, workers=0,
                       compile=False, eval_per_cell=100, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                       phases=((0.0, 256, 8),), probe_minutes=5.0, max_words=40, copy_share=0.05, copy_until=1.0,
                       copy_repeats=4, kinds=("passkey", "needle", "multikey", "reading", "dialogue")),
    # digit copying with dense recall: numbers are single-digit tokens here, and copying a digit string needs matches
    # on more than one previous token; half the sequences are digit runs repeated four times, half dense QA
    "cpu-digits": dict(CPU_SHAPE, seq_len=1024, batch=8, lr=1e-3, warmup_s=20, minutes=20.0, workers=0,
                       compile=False, eval_per_cell=100, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                       phases=((0.0, 256, 8),), probe_minutes=5.0, max_words=40, copy_share=0.5, copy_until=1.0,
                       copy_repeats=4, copy_digits=True, kinds=("passkey", "needle", "multikey", "reading", "dialogue")),
    # dense recall once digit copying works (cpu-digits): a fifth of the sequences stay digit runs so it is kept
    "cpu-dense3": dict(CPU_SHAPE, seq_len=1024, batch=8, lr=6e-4, warmup_s=20, minutes=60.0, workers=0,
                       compile=False, eval_per_cell=100, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                       phases=((0.0, 256, 8),), probe_minutes=5.0, max_words=40, copy_share=0.2, copy_until=1.0,
                       copy_repeats=4, copy_digits=True, kinds=("passkey", "needle", "multikey", "reading", "dialogue")),
    # the recall stage of the CPU recipe (--init from cpu-induct): dense QA whose answers restate the question's key and
    # copy the fact onwards (tasks.echo), so looking a fact up is the copying the induction stage formed; a fifth of
    # the sequences stay digit copy runs. UUID tables need longer sequences and join in the curriculum stage.
    "cpu-echo": dict(CPU_SHAPE, seq_len=1024, batch=8, lr=1e-3, warmup_s=20, minutes=40.0, workers=0,
                     compile=False, eval_per_cell=100, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                     phases=((0.0, 256, 8),), probe_minutes=5.0, max_words=40, copy_share=0.2, copy_until=1.0,
                     copy_repeats=4, copy_digits=True,
                     kinds=("passkey", "needle", "multikey", "vars", "dialogue", "reading", "summary")),
    # copying prose: only natural-text passages repeated once (sequences of 256, batch 16, no weight decay). The
    # induction stage's random runs use ids 4-516, mostly single characters: the circuit does not reach the embeddings
    # of words, and a model fresh from it copies 0% of a repeated prose passage (PROBES.md, recipe 2)
    "cpu-induct-text": dict(CPU_SHAPE, seq_len=1024, batch=16, lr=1e-3, warmup_s=20, minutes=12.0, workers=0,
                            compile=False, eval_per_cell=10, eval_lengths=(256,), ppl_window=256,
                            phases=((0.0, 256, 16),), copy_share=1.0, copy_until=1.0, copy_text=1.0,
                            weight_decay=0.0, log_every=10),
    # the recall stage continued (--init from cpu-echo) once keys and values start to be copied but only their first
    # token comes out right: a third of the sequences copy, most of those natural-text passages repeated (copying prose
    # needs matches on several previous tokens), longer sequences so the demo's ~700 positions are trained
    "cpu-echo2": dict(CPU_SHAPE, seq_len=1024, batch=4, lr=6e-4, warmup_s=20, minutes=35.0, workers=0,
                      compile=False, eval_per_cell=100, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                      phases=((0.0, 512, 4), (0.5, 1024, 2)), probe_minutes=6.0, max_words=60, copy_share=0.35,
                      copy_until=1.0, copy_repeats=4, copy_digits=True, copy_text=0.6,
                      kinds=("passkey", "needle", "multikey", "vars", "dialogue", "reading", "summary")),
    # the recall stage at full distance (--init from cpu-echo2's last stage, or the shipped model folder): examples as
    # long as the window allows (a third kept dense), so a fact ~700 tokens back is looked up as often as one nearby;
    # a quarter of the questions have no answer in the text ("I don't know."), a quarter of the sequences stay copying
    "cpu-echo5": dict(CPU_SHAPE, seq_len=1024, batch=4, lr=4e-4, warmup_s=20, minutes=80.0, workers=0,
                      compile=False, eval_per_cell=100, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                      phases=((0.0, 512, 4), (0.3, 1024, 2)), probe_minutes=8.0, dense_share=0.35, copy_share=0.25,
                      copy_until=1.0, copy_repeats=4, copy_digits=True, copy_text=0.6, refuse_share=0.25),
    # echo5 continued at a lower learning rate: 40% of the questions unanswerable (refusals were 0.2-0.4 after echo5's
    # 25%), and 256-token sequences back for the first fifth (echo5 lost the short passkey cell), then 512 and 1,024
    "cpu-echo6": dict(CPU_SHAPE, seq_len=1024, batch=4, lr=2.5e-4, warmup_s=20, minutes=70.0, workers=0,
                      compile=False, eval_per_cell=100, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                      phases=((0.0, 256, 8), (0.2, 512, 4), (0.5, 1024, 2)), probe_minutes=10.0, dense_share=0.35,
                      copy_share=0.2, copy_until=1.0, copy_repeats=4, copy_digits=True, copy_text=0.6,
                      refuse_share=0.4),
    # echo5 continued with paired refusals: a quarter of the examples also ask a near-miss question over the same text
    # (echo6's separate unanswerable examples taught a refusal prior per question shape instead of a lookup)
    "cpu-pair": dict(CPU_SHAPE, seq_len=1024, batch=4, lr=2.5e-4, warmup_s=20, minutes=25.0, workers=0,
                     compile=False, eval_per_cell=100, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                     phases=((0.0, 512, 4), (0.4, 1024, 2)), probe_minutes=8.0, dense_share=0.35, copy_share=0.2,
                     copy_until=1.0, copy_repeats=4, copy_digits=True, copy_text=0.6, refuse_share=0.25,
                     pair_refusals=True),
    # cpu-pair continued from the shipped pair model (--init models/engram-tiny): the same mix with 40% of examples
    # carrying a paired near-miss refusal (cpu-pair's 25% kept the answers but did not raise refusals), an hour
    "cpu-pair2": dict(CPU_SHAPE, seq_len=1024, batch=4, lr=2e-4, warmup_s=20, minutes=60.0, workers=0,
                      compile=False, eval_per_cell=20, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                      phases=((0.0, 512, 4), (0.3, 1024, 2)), probe_minutes=15.0, dense_share=0.35, copy_share=0.2,
                      copy_until=1.0, copy_repeats=4, copy_digits=True, copy_text=0.6, refuse_share=0.4,
                      pair_refusals=True),
    # pair2 continued with refusals as the decision they are: half the examples carry a paired near-miss refusal, half
    # the sequences are dense (more questions per token), and each answer's first token (value or "I don't know")
    # weighs four times the tokens that finish it in the answer term (pair2 refused 17-33% of the unanswerable questions)
    "cpu-pair3": dict(CPU_SHAPE, seq_len=1024, batch=4, lr=2e-4, warmup_s=20, minutes=75.0, workers=0,
                      compile=False, eval_per_cell=20, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                      phases=((0.0, 512, 4), (0.3, 1024, 2)), probe_minutes=15.0, dense_share=0.5, copy_share=0.15,
                      copy_until=1.0, copy_repeats=4, copy_digits=True, copy_text=0.6, refuse_share=0.5,
                      pair_refusals=True, first_token_weight=4.0),
    # pair2 read through the retrieval memory: each step of native sequences (two of 1,024 tokens, the skills kept)
    # joined by two QA examples set at a random depth of 1.2-3.2K tokens of filler and read through the engine's
    # InfLLM layout (memory_layout): the model learns to answer from units retrieved to one fixed position
    "cpu-mem": dict(CPU_SHAPE, seq_len=1024, batch=2, lr=2e-4, warmup_s=20, minutes=80.0, workers=0,
                    compile=False, eval_per_cell=20, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                    probe_minutes=20.0, dense_share=0.35, copy_share=0.1, copy_until=1.0, copy_repeats=4,
                    copy_digits=True, copy_text=0.6, refuse_share=0.4, pair_refusals=True, layout_share=1.0,
                    layout_batch=2, layout_lengths=(1200, 3200)),
    # cpu-mem with a retrieval loss: per layer, the question's units ranked as the engine ranks them (mean query
    # against representative keys) with the unit holding the example's text as the target, so that queries and keys
    # learn to find the fact (no gradient reaches the engine's choice of units otherwise)
    "cpu-ret": dict(CPU_SHAPE, seq_len=1024, batch=2, lr=2e-4, warmup_s=20, minutes=20.0, workers=0,
                    compile=False, eval_per_cell=20, eval_lengths=(256, 512, 1024), ppl_window=512, task_share=0.9,
                    dense_share=0.35, copy_share=0.1, copy_until=1.0, copy_repeats=4, copy_digits=True, copy_text=0.6,
                    refuse_share=0.4, pair_refusals=True, layout_share=1.0, layout_batch=2,
                    layout_lengths=(1200, 3200), retrieval_weight=1.0),
    # cpu-ret kept the retrieval skill it learned but lost the native ones (needle, multikey, vars, dialogue fell by half
    # or more): pair2's native batch of four again, long examples through the layout on half the steps, the retrieval
    # term at half weight
    "cpu-ret-mix": dict(CPU_SHAPE, seq_len=1024, batch=4, lr=1.5e-4, warmup_s=20, minutes=90.0, workers=0,
                        compile=False, eval_per_cell=20, eval_lengths=(256, 512, 1024), ppl_window=512,
                        task_share=0.9, dense_share=0.35, copy_share=0.2, copy_until=1.0, copy_repeats=4,
                        copy_digits=True, copy_text=0.6, refuse_share=0.4, pair_refusals=True, layout_share=0.5,
                        layout_batch=2, layout_lengths=(1200, 3200), retrieval_weight=0.5),
    # the retrieval loss moving only the query and key projections (cpu-ret and cpu-ret-mix reshaped the value path
    # that copies answers, and the native needle/multikey/vars skills fell): which units a layer retrieves is decided
    # by queries against representative keys, so those are what it trains
    "cpu-ret-qk": dict(CPU_SHAPE, seq_len=1024, batch=2, lr=2e-4, warmup_s=20, minutes=20.0, workers=0,
                       compile=False, eval_per_cell=20, eval_lengths=(256, 512, 1024), ppl_window=512,
                       task_share=0.9, dense_share=0.35, copy_share=0.1, copy_until=1.0, copy_repeats=4,
                       copy_digits=True, copy_text=0.6, refuse_share=0.4, pair_refusals=True, layout_share=1.0,
                       layout_batch=2, layout_lengths=(1200, 3200), retrieval_weight=1.0,
                       trainable=("q_proj", "k_proj")),
    # induction probe: only random-token runs, each repeated once (the log's answer loss is the copied halves' loss)
    "cpu-copy": dict(CPU_SHAPE, seq_len=256, batch=32, lr=2e-3, warmup_s=20, minutes=12.0, workers=0,
                     compile=False, eval_per_cell=10, eval_lengths=(256,), ppl_window=256, copy_share=1.0,
                     copy_until=1.0, log_every=10),
    "cpu-copy512": dict(CPU_SHAPE, seq_len=256, batch=32, lr=2e-3, warmup_s=20, minutes=12.0, workers=0,
                        compile=False, eval_per_cell=10, eval_lengths=(256,), ppl_window=256, copy_share=1.0,
                        copy_until=1.0, log_every=10, copy_vocab=512),
    # the induction stage of the cpu recipe: only copy sequences, runs of 60-64 tokens from 512 ids repeated once,
    # sequences of 128, batch 32, no weight decay: copying forms in ~200 steps (PROBES.md, recipe 2; short runs repeated
    # four times plateaued on "some token of this run" for 2,000+ steps); continue with --init into cpu-echo
    "cpu-induct": dict(CPU_SHAPE, seq_len=1024, batch=32, lr=1e-3, warmup_s=20, minutes=15.0, workers=0,
                       compile=False, eval_per_cell=10, eval_lengths=(256,), ppl_window=256,
                       phases=((0.0, 128, 32),), copy_share=1.0, copy_until=1.0, copy_vocab=512, copy_repeats=2,
                       copy_run=(60, 64), weight_decay=0.0, log_every=10),
    "cpu-smoke": dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                      intermediate_size=128, seq_len=256, batch=8, lr=3e-3, warmup_s=2, minutes=0.5, workers=0,
                      compile=False, log_every=5, eval_per_cell=2, eval_lengths=(256,), ppl_window=128),
}


def model_config(c, vocab):
    from transformers import LlamaConfig
    return LlamaConfig(vocab_size=vocab, hidden_size=c["hidden_size"], intermediate_size=c["intermediate_size"],
                       num_hidden_layers=c["num_hidden_layers"], num_attention_heads=c["num_attention_heads"],
                       num_key_value_heads=c["num_key_value_heads"], max_position_embeddings=c["seq_len"],
                       rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=1,
                       eos_token_id=2, pad_token_id=3, hidden_act="silu", attention_bias=False, mlp_bias=False,
                       head_dim=c["hidden_size"] // c["num_attention_heads"], torch_dtype="bfloat16")


def compiled_or_eager(model, vocab, seq_len, dev):
    """torch.compile'd model if a forward and backward through it work here, else the eager model: a GPU run must not
    die minutes in because the compiler chokes on this transformers/torch pair."""
    try:
        fwd = torch.compile(model)
        x = torch.randint(0, vocab, (2, seq_len), device=dev)
        with torch.autocast(device_type=dev, dtype=torch.bfloat16):
            loss = fwd(input_ids=x).logits.float().mean()
        loss.backward()
        model.zero_grad(set_to_none=True)
        print("torch.compile: warm-up forward/backward ok", flush=True)
        return fwd
    except Exception as e:  # noqa: BLE001 - any compiler failure means: train eagerly
        model.zero_grad(set_to_none=True)
        print(f"torch.compile failed ({type(e).__name__}: {e}); training without it", flush=True)
        return model


def initial_weights(path, dev):
    """The state dict to start from: a training checkpoint (ckpt.pt) or an exported model folder (model.safetensors,
    e.g. models/engram-tiny), whose tied output matrix is the embedding's."""
    if path.is_dir():
        from safetensors.torch import load_file
        st = {k: v.float() for k, v in load_file(str(path / "model.safetensors"), device=dev).items()}
        st.setdefault("lm_head.weight", st["model.embed_tokens.weight"])
        return st
    return torch.load(path, map_location=dev)["model"]


def weighted_loss(ce, wt, first_token_weight):
    """Language modelling over every token, plus the answer tokens' mean as a second term of equal weight: answers are
    under 1% of the tokens, and copying them from the context is the skill the model exists for. Each answer's first
    token (the decision: a value, or a refusal) may count more."""
    ans_mask = wt > 1  # answers and the copied half of induction warm-up sequences
    if not ans_mask.any():
        return ce.mean()
    aw = torch.where(wt[ans_mask] == data.FIRST_ANSWER_WEIGHT, first_token_weight, 1.0)
    return ce.mean() + (ce[ans_mask] * aw).sum() / aw.sum()


def lr_at(elapsed, budget, warmup, peak):
    if elapsed < warmup:
        return peak * max(elapsed, 1e-3) / warmup
    frac = min(1.0, (elapsed - warmup) / max(1e-6, budget - warmup))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="gpu", choices=CONFIGS)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float)
    ap.add_argument("--lr", type=float, help="peak learning rate (default: the config's)")
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast even where the CPU has native BF16")
    ap.add_argument("--checkpoint-minutes", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--stop-loss", type=float,
                    help="end the stage early once the median of the last four logged answer losses is below this")
    ap.add_argument("--init", help="start from the weights of this checkpoint (ckpt.pt) or model folder, with a fresh "
                                           "optimizer")
    a = ap.parse_args()
    c = dict(CONFIGS[a.config])
    if a.minutes is not None:
        c["minutes"] = a.minutes
    if a.lr is not None:
        c["lr"] = a.lr
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    np.random.seed(a.seed)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(a.data)
    tok_path = str(data_dir / "tokenizer" / "tokenizer.json")
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    vocab = tok.get_vocab_size()
    train_paras = corpus.load_paragraphs(data_dir / "corpus", held_out=False)

    from transformers import LlamaForCausalLM
    cfg = model_config(c, vocab)
    model = LlamaForCausalLM(cfg).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters, device {dev}, config {a.config}", flush=True)
    if c.get("trainable"):
        # only parameters whose names hold one of these parts learn (e.g. the query and key projections the retrieval
        # loss needs to move); the rest stay as initialised
        for n, p in model.named_parameters():
            p.requires_grad = any(part in n for part in c["trainable"])
        print(f"trainable: {sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6:.2f}M parameters "
              f"({', '.join(c['trainable'])})", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and p.requires_grad]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 and p.requires_grad]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": c.get("weight_decay", 0.1)},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=c["lr"], betas=(0.9, 0.95), eps=1e-8, fused=(dev == "cuda"))
    step, tokens, elapsed0 = 0, 0, 0.0
    log_path = out / "train_log.jsonl"
    ckpt = out / "ckpt.pt"
    if a.init and not ckpt.exists():
        model.load_state_dict(initial_weights(Path(a.init), dev))
        print(f"initialised from {a.init}", flush=True)
    if ckpt.exists():
        st = torch.load(ckpt, map_location=dev)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, tokens, elapsed0 = st["step"], st["tokens"], st["elapsed"]
        print(f"resumed at step {step}, {tokens / 1e6:.1f}M tokens, {elapsed0:.0f}s", flush=True)
    fwd = model
    if c["compile"] and dev == "cuda":
        fwd = compiled_or_eager(model, vocab, c["seq_len"], dev)

    budget = c["minutes"] * 60
    phases = c.get("phases") or ((0.0, c["seq_len"], c["batch"]),)

    def phase_at(elapsed):
        return [p for p in phases if elapsed >= p[0] * budget][-1]

    def loader(seq_len, batch):
        ds = data.Mixture(tok_path, train_paras, seq_len, seed=a.seed + step, task_share=c.get("task_share", 0.6),
                          copy_share=c.get("copy_share", 0.0), max_words=c.get("max_words"), kinds=c.get("kinds"),
                          copy_vocab=c.get("copy_vocab"), copy_repeats=c.get("copy_repeats", 2),
                          dense_share=c.get("dense_share", 0.0), copy_digits=c.get("copy_digits", False),
                          copy_run=c.get("copy_run"), copy_text=c.get("copy_text", 0.0),
                          refuse_share=c.get("refuse_share", 0.12), pair_refusals=c.get("pair_refusals", False))
        dl = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=c["workers"], pin_memory=(dev == "cuda"),
                                         prefetch_factor=4 if c["workers"] else None,
                                         persistent_workers=bool(c["workers"]))
        return ds, iter(dl)

    phase = phase_at(elapsed0)
    ds, it = loader(phase[1], phase[2])
    probe = probe_set(tok_path, data_dir, min(p[1] for p in phases)) if c.get("probe_minutes") else None
    last_probe = time.time()
    # bf16 autocast pays on CPUs with native BF16 (AVX-512 BF16 / AMX: 1.3-2.2x); on AVX2-only CPUs it is ~20x slower
    amp = dev == "cuda" or (not a.fp32 and c.get("cpu_bf16", True)
                            and torch.backends.cpu.get_cpu_capability().startswith("AVX512"))
    print(f"bf16 autocast: {'on' if amp else 'off'} (CPU capability {torch.backends.cpu.get_cpu_capability()})",
          flush=True)
    # long examples read through the engine's retrieval layout (memory_layout): a step of native sequences is joined by
    # layout_batch of them with probability layout_share
    longs = (memory_layout.LongSamples(tok, train_paras, seed=a.seed + step, lengths=c.get("layout_lengths", (1200, 3200)))
             if c.get("layout_share") else None)
    rng = random.Random(a.seed + step)
    retrieval_losses = []  # since the last log line
    t_start = time.time() - elapsed0
    last_ckpt = time.time()
    logf = open(log_path, "a")
    recent = []  # the last logged answer losses, for --stop-loss
    model.train()
    while True:
        elapsed = time.time() - t_start
        if elapsed >= budget:
            break
        lr = lr_at(elapsed, budget, c["warmup_s"], c["lr"])
        for g in opt.param_groups:
            g["lr"] = lr
        if phase_at(elapsed) != phase:
            phase = phase_at(elapsed)
            ds, it = loader(phase[1], phase[2])
            print(f"phase: sequences of {phase[1]} tokens, batch {phase[2]}", flush=True)
        if c.get("copy_until") is not None and c["workers"] == 0:
            ds.copy_share = c["copy_share"] if elapsed < c["copy_until"] * budget else c.get("copy_after", 0.0)
        x, w = next(it)
        x, w = x.to(dev, non_blocking=True), w.to(dev, non_blocking=True)
        inp, tgt, wt = x[:, :-1], x[:, 1:], w[:, 1:]
        with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=amp):
            logits = fwd(input_ids=inp).logits
        ce = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), tgt.reshape(-1), reduction="none")
        wt = wt.reshape(-1)
        loss = weighted_loss(ce, wt, c.get("first_token_weight", 1.0))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if longs is not None and rng.random() < c["layout_share"]:
            # and as many examples read through the retrieval memory's layout, one forward each (their own steps)
            for _ in range(c.get("layout_batch", 2)):
                ex = longs.sample()
                ids = torch.tensor(ex.ids, device=dev)
                aux = []
                with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=amp):
                    lg = memory_layout.forward(model, ids, ex.steps, aux=aux, target=ex.own)
                lce = F.cross_entropy(lg[:-1].float(), ids[1:], reduction="none")
                lw = torch.tensor(ex.weights[1:], device=dev)
                lloss = weighted_loss(lce, lw, c.get("first_token_weight", 1.0))
                if aux and c.get("retrieval_weight"):
                    # and the retrieval loss: each layer's units ranked for the question, the fact's unit the target
                    lloss = lloss + c["retrieval_weight"] * torch.stack(aux).mean()
                    retrieval_losses.append(torch.stack(aux).mean().item())
                (lloss / c.get("layout_batch", 2)).backward()
                tokens += len(ex.ids)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += inp.numel()
        if step % c.get("log_every", 25) == 0 or step == 1:
            ans = wt >= data.ANSWER_WEIGHT
            ans_loss = (round(ce[ans].mean().item(), 4) if ans.any() else None)  # null: no answer in this batch
            rec = dict(step=step, tokens=tokens, elapsed=round(time.time() - t_start, 1), lr=lr,
                       loss=round(ce.mean().item(), 4), answer_loss=ans_loss)
            if retrieval_losses:
                rec["retrieval_loss"] = round(sum(retrieval_losses) / len(retrieval_losses), 4)
                retrieval_losses.clear()
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            rate = tokens / max(1e-6, time.time() - t_start)
            print(f"step {step:6d} | {tokens / 1e6:8.1f}M tok | loss {rec['loss']:.3f} | answer {ans_loss if ans_loss is not None else float('nan'):.3f}"
                  f"{' | retrieval %.3f' % rec['retrieval_loss'] if 'retrieval_loss' in rec else ''}"
                  f" | lr {lr:.2e} | {rate / 1e3:.0f}K tok/s | {rec['elapsed']:.0f}/{budget:.0f}s", flush=True)
            if ans_loss is not None:
                recent = (recent + [ans_loss])[-4:]
            if a.stop_loss is not None and len(recent) == 4 and sum(sorted(recent)[1:3]) / 2 < a.stop_loss:
                print(f"answer loss below {a.stop_loss}: stage done", flush=True)
                break
        if probe is not None and time.time() - last_probe > c["probe_minutes"] * 60:
            model.eval()
            acc = run_probe(model, probe, dev)
            model.train()
            logf.write(json.dumps(dict(step=step, tokens=tokens, probe=acc)) + "\n")
            print(f"probe at step {step}: " + ", ".join(f"{k} {v:.2f}" for k, v in acc.items()), flush=True)
            last_probe = time.time()
        if time.time() - last_ckpt > a.checkpoint_minutes * 60:
            torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), step=step, tokens=tokens,
                            elapsed=time.time() - t_start), ckpt)
            last_ckpt = time.time()
    logf.close()
    print(f"done: {step} steps, {tokens / 1e6:.1f}M tokens in {time.time() - t_start:.0f}s", flush=True)
    torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), step=step, tokens=tokens,
                    elapsed=time.time() - t_start), ckpt)
    export_dir = out / "engram-tiny"
    export(model, cfg, data_dir, export_dir, dict(steps=step, tokens=tokens, seconds=round(time.time() - t_start),
                                                  config=a.config, params=n_params, seed=a.seed))
    if not a.skip_eval:
        evaluate.run(export_dir, data_dir, out, per_cell=c["eval_per_cell"], device=dev, lengths=c["eval_lengths"],
                     ppl_window=c["ppl_window"])


def probe_set(tok_path, data_dir: Path, length, per_kind=12):
    """A few held-out examples per skill at a short length, asked during training to see whether retrieval forms."""
    from tokenizers import Tokenizer
    from . import tasks
    enc = data.PieceEncoder(Tokenizer.from_file(tok_path))
    held = corpus.load_paragraphs(data_dir / "corpus", held_out=True) or corpus.load_paragraphs(data_dir / "corpus",
                                                                                                  held_out=False)
    gen = tasks.TaskGenerator(held, "heldout", seed=777)
    out = {}
    for kind in ("passkey", "needle", "multikey", "vars", "dialogue", "reading"):
        exs = evaluate.build_examples(enc, gen, kind, length, per_kind, False, random.Random(1))
        out[kind] = [(ids, ex.values[0]) for ex, ids in exs]
    out["_tokenizer"] = enc.tok
    return out


@torch.no_grad()
def run_probe(model, probe, dev):
    acc = {}
    tok = probe["_tokenizer"]
    for kind, exs in probe.items():
        if kind == "_tokenizer":
            continue
        answers = evaluate.greedy(model, [ids for ids, _ in exs], dev, max_new=40)
        acc[kind] = sum(evaluate.correct(tok.decode(ans), want) for ans, (_, want) in zip(answers, exs)) / max(1, len(exs))
    return acc


def export(model, cfg, data_dir: Path, export_dir: Path, meta: dict):
    from transformers import GenerationConfig
    from . import gguf
    export_dir.mkdir(parents=True, exist_ok=True)
    model = model.to(torch.bfloat16)
    model.config.dtype = "bfloat16"
    # shards under 16 MB: the size limit of files fetched back from the GPU machine, and friendly to any mirror
    model.save_pretrained(export_dir, safe_serialization=True, max_shard_size="15MB")
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=3, do_sample=False,
                     max_new_tokens=64).save_pretrained(export_dir)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(data_dir / "tokenizer" / f, export_dir / f)
    (export_dir / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    gguf.export(export_dir, export_dir / "engram-tiny.bf16.gguf")
    model.float()
    print(f"exported {export_dir}", flush=True)


if __name__ == "__main__":
    main()
