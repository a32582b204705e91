"""Trains Engram's byte-level BPE tokenizer and writes tokenizer.json + tokenizer_config.json.

Pre-tokenization splits single digits (so numbers, codes and UUIDs are copied digit by digit) with the same regex as
Qwen2's tokenizer, followed by GPT-2 byte-level mapping; the engine's HfTokenizer reads this layout.

    python -m engram_train.tokenizer CORPUS_DIR OUT_DIR [--vocab 8192]
"""
import argparse
import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from . import corpus, tasks

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
         r"\s+(?!\S)|\s+")

# The engine's question format (PromptFormat.PLAIN) as a chat template: system/user content is memory, each user
# question is "Question: ...\nAnswer:", assistant turns are " answer</s>".
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{% if not loop.first %}\n\n{% endif %}Question: {{ message['content'] }}\nAnswer:"
    "{% elif message['role'] == 'assistant' %} {{ message['content'] }}{{ eos_token }}"
    "{% else %}{% if not loop.first %}\n\n{% endif %}{{ message['content'] }}{% endif %}"
    "{% endfor %}")


def build(vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, 1), (EOS, 2)])
    return tok


def texts(corpus_dir: Path, examples: int):
    yield from corpus.load_paragraphs(corpus_dir, held_out=False)
    gen = tasks.TaskGenerator(corpus.load_paragraphs(corpus_dir, held_out=False), split="train", seed=7)
    for _ in range(examples):
        ex = gen.example(target_words=120)
        yield "\n\n".join(ex.pieces)
        for q, a in ex.qa:
            yield f"Question: {q}\nAnswer: {a}"


def main():
    main_args(None)


def main_args(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--task-examples", type=int, default=20000)
    a = ap.parse_args(argv)
    tok = build(a.vocab)
    trainer = trainers.BpeTrainer(vocab_size=a.vocab, special_tokens=["<unk>", BOS, EOS, PAD], min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=True)
    tok.train_from_iterator(texts(Path(a.corpus), a.task_examples), trainer=trainer)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False,
        "model_max_length": 2048,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(json.dumps({"bos_token": BOS, "eos_token": EOS, "pad_token": PAD,
                                                             "unk_token": "<unk>"}, indent=2) + "\n")
    print(f"vocab {tok.get_vocab_size()} -> {out}")


if __name__ == "__main__":
    main()
