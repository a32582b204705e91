#!/usr/bin/env python3
"""The peer of Engram's GPU bench (io.engram.engine.bench.GpuBench): Hugging Face transformers on the same weights and
the same GPU, full attention (transformers has no InfLLM/StreamingLLM), SDPA attention, a DynamicCache.

  python3 hf_peer.py stories DIR [--contexts 4096,32768,131072]     # time a model folder
  python3 hf_peer.py make-llama DIR                                  # write a random Llama (1.1B, BF16) for the bench

Rows: prefill tok/s of one forward over the context; decode tok/s of 32 greedy steps after it (batch 1), and of 8
sequences decoded together at min(ctx, 4096). Timed with torch.cuda.synchronize around each phase, median of 3 after a
warm-up. Prints a table to stdout; nothing is cached between rows.
"""
import json
import os
import statistics
import sys
import time

import torch


def make_llama(out_dir):
    """A Llama-3-shaped 1.1B model with random weights (std 0.02), saved as BF16 safetensors in HF names, with a
    config.json in the classic keys (rope_theta) that Engram's loader reads."""
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=2048, intermediate_size=8192,
               num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=32000,
               max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False,
               hidden_act="silu", bos_token_id=1, eos_token_id=2, torch_dtype="bfloat16", attention_bias=False,
               mlp_bias=False)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(LlamaConfig(**cfg)).to(torch.bfloat16)
    os.makedirs(out_dir, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    n = sum(v.numel() for v in state.values())
    print(f"wrote {out_dir}: {n / 1e9:.2f}B parameters, {n * 2 / 2**30:.2f} GiB BF16", flush=True)


def timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    r = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0, r


def bench(model_dir, contexts, dtype, batch=8, steps=32, runs=3):
    from transformers import AutoModelForCausalLM, DynamicCache

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").cuda().eval()
    vocab = model.config.vocab_size
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    name = os.path.basename(os.path.normpath(model_dir))
    print(f"machine: {torch.cuda.get_device_name()}, torch {torch.__version__}, transformers "
          f"{__import__('transformers').__version__}, {name} in {dtype}, weights {weight_bytes / 2**20:.1f} MiB", flush=True)
    print(f"{'model':14s} {'policy':9s} {'ctx':>7s} {'prefill tok/s':>13s} {'decode tok/s':>12s} {'batch':>5s} "
          f"{'batch tok/s':>12s} {'decode GB/s':>11s} {'peak MiB':>9s}", flush=True)
    g = torch.Generator(device="cuda").manual_seed(1)
    with torch.inference_mode():
        warm = torch.randint(0, vocab, (1, 600), device="cuda", generator=g)
        model(warm, use_cache=True, logits_to_keep=1)
        for ctx in contexts:
            torch.cuda.reset_peak_memory_stats()
            ids = torch.randint(0, vocab, (1, ctx), device="cuda", generator=g)
            pre, dec = [], []
            for _ in range(runs):
                cache = DynamicCache()
                dt, out = timed(lambda: model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1))
                pre.append(ctx / dt)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)

                def decode():
                    n = nxt
                    for _ in range(steps):
                        o = model(n, past_key_values=cache, use_cache=True)
                        n = o.logits[:, -1].argmax(-1, keepdim=True)
                    return n

                dt, _ = timed(decode)
                dec.append(steps / dt)
                del cache, out
            bctx = min(ctx, 4096)
            bids = torch.randint(0, vocab, (batch, bctx), device="cuda", generator=g)
            cache = DynamicCache()
            out = model(bids, past_key_values=cache, use_cache=True, logits_to_keep=1)
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)

            def bdecode():
                n = nxt
                for _ in range(steps):
                    o = model(n, past_key_values=cache, use_cache=True)
                    n = o.logits[:, -1].argmax(-1, keepdim=True)
                return n

            bdt, _ = timed(bdecode)
            del cache, out
            kv_bytes = (2 * model.config.num_hidden_layers * model.config.num_key_value_heads
                        * (model.config.hidden_size // model.config.num_attention_heads) * ctx * torch.tensor([], dtype=dtype).element_size())
            d = statistics.median(dec)
            print(f"{name:14s} {'FULL':9s} {ctx:7d} {statistics.median(pre):13.0f} {d:12.1f} {batch:5d} "
                  f"{steps * batch / bdt:12.1f} {(weight_bytes + kv_bytes) * d / 1e9:11.1f} "
                  f"{torch.cuda.max_memory_allocated() / 2**20:9.0f}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "make-llama":
        make_llama(sys.argv[2])
    else:
        contexts = [4096, 32768, 131072]
        dtype = torch.bfloat16
        a = sys.argv[3:]
        for i in range(0, len(a), 2):
            if a[i] == "--contexts":
                contexts = [int(x) for x in a[i + 1].split(",")]
            elif a[i] == "--dtype":
                dtype = getattr(torch, a[i + 1])
        bench(sys.argv[2], contexts, dtype)
