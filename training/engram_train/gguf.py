"""Writes a Hugging Face Llama checkpoint as a GGUF file (llama architecture, BF16/F32 tensors, GPT-2 style BPE
vocabulary), so llama.cpp and Engram's GGUF loader can serve the same weights.

Follows the GGUF v3 layout: header, metadata key/values, tensor infos (dimensions innermost first), aligned data.
Q and K projections are permuted from the Hugging Face rotate-half layout to GGUF's interleaved RoPE layout.
"""
import json
import struct
from pathlib import Path

import numpy as np
import torch

ALIGN = 32
T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY = 4, 5, 6, 7, 8, 9
GGML_F32, GGML_BF16 = 0, 30


def _s(b: bytearray, text: str):
    raw = text.encode("utf-8")
    b += struct.pack("<Q", len(raw)) + raw


def _kv(b: bytearray, key: str, vtype: int, value):
    _s(b, key)
    b += struct.pack("<I", vtype)
    if vtype == T_STRING:
        _s(b, value)
    elif vtype == T_UINT32:
        b += struct.pack("<I", value)
    elif vtype == T_INT32:
        b += struct.pack("<i", value)
    elif vtype == T_FLOAT32:
        b += struct.pack("<f", value)
    elif vtype == T_BOOL:
        b += struct.pack("<?", value)
    elif vtype == T_ARRAY:
        etype, items = value
        b += struct.pack("<IQ", etype, len(items))
        for it in items:
            if etype == T_STRING:
                _s(b, it)
            elif etype == T_INT32:
                b += struct.pack("<i", it)
            elif etype == T_FLOAT32:
                b += struct.pack("<f", it)
    else:
        raise ValueError(vtype)


def _permute(w: torch.Tensor, heads: int) -> torch.Tensor:
    out_dim = w.shape[0]
    return w.reshape(heads, 2, out_dim // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def export(model_dir: Path, out: Path, name="engram-tiny"):
    from safetensors.torch import load_file
    cfg = json.loads((model_dir / "config.json").read_text())
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    tcfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        sd = {}
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            sd.update(load_file(str(model_dir / shard)))
    else:
        sd = load_file(str(model_dir / "model.safetensors"))
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]

    tensors = [("token_embd.weight", sd["model.embed_tokens.weight"], GGML_BF16),
               ("output_norm.weight", sd["model.norm.weight"], GGML_F32)]
    if not cfg.get("tie_word_embeddings", False):
        tensors.append(("output.weight", sd["lm_head.weight"], GGML_BF16))
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        tensors += [
            (f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"], GGML_F32),
            (f"blk.{i}.attn_q.weight", _permute(sd[p + "self_attn.q_proj.weight"], heads), GGML_BF16),
            (f"blk.{i}.attn_k.weight", _permute(sd[p + "self_attn.k_proj.weight"], kv_heads), GGML_BF16),
            (f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"], GGML_BF16),
            (f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"], GGML_BF16),
            (f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"], GGML_F32),
            (f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"], GGML_BF16),
            (f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"], GGML_BF16),
            (f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"], GGML_BF16),
        ]

    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    added = {t["id"]: t for t in tok.get("added_tokens", [])}
    tokens = [None] * cfg["vocab_size"]
    types = [1] * cfg["vocab_size"]
    for piece, i in vocab:
        tokens[i] = piece
    for i, t in added.items():
        tokens[i] = t["content"]
        types[i] = 3  # control
    for i, t in enumerate(tokens):
        if t is None:
            tokens[i] = f"[PAD{i}]"
            types[i] = 5  # unused
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]

    kv = bytearray()
    n_kv = 0

    def add(key, vtype, value):
        nonlocal n_kv
        _kv(kv, key, vtype, value)
        n_kv += 1

    add("general.architecture", T_STRING, "llama")
    add("general.name", T_STRING, name)
    add("general.alignment", T_UINT32, ALIGN)
    add("llama.vocab_size", T_UINT32, cfg["vocab_size"])
    add("llama.context_length", T_UINT32, cfg["max_position_embeddings"])
    add("llama.embedding_length", T_UINT32, cfg["hidden_size"])
    add("llama.block_count", T_UINT32, cfg["num_hidden_layers"])
    add("llama.feed_forward_length", T_UINT32, cfg["intermediate_size"])
    add("llama.attention.head_count", T_UINT32, heads)
    add("llama.attention.head_count_kv", T_UINT32, kv_heads)
    add("llama.rope.freq_base", T_FLOAT32, float(cfg.get("rope_theta", 10000.0)))
    add("llama.rope.dimension_count", T_UINT32, cfg["hidden_size"] // heads)
    add("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, float(cfg["rms_norm_eps"]))
    add("tokenizer.ggml.model", T_STRING, "gpt2")
    add("tokenizer.ggml.pre", T_STRING, "qwen2")
    add("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, tokens))
    add("tokenizer.ggml.token_type", T_ARRAY, (T_INT32, types))
    add("tokenizer.ggml.merges", T_ARRAY, (T_STRING, merges))
    add("tokenizer.ggml.bos_token_id", T_UINT32, cfg["bos_token_id"])
    add("tokenizer.ggml.eos_token_id", T_UINT32, cfg["eos_token_id"])
    add("tokenizer.ggml.padding_token_id", T_UINT32, cfg.get("pad_token_id", 3))
    add("tokenizer.ggml.add_bos_token", T_BOOL, True)
    add("tokenizer.ggml.add_eos_token", T_BOOL, False)
    if "chat_template" in tcfg:
        add("tokenizer.chat_template", T_STRING, tcfg["chat_template"])

    infos = bytearray()
    blobs = []
    offset = 0
    for tname, t, gtype in tensors:
        if gtype == GGML_F32:
            data = t.float().contiguous().numpy().tobytes()
        else:
            data = t.to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()
        _s(infos, tname)
        dims = list(reversed(t.shape))
        infos += struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", gtype, offset)
        blobs.append(data)
        offset += len(data)
        offset = (offset + ALIGN - 1) // ALIGN * ALIGN

    with open(out, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), n_kv))
        f.write(kv)
        f.write(infos)
        pad = (-f.tell()) % ALIGN
        f.write(b"\0" * pad)
        for data in blobs:
            f.write(data)
            f.write(b"\0" * ((-len(data)) % ALIGN))
    return out
