"""Prepares a training data folder: corpus/*.txt (prose paragraphs) and tokenizer/ (our byte-level BPE).

    # the real data: Debian documentation packages, unpacked (see training/README.md)
    python -m engram_train.prepare --debian DIR --out DATA
    # a small data folder from any plain/Markdown text files (the CPU smoke run uses the repository's own docs)
    python -m engram_train.prepare --text README.md docs/*.md --vocab 1024 --out DATA
"""
import argparse
import sys
from pathlib import Path

from . import corpus


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--debian", help="folder of Debian packages unpacked with dpkg -x, one sub-folder per package")
    ap.add_argument("--text", nargs="*", default=[], help="plain or Markdown text files")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--task-examples", type=int, default=20000)
    a = ap.parse_args(argv)
    out = Path(a.out)
    cdir = out / "corpus"
    if a.debian:
        corpus.main([a.debian, str(cdir)])
    if a.text:
        cdir.mkdir(parents=True, exist_ok=True)
        paras = []
        for f in a.text:
            paras += corpus.paragraphs_of_text(Path(f).read_text(encoding="utf-8", errors="replace"))
        (cdir / "local-text.txt").write_text("\n".join(paras) + "\n", encoding="utf-8")
        print(f"local-text: {len(paras)} paragraphs from {len(a.text)} files")
    if not corpus.load_paragraphs(cdir, held_out=False):
        sys.exit("no training paragraphs: give --debian or --text")
    from . import tokenizer
    tokenizer.main_args([str(cdir), str(out / "tokenizer"), "--vocab", str(a.vocab), "--task-examples",
                         str(a.task_examples)])


if __name__ == "__main__":
    main()
