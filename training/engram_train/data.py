"""Token streams for training: packed prose and generated QA examples, tokenized piece by piece exactly as the engine
tokenizes content events and questions (PromptFormat.PLAIN)."""
import random
import textwrap

import numpy as np
import torch
from tokenizers import Tokenizer

from . import tasks

BOS_ID, EOS_ID = 1, 2
ANSWER_WEIGHT = 5.0
# the first token of a QA answer (where the model decides between a value and "I don't know."): marked apart so
# that a stage can weigh the decision above the tokens that merely finish it (config first_token_weight)
FIRST_ANSWER_WEIGHT = 5.5


class PieceEncoder:
    """Encodes an example the way SessionEngine does: the first content piece with BOS, every later piece prefixed by a
    blank line, each question as '\\n\\nQuestion: q\\nAnswer:' and the answer as ' a' + EOS."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok

    def ids(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids

    def context(self, pieces):
        texts = [p if i == 0 else "\n\n" + p for i, p in enumerate(pieces)]
        enc = self.tok.encode_batch(texts, add_special_tokens=False)
        out = [BOS_ID]
        for e in enc:
            out.extend(e.ids)
        return out

    def question(self, q, memory_empty=False):
        return self.ids(("" if memory_empty else "\n\n") + "Question: " + q + "\nAnswer:")

    def answer(self, a):
        return self.ids(" " + a) + [EOS_ID]

    def example(self, ex: tasks.Example):
        """(ids, weights) for a whole example: context, then each question and its answer (weighted)."""
        ids = self.context(ex.pieces)
        w = [1.0] * len(ids)
        for q, a in ex.qa:
            qi, ai = self.question(q), self.answer(a)
            ids += qi + ai
            w += [1.0] * len(qi) + [FIRST_ANSWER_WEIGHT] + [ANSWER_WEIGHT] * (len(ai) - 1)
        return ids, w


class Mixture(torch.utils.data.IterableDataset):
    """Endless sequences of seq_len+1 tokens: a share of packed prose, the rest packed QA examples of random length."""

    def __init__(self, tokenizer_path, paragraphs, seq_len, task_share=0.6, seed=0, tokens_per_word=1.6,
                 copy_share=0.0, max_words=None, kinds=None, copy_vocab=None, copy_repeats=2, dense_share=0.0,
                 dense_words=40, copy_digits=False, copy_run=None, copy_text=0.0, refuse_share=0.12, pair_refusals=False):
        self.tokenizer_path = tokenizer_path
        self.refuse_share = refuse_share
        self.pair_refusals = pair_refusals
        self.paragraphs = paragraphs
        self.seq_len = seq_len
        self.task_share = task_share
        # share of induction warm-up sequences (random token runs, each repeated once): copying circuits form within a
        # few hundred steps on them, and every retrieval skill is built on copying. Read on every sequence, so a
        # trainer without DataLoader workers can lower it as training goes.
        self.copy_share = copy_share
        # share of examples whose pieces are hard-wrapped at 60-120 columns, as text files and e-mails often are
        self.wrap_share = 0.25
        # dense associative-recall stage: examples of at most max_words filler words (None: as long as the room allows),
        # only the given skills (None: all)
        self.max_words = max_words
        self.kinds = kinds
        # share of QA examples kept dense (at most dense_words filler words) in a long-context stage, so the recall
        # circuit formed by the dense stage is kept while filler grows
        self.dense_share = dense_share
        self.dense_words = dense_words
        # induction warm-up tokens come from the first copy_vocab ids (None: the whole vocabulary)
        self.copy_vocab = copy_vocab
        # how often each run appears: with 4, three quarters of a warm-up sequence is predictable by copying, and
        # copying forms ~10x sooner than with 2 (training/PROBES.md)
        self.copy_repeats = copy_repeats
        # induction warm-up runs of digit tokens only: numbers are split into single digits by the tokenizer, and
        # copying one digit after another needs a match on more than the previous token (digits repeat)
        self.copy_digits = copy_digits
        # (min, max) length of a warm-up run; None: 8-64 with two repeats, 8-24 with more. Long runs repeated once form
        # copying in ~200 steps where short runs repeated four times plateau for thousands on "some token of this run"
        # (training/PROBES.md, recipe 2)
        self.copy_run = copy_run
        # share of the copy sequences that repeat natural text (a passage of 1-4 sentences, then the same passage again):
        # copying prose needs matches on more than the previous token (words repeat), which random runs never ask for
        self.copy_text = copy_text
        self.seed = seed
        self.tpw = tokens_per_word

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        r = random.Random(self.seed * 1000 + wid)
        enc = PieceEncoder(Tokenizer.from_file(self.tokenizer_path))
        gen = tasks.TaskGenerator(self.paragraphs, "train", seed=self.seed * 1000 + wid + 1,
                                  refuse_share=self.refuse_share, pair_refusals=self.pair_refusals)
        vocab = min(enc.tok.get_vocab_size(), 4 + self.copy_vocab) if self.copy_vocab else enc.tok.get_vocab_size()
        digits = [enc.tok.token_to_id(str(d)) for d in range(10)]
        while True:
            n = self.seq_len + 1
            ids, w = [], []
            if self.copy_text and r.random() < self.copy_share * self.copy_text:
                while len(ids) < n:
                    para = r.choice(self.paragraphs)
                    sents = para.split(". ")
                    a = r.randrange(len(sents))
                    passage = ". ".join(sents[a:a + r.randint(1, 4)])
                    p = enc.ids(passage)[:120]
                    sep = enc.ids("\n\n")
                    ids += [BOS_ID] + p + sep + p
                    w += [1.0] * (1 + len(p) + len(sep)) + [ANSWER_WEIGHT] * len(p)
            elif self.copy_digits and r.random() < self.copy_share:
                while len(ids) < n:
                    run = [r.choice(digits) for _ in range(r.randint(3, 10))]
                    ids += [BOS_ID] + run * self.copy_repeats
                    w += [1.0] * (1 + len(run)) + [ANSWER_WEIGHT] * (len(run) * (self.copy_repeats - 1))
            elif r.random() < self.copy_share:
                while len(ids) < n:
                    lo, hi = self.copy_run or (8, 64 if self.copy_repeats <= 2 else 24)
                    run = [r.randrange(4, vocab) for _ in range(r.randint(lo, hi))]
                    ids += [BOS_ID] + run * self.copy_repeats
                    w += [1.0] * (1 + len(run)) + [ANSWER_WEIGHT] * (len(run) * (self.copy_repeats - 1))
            elif r.random() < self.task_share:
                while len(ids) < n:
                    room = n - len(ids)
                    if self.max_words is not None:
                        target = r.randint(0, self.max_words)
                    elif r.random() < self.dense_share:
                        target = r.randint(0, self.dense_words)
                    else:
                        target = r.randint(48, max(64, int(min(room, self.seq_len) / self.tpw)))
                    ex = gen.example(target_words=target, kind=r.choice(self.kinds) if self.kinds else None)
                    if r.random() < self.wrap_share:
                        ex.pieces = hard_wrapped(ex.pieces, r)
                    ei, ew = enc.example(ex)
                    ids += ei
                    w += ew
            else:
                while len(ids) < n:
                    k = r.randint(1, 12)
                    pieces = [r.choice(self.paragraphs) for _ in range(k)]
                    if r.random() < self.wrap_share:
                        pieces = hard_wrapped(pieces, r)
                    ei = enc.context(pieces)
                    ids += ei
                    w += [1.0] * len(ei)
            yield torch.tensor(ids[:n], dtype=torch.long), torch.tensor(w[:n], dtype=torch.float32)


def hard_wrapped(pieces, r):
    width = r.randint(60, 120)
    return [textwrap.fill(p, width=width, break_long_words=False, break_on_hyphens=False) for p in pieces]


def prose_windows(tok: Tokenizer, paragraphs, seq_len, count, seed=0):
    """Held-out perplexity windows: BOS + paragraphs joined by blank lines, seq_len+1 tokens each."""
    enc = PieceEncoder(tok)
    r = random.Random(seed)
    out = []
    order = list(range(len(paragraphs)))
    r.shuffle(order)
    i = 0
    while len(out) < count and i < len(order):
        pieces = []
        ids = [BOS_ID]
        while len(ids) < seq_len + 1 and i < len(order):
            pieces.append(paragraphs[order[i]])
            i += 1
            ids = enc.context(pieces)
        if len(ids) >= seq_len + 1:
            out.append(np.array(ids[:seq_len + 1]))
    return out
