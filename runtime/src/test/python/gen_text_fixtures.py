#!/usr/bin/python3
"""Fixtures for the Java chat-template renderer and tokenizer wrapper.

Chat templates: rendered by Jinja2 3.1.2 (Debian python3-jinja2) in the environment Hugging Face
transformers uses for apply_chat_template (ImmutableSandboxedEnvironment, trim_blocks=True,
lstrip_blocks=True, loopcontrols, a {% generation %} tag, raise_exception, tojson with
ensure_ascii=False).

Tokenizer: a WordLevel tokenizer.json in the layout of the bundled model (Lowercase normalizer,
Whitespace pre-tokenizer, special added tokens matched on raw text, TemplateProcessing adding
<s>, WordPiece decoder with cleanup); expected ids/text from a direct Python transcription of
those Hugging Face tokenizers components.

    /usr/bin/python3 runtime/src/test/python/gen_text_fixtures.py
"""
import json
import os
import re

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "text")
os.makedirs(OUT, exist_ok=True)


class AssistantTracker(Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(msg):
    raise jinja2.exceptions.TemplateError(msg)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[AssistantTracker, jinja2.ext.loopcontrols])
env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: \
    json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env.globals["raise_exception"] = raise_exception

TEMPLATES = {
    # tiny-llava-shapes (models/tiny-llava-shapes/tinyllava.py CHAT_TEMPLATE)
    "tiny_llava": (
        "{% for message in messages %}"
        "{% if message['role'] == 'user' %}USER: "
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
        "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
        "{% endif %} "
        "{% else %}ASSISTANT: "
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
        "{% endif %}</s>"
        "{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"),
    # llava-hf/llava-1.5-7b-hf chat_template (2024)
    "llava_hf": (
        "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
        "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
        "{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
        "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
        "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
        "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"),
    # Llama-2-chat style: system folding, raise_exception, loop.index0, strip, whitespace control
    "llama2": (
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
        "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
        "{% set system_message = false %}{% endif %}"
        "{% for message in loop_messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if loop.index0 == 0 and system_message != false %}"
        "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
        "{% else %}{% set content = message['content'] %}{% endif %}"
        "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"),
    # multi-line template exercising trim_blocks / lstrip_blocks, namespace, tojson, filters, -%}
    "multiline": """{%- set ns = namespace(n=0, names=[]) -%}
{% for m in messages %}
    {% set ns.n = ns.n + 1 %}
  <{{ m.role | upper }}{{ ' #' ~ loop.index }}>
    {% if m.content is string %}
{{ m.content | trim }}
    {% else %}
      {% for part in m.content if part.type == 'text' %}{{ part.text }}{% if not loop.last %} | {% endif %}{% endfor %}

    {% endif %}
{% endfor %}
total={{ ns.n }} json={{ {'a': [1, 2], 'b': 'x\\u00e9'} | tojson }} len={{ messages | length }}
{%- if add_generation_prompt %} GEN{% endif %}
""",
}

CONVERSATIONS = {
    "image_question": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "is there a red circle?"}]}],
    "string_turns": [{"role": "user", "content": "  Hello there  "}, {"role": "assistant", "content": " Hi! "},
                     {"role": "user", "content": "What now?"}],
    "system_first": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."},
                     {"role": "assistant", "content": "Red."}, {"role": "user", "content": "Another?"}],
    "multi_part": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image"},
                                                {"type": "text", "text": "b"}]},
                   {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}],
}

renders = []
for tname, src in TEMPLATES.items():
    t = env.from_string(src)
    for cname, msgs in CONVERSATIONS.items():
        for gen in (True, False):
            try:
                out = t.render(messages=msgs, add_generation_prompt=gen, bos_token="<s>", eos_token="</s>")
                renders.append({"template": tname, "conversation": cname, "add_generation_prompt": gen, "output": out})
            except Exception as e:  # templates may reject a conversation
                renders.append({"template": tname, "conversation": cname, "add_generation_prompt": gen,
                                "error": str(e)})

# ---- tokenizer fixture -------------------------------------------------------------------------
SPECIAL = ["<unk>", "<s>", "</s>", "<pad>", "<image>", "USER", "ASSISTANT"]
words = sorted({":", "is", "there", "a", "red", "circle", "?", "what", "color", "the", "square", ".",
                "describe", "image", ",", "large", "small", "blue", "at", "top", "left", "yes", "no",
                "where", "how", "many", "objects", "are", "!", "'", "s", "n't"})
itos = SPECIAL + words
stoi = {w: i for i, w in enumerate(itos)}
tok_json = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [dict(id=i, content=t, single_word=False, lstrip=False, rstrip=False, normalized=False,
                          special=True) for i, t in enumerate(SPECIAL)],
    "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                {"Sequence": {"id": "B", "type_id": 1}}],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
    "model": {"type": "WordLevel", "vocab": stoi, "unk_token": "<unk>"},
}
tok_config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "pad_token": "<pad>", "image_token": "<image>", "model_max_length": 64,
              "chat_template": TEMPLATES["tiny_llava"]}
config = {"model_type": "llava", "image_token_index": 4,
          "text_config": {"model_type": "llama", "max_position_embeddings": 64, "eos_token_id": 2, "bos_token_id": 1}}

split_re = re.compile("(" + "|".join(re.escape(s) for s in sorted(SPECIAL, key=len, reverse=True)) + ")")
word_re = re.compile(r"\w+|[^\w\s]+")


def encode(text, add_special=True):
    ids = [1] if add_special else []
    for seg in split_re.split(text):
        if not seg:
            continue
        if seg in SPECIAL:
            ids.append(stoi[seg])
        else:
            ids += [stoi.get(w, 0) for w in word_re.findall(seg.lower())]
    return ids


def decode(ids):
    toks = [itos[i] for i in ids if i >= len(SPECIAL)]
    out = []
    for i, t in enumerate(toks):
        if i:
            t = t[2:] if t.startswith("##") else " " + t
        for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
            t = t.replace(a, b)
        out.append(t)
    return "".join(out)


texts = ["USER: <image>\nIs there a RED circle? ASSISTANT:", "describe the image.", "What  color\tis the square ?",
         "a large red circle at the top left, a small blue square.", "USERASSISTANT:<image>zebra", "", "   ",
         "how many objects are there!", "where's the square? isn't it"]
tokens = [{"text": t, "ids": encode(t), "ids_no_special": encode(t, False)} for t in texts]
decodes = [{"ids": encode(t, False), "text": decode(encode(t, False))} for t in texts]

tdir = os.path.join(OUT, "tokenizer")
os.makedirs(tdir, exist_ok=True)
for name, obj in (("tokenizer.json", tok_json), ("tokenizer_config.json", tok_config), ("config.json", config)):
    with open(os.path.join(tdir, name), "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump({"generator": "gen_text_fixtures.py", "jinja2": jinja2.__version__, "templates": TEMPLATES,
               "conversations": CONVERSATIONS, "renders": renders, "encode": tokens, "decode": decodes},
              f, indent=1, ensure_ascii=False)
print(len(renders), "renders,", len(tokens), "encodings")
