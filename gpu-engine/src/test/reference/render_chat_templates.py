#!/usr/bin/env python3
"""Renders chat templates with Python jinja2 the way Hugging Face transformers' apply_chat_template does, and writes
the goldens that ChatTemplateTest compares Engram's ChatTemplate against.

transformers compiles templates with ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True), adds a
`tojson` filter (ensure_ascii=False), and the globals `raise_exception` and `strftime_now`; it passes `messages`,
`add_generation_prompt`, the special tokens (`bos_token`, `eos_token`, ...) and any extra kwargs (`enable_thinking`).

Usage (from the repository root): python3 gpu-engine/src/test/reference/render_chat_templates.py [shared_dir]
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
RESOURCES = os.path.join(HERE, "..", "resources", "tokenizer", "chat")
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "..", "..", "shared")

TEMPLATES = {
    "qwen3": os.path.join(SHARED, "tokenizers", "qwen", "tokenizer_config.json"),
    "llama3": os.path.join(SHARED, "tokenizers", "llama3", "tokenizer_config.json"),
    "qwen2.5": os.path.join(RESOURCES, "qwen2.5", "tokenizer_config.json"),
    "smollm2": os.path.join(RESOURCES, "smollm2", "tokenizer_config.json"),
}


def m(role, content):
    return {"role": role, "content": content}


SYSTEM = m("system", "You are a terse assistant.")
CONVERSATIONS = {
    "system_user": [SYSTEM, m("user", "What is 2+2?")],
    "user_only": [m("user", "Hello!")],
    "multi_turn": [SYSTEM, m("user", "Capital of France?"), m("assistant", "Paris."), m("user", "And of Germany?")],
    "multi_turn_no_system": [m("user", "Capital of France?"), m("assistant", "Paris."), m("user", "And of Germany?")],
    "assistant_last": [m("user", "Say hi."), m("assistant", "Hi!")],
    "unicode_and_whitespace": [m("user", "  Ünïcödé 日本語 안녕 👨‍👩‍👧 🇫🇷\n\ttabbed\r\nline  "),
                               m("assistant", "\n  spaced answer \u00a0\n")],
    "think_history": [m("user", "What is 2+2?"),
                      m("assistant", "<think>\nadd two and two\n</think>\n\nIt is 4."),
                      m("user", "Thanks!")],
    "think_last": [m("user", "What is 2+2?"), m("assistant", "<think>\n\nadd\n\n</think>\n\n\nIt is 4.")],
    "tool_turns": [m("user", "Weather in Paris?"), m("assistant", "Let me check."),
                   m("tool", "{\"temp\": 20}"), m("tool", "{\"sky\": \"clear\"}"), m("user", "Thanks")],
    "late_system": [m("user", "Hi"), m("system", "Be brief."), m("user", "Tell me a story.")],
    "empty_content": [m("system", ""), m("user", "")],
}


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def special(config, key):
    v = config.get(key)
    if isinstance(v, dict):
        return v.get("content")
    return v


def main():
    env = environment()
    goldens = []
    for name, path in TEMPLATES.items():
        config = json.load(open(path, encoding="utf-8"))
        template = env.from_string(config["chat_template"])
        variants = [{}]
        if name == "qwen3":
            variants.append({"enable_thinking": False})
        for conv_name, messages in CONVERSATIONS.items():
            for add_gen in (True, False):
                for extra in variants:
                    rendered = template.render(messages=messages, add_generation_prompt=add_gen,
                                               bos_token=special(config, "bos_token"),
                                               eos_token=special(config, "eos_token"), **extra)
                    goldens.append({"template": name, "conversation": conv_name, "messages": messages,
                                    "add_generation_prompt": add_gen, "kwargs": extra, "rendered": rendered})
    out = os.path.join(RESOURCES, "goldens.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"generator": "render_chat_templates.py", "jinja2": jinja2.__version__, "goldens": goldens}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %d renders to %s" % (len(goldens), out))


if __name__ == "__main__":
    main()
