#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Golden reference for chat templates (include/rlhf/model/chat_template.hpp): templates
written here in the styles Hugging Face models use (ChatML, Llama-2 with raise_exception,
Llama-3 with bos_token, Zephyr, heavy whitespace control, jinja2 scoping), rendered by
transformers' own apply_chat_template for several conversations, with and without
add_generation_prompt. Needs `transformers` (scripts/install-deps test installs it into the
tools venv); run it with that Python:

    ~/.local/share/rlhfpp/venv/bin/python tools/reference/chat_template.py [--out DIR]

writes tests/fixtures/chat_template.json. A case is one template: config {"template",
"bos_token", "eos_token", "refuse"} ("refuse": a construct rlhf++ must refuse, naming it in
its config_error, or null), inputs {"conversations": [[{"role", "content"}, ...], ...]},
outputs {"rendered": [[r_false, r_true], ...]} per conversation and add_generation_prompt
value, each r {"text": ...} or {"raise": message} when the template's raise_exception fired.
"""
import sys

import transformers
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from common import Fixture

BOS, EOS = "<s>", "</s>"

# The built-in template of chat_template::chatml() (the C++ test checks the text is equal).
CHATML = (
    "{%- for message in messages %}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "{{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n")

TEMPLATES = {
    "chatml_builtin": CHATML,
    # ChatML with a default system turn (Qwen2 style), plain block tags (trim/lstrip_blocks).
    "chatml_default_system": """{% for message in messages %}
    {% if loop.first and messages[0]['role'] != 'system' %}
        {{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
    {% endif %}
    {{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}
{% endfor %}
{% if add_generation_prompt %}
    {{ '<|im_start|>assistant\\n' }}
{% endif %}
""",
    # Llama-2 style: system folded into the first user turn, alternation enforced.
    "llama2_style": """{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}""",
    # Llama-3 style: bos_token prefix, header ids, trimmed content.
    "llama3_style": """{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}""",
    # Zephyr style: eos_token after every turn.
    "zephyr_style": """{% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>\\n' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>\\n' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>\\n'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %}""",
    # Whitespace control everywhere, comments, indentation and a kept newline.
    "whitespace_control": """{#- A template with every whitespace control form. -#}
{%- if messages | length > 0 and messages[0].role == "system" -%}
    [SYS] {{- messages[0].content | trim -}} [/SYS]
{%- endif %}
{% for m in messages -%}
  {%- if m.role != "system" %}
  <{{ m.role }}>  {{ m.content }}  </{{ m.role }}>
  {%- endif -%}
  {# per-turn comment #}
{% endfor -%}
{{- "\\n" if add_generation_prompt else "" -}}
{%+ if add_generation_prompt %}  <assistant>{% endif +%}
end
""",
    # jinja2 scoping: a set inside a for loop does not leak out; a set inside an if does.
    "scoping": """{% set last_role = 'none' %}{% set count = 0 %}{% for m in messages %}{{ last_role }}>{% set last_role = m.role %}{{ last_role }};{% set count = count + 1 %}{% endfor %}|{{ last_role }}|{{ count }}|{% if messages %}{% set seen = 'yes' %}{% endif %}{{ seen }}|{% for m in messages %}{% for c in [1, 2] %}{{ loop.index }}{% endfor %}{{ loop.index }}/{{ loop.length }}{{ loop.revindex0 }}{{ 'F' if loop.first }}{{ 'L' if loop.last }} {% else %}empty{% endfor %}""",
    # Expressions: ~, in / not in, %, comparisons, tests, filters, conditionals, and/or.
    "expressions": """{%- for m in messages -%}
{{- loop.index ~ ':' ~ m['role'][0:1] if false else loop.index ~ ':' -}}
{{- 'U' if m.role == 'user' else ('A' if m.role in ['assistant', 'model'] else 'S') -}}
{{- '!' if 'x' not in m.content else '?' -}}
{{- '(' ~ (m.content | length) ~ ',' ~ (loop.index0 % 2) ~ ',' ~ (m.content | length >= 5) ~ ')' -}}
{{- '[' + (m.content or 'EMPTY') + ']' -}}
{{- ' tool' if m.tool_calls is defined else '' -}}
{{- ' none' if m.content is none else '' -}}
{{- ' ' ~ (m.name | default('anon')) ~ ' ' ~ (m.content.startswith(' ') and 'lead' or 'nolead') -}}
{{- ' ' ~ m.role | upper ~ ' ' ~ (not loop.last) ~ ' ' ~ (1 < loop.index <= 2) ~ '\\n' -}}
{%- endfor -%}
{{- bos_token ~ '|' ~ eos_token ~ '|' ~ unk_token ~ '|' ~ (tools is none) ~ (documents is not none) -}}
{{- '|' ~ (messages[-1].role if messages else 'no messages') ~ '|' ~ messages[5] ~ '|' -}}
{%- if add_generation_prompt %}{{ 'GEN' }}{% elif messages | length == 1 %}{{ 'ONE' }}{% else %}{{ 'END' }}{% endif -%}""",
    # Must be refused (the value of REFUSE names the construct the message must contain).
    "refuse_namespace": """{%- set ns = namespace(found=false) -%}{%- for m in messages -%}{%- if m.role == 'system' -%}{%- set ns.found = true -%}{%- endif -%}{%- endfor -%}{{ ns.found }}""",
    "refuse_macro": """{% macro turn(m) %}[{{ m.role }}] {{ m.content }}{% endmacro %}{% for m in messages %}{{ turn(m) }}{% endfor %}""",
    "refuse_tojson": """{% for m in messages %}{{ m.content | tojson }}{% endfor %}""",
    "refuse_multiply": """{{ '=' * 10 }}{% for m in messages %}{{ m.content }}{% endfor %}""",
    "refuse_loop_cycle": """{% for m in messages %}{{ loop.cycle('odd', 'even') }}{{ m.content }}{% endfor %}""",
}

REFUSE = {
    "refuse_namespace": "namespace()",
    "refuse_macro": "{% macro %}",
    "refuse_tojson": "| tojson",
    "refuse_multiply": "*",
    "refuse_loop_cycle": ".cycle()",
}

CONVERSATIONS = [
    [{"role": "system", "content": "You are terse."},
     {"role": "user", "content": "Hello!"},
     {"role": "assistant", "content": "Hi. What do you need?"},
     {"role": "user", "content": "Explain RLHF in one line."}],
    [{"role": "user", "content": "Just one question?"}],
    [{"role": "user", "content": "  Ünïcødé: 日本語, emoji 🙂🚀, \u00a0nbsp\u3000ideographic  \n"},
     {"role": "assistant", "content": "Template-looking text: {{ x }} {% if y %} {# z #} stays."},
     {"role": "user", "content": ""},
     {"role": "assistant", "content": "line one\nline two\n\n\ttabbed\r\nwindows"}],
    [{"role": "user", "content": "first"}, {"role": "user", "content": "second, out of turn"}],
]


def tiny_tokenizer():
    vocab = {"[UNK]": 0, BOS: 1, EOS: 2}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS,
                                   unk_token="[UNK]")


def render(tok, template, messages, agp):
    try:
        text = tok.apply_chat_template(messages, chat_template=template, tokenize=False,
                                       add_generation_prompt=agp)
        return {"text": text}
    except Exception as e:  # jinja2's TemplateError from raise_exception()
        if type(e).__name__ != "TemplateError":
            raise
        return {"raise": str(e)}


def main(argv):
    tok = tiny_tokenizer()
    fx = Fixture("chat_template")
    for name, template in TEMPLATES.items():
        rendered = [[render(tok, template, conv, agp) for agp in (False, True)]
                    for conv in CONVERSATIONS]
        fx.add(name, {"template": template, "bos_token": BOS, "eos_token": EOS,
                      "unk_token": "[UNK]", "refuse": REFUSE.get(name),
                      "transformers": transformers.__version__},
               {"conversations": CONVERSATIONS}, {"rendered": rendered})
        raised = sum("raise" in r for pair in rendered for r in pair)
        print(f"{name}: {len(CONVERSATIONS)} conversations, {raised} raised")
    fx.write(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
