"""Exports a training checkpoint (OUT/ckpt.pt of any stage, finished or not) as a model folder: safetensors, tokenizer,
generation config, training.json and the BF16 GGUF, exactly as a finished run exports it.

  python -m engram_train.export --ckpt RUN/cpu/ckpt.pt --config cpu --data DATA --out ../models/engram-tiny
"""
import argparse
import json
from pathlib import Path

import torch

from . import train


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True, help="a ckpt.pt written by engram_train.train")
    ap.add_argument("--config", required=True, choices=train.CONFIGS, help="the config it was trained with (its shape)")
    ap.add_argument("--data", required=True, help="the prepared data folder (its tokenizer is shipped with the model)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--note", default="", help="recorded in training.json (e.g. the stages behind this checkpoint)")
    a = ap.parse_args()
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM
    data_dir = Path(a.data)
    vocab = Tokenizer.from_file(str(data_dir / "tokenizer" / "tokenizer.json")).get_vocab_size()
    cfg = train.model_config(dict(train.CONFIGS[a.config]), vocab)
    model = LlamaForCausalLM(cfg)
    st = torch.load(a.ckpt, map_location="cpu")
    model.load_state_dict(st["model"])
    n_params = sum(p.numel() for p in model.parameters())
    meta = dict(steps=st["step"], tokens=st["tokens"], seconds=round(st["elapsed"]), config=a.config, params=n_params,
                checkpoint=str(a.ckpt), note=a.note)
    train.export(model, cfg, data_dir, Path(a.out), meta)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
