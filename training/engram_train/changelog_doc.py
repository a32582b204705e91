"""A long document of a genre engram-tiny never trained on, with five plain facts in it, for the pipeline check of
models/engram-tiny/MODEL.md: apt's Debian changelog (its release entries up to about --words words) with one fact
sentence inserted at depths 0.1, 0.3, 0.5, 0.7 and 0.9 of its paragraphs. Writes the document and prints the five
questions with their answers; then, against a running `./engram run`:

    python -m engram_train.changelog_doc /tmp/doc.txt
    ./engram produce -s changelog /tmp/doc.txt
    ./engram ask -s changelog "What is the release key of the mirror archive?"   (and the other four)
"""
import argparse
import gzip
import re
from pathlib import Path

FACTS = [
    ("The release key of the mirror archive is 5824.", "What is the release key of the mirror archive?", "5824"),
    ("The door code of the north depot is 3917.", "What is the door code of the north depot?", "3917"),
    ("The name of the build server's cat is Pepper.", "What is the name of the build server's cat?", "Pepper"),
    ("The backup tapes of the old cluster are kept in room 42.",
     "Where are the backup tapes of the old cluster kept?", "42"),
    ("The favourite number of the release manager is 7306.",
     "What is the favourite number of the release manager?", "7306"),
]


def document(changelog: Path, words: int) -> str:
    text = gzip.open(changelog, "rt", errors="replace").read()
    entries, count = [], 0
    for entry in re.split(r"\n(?=apt \()", text):
        entries.append(entry.strip())
        count += len(entry.split())
        if count >= words:
            break
    paragraphs = "\n\n".join(entries).split("\n\n")
    for i, (fact, _, _) in reversed(list(enumerate(FACTS))):
        paragraphs.insert(int(len(paragraphs) * (0.1 + 0.2 * i)), fact)
    return "\n\n".join(paragraphs) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--changelog", type=Path, default=Path("/usr/share/doc/apt/changelog.gz"))
    ap.add_argument("--words", type=int, default=9000)
    args = ap.parse_args(argv)
    if not args.changelog.exists():
        raise SystemExit(f"{args.changelog} not found: install apt's documentation or pass --changelog")
    doc = document(args.changelog, args.words)
    args.out.write_text(doc)
    print(f"wrote {args.out}: {len(doc.split())} words")
    for _, question, answer in FACTS:
        print(f"{question}\t{answer}")


if __name__ == "__main__":
    main()
