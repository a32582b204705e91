"""Extracts English prose paragraphs from Debian documentation packages.

Each source is a Debian package unpacked with ``dpkg -x`` (``apt-get download NAME && dpkg -x NAME*.deb DIR``). The
extractor keeps running prose only: code blocks, tables of contents, navigation and short fragments are dropped, so
the model learns English sentences rather than markup. One output file per source, one paragraph per line.

    python -m engram_train.corpus UNPACKED_DIR OUT_DIR
"""
import gzip
import html.parser
import re
import sys
from pathlib import Path

# name -> (package, licence, glob patterns inside the unpacked package, held out of training?)
SOURCES = {
    "python-docs": ("python3.11-doc", "PSF-2.0", ["usr/share/doc/python3.11/html/_sources/**/*.rst.txt"], False),
    "debian-handbook": ("debian-handbook", "GPL-2.0+ or CC-BY-SA-3.0",
                        ["usr/share/doc/debian-handbook/html/en-US/*.html"], False),
    "debian-policy": ("debian-policy", "GPL-2+", ["usr/share/doc/debian-policy/policy.html/*.html",
                                                   "usr/share/doc/debian-policy/*.txt"], False),
    "developers-reference": ("developers-reference", "GPL-2", ["usr/share/developers-reference/*.html"], False),
    "maint-guide": ("maint-guide", "MIT / GPL-2.0+", ["usr/share/doc/maint-guide/html/*.en.html"], False),
    "gnu-standards": ("gnu-standards", "GFDL-1.3 (no invariant sections)", ["usr/share/doc/gnu-standards/*.html",
                                                                            "usr/share/info/*.info*"], False),
    "debian-faq": ("doc-debian", "GPL-2+ / Open Publication License", ["usr/share/doc/debian/*.txt*"], False),
    "fortunes": ("fortunes", "BSD-4-Clause (fortune-mod data)", ["usr/share/games/fortunes/*"], False),
    "rust-book": ("rust-doc", "MIT or Apache-2.0", ["usr/share/doc/rust-doc/html/book/*.html"], False),
    "postgresql-docs": ("postgresql-doc-15", "PostgreSQL", ["usr/share/doc/postgresql-doc-15/html/*.html"], False),
    "sqlite-docs": ("sqlite3-doc", "public-domain", ["usr/share/doc/sqlite3/*.html"], False),
    "git-docs": ("git-doc", "GPL-2", ["usr/share/doc/git-doc/*.txt"], False),
    "perl-docs": ("perl-doc", "Artistic-1.0 or GPL-1+", ["usr/share/perl/*/pod/*.pod"], False),
    # Held out: never trained on; used for perplexity and as unseen filler in the evaluation.
    "debian-reference": ("debian-reference-en", "GPL-2+", ["usr/share/debian-reference/*.en.html"], True),
}

_SKIP_TAGS = {"pre", "script", "style", "code", "table", "nav", "head", "title"}
_BLOCK_TAGS = {"p", "div", "li", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6", "br", "blockquote", "section", "td"}


class _Html(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.parts = []

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def _read(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def _html_blocks(text):
    p = _Html()
    p.feed(text)
    return "".join(p.parts).split("\n\n")


def _rst_blocks(text):
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.split("\n")
        if lines[0].startswith((" ", "\t", "..", "::", ">>>", "$ ", "#", "=")) or re.fullmatch(r"[=\-~^*#+`]{3,}", lines[-1].strip()):
            continue  # indented code, directives, headings
        out.append(" ".join(l.strip() for l in lines))
    return out


def _fortune_blocks(text):
    return [b.replace("\n", " ") for b in text.split("\n%\n")]


_WORD = re.compile(r"[A-Za-z]+")


def clean(block: str):
    """Returns the block as one line of prose, or None when it is not prose worth training on."""
    s = re.sub(r"\s+", " ", block).strip()
    s = re.sub(r"``|\*\*|:(?:ref|func|class|meth|mod|data|attr|exc|term|option|envvar|pep|file|c:\w+):`", "", s)
    s = s.replace("`", "")
    if len(s) < 60 or len(s) > 4000:
        return None
    words = _WORD.findall(s)
    if len(words) < 10:
        return None
    if sum(1 for c in s if ord(c) > 127) > len(s) * 0.02:
        return None
    letters = sum(c.isalpha() or c == " " for c in s)
    if letters < 0.8 * len(s):
        return None  # symbols, paths, commands
    if not re.search(r"[.!?\"')]$", s):
        return None
    return s


def extract(unpacked: Path, name: str):
    package, _, patterns, _ = SOURCES[name]
    root = unpacked / package
    seen = set()
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if path.is_dir() or path.suffix in (".dat", ".u8"):
                continue
            text = _read(path)
            if path.name.endswith((".html", ".htm", ".html.en")):
                blocks = _html_blocks(text)
            elif name == "fortunes":
                blocks = _fortune_blocks(text)
            else:
                blocks = _rst_blocks(text)
            for b in blocks:
                c = clean(b)
                if c and c not in seen:
                    seen.add(c)
                    yield c


def main(argv):
    unpacked, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        paras = list(extract(unpacked, name))
        (out / f"{name}.txt").write_text("\n".join(paras) + "\n", encoding="utf-8")
        words = sum(len(p.split()) for p in paras)
        print(f"{name:22s} {len(paras):7d} paragraphs {words:9d} words")


if __name__ == "__main__":
    main(sys.argv[1:])


def load_paragraphs(corpus_dir, held_out: bool):
    """Paragraphs of the training sources (held_out=False) or of the held-out sources (held_out=True). Any other
    *.txt file in the folder (one paragraph per line) counts as training text."""
    out = []
    for f in sorted(Path(corpus_dir).glob("*.txt")):
        h = SOURCES.get(f.stem, (None, None, None, False))[3]
        if h == held_out:
            out.extend(l for l in f.read_text(encoding="utf-8").splitlines() if l)
    return out


def paragraphs_of_text(text: str):
    """Prose paragraphs (blank-line separated) of a plain or Markdown text, cleaned like the package sources."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        if block.lstrip().startswith(("#", "|", "```", "    ", "-", "*", ">")):
            continue
        c = clean(block)
        if c:
            out.append(c)
    return out
