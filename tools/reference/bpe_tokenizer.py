#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Golden reference for the byte-level BPE tokenizer (include/rlhf/model/bpe_tokenizer.hpp):
a small byte-level BPE trained by Hugging Face `tokenizers` itself on text written here, and
the ids `tokenizers` gives for a corpus of test strings. Needs `tokenizers` (scripts/install-deps
test installs it into the tools venv with `transformers`); run it with that Python:

    ~/.local/share/rlhfpp/venv/bin/python tools/reference/bpe_tokenizer.py

writes

    tests/fixtures/bpe_tokenizer_tiny/tokenizer.json    Tokenizer.save (vocab ~600, [a, b] merges)
    tests/fixtures/bpe_tokenizer_tiny/vocab.json        the same model as GPT-2's two files
    tests/fixtures/bpe_tokenizer_tiny/merges.txt
    tests/fixtures/bpe_tokenizer.json                   per variant and test string: the ids
                                                        (encode without special tokens) and
                                                        decode(ids, skip_special_tokens=False)

Variants of the one trained tokenizer (the C++ test makes the same edits to tokenizer.json):
"default" (ByteLevel pre-tokenizer, add_prefix_space false, GPT-2 regex), "prefix_space"
(add_prefix_space true), "no_regex" (use_regex false), "llama3_split" (Llama 3's pre-tokenizer:
Sequence [Split with Llama 3's regex, ByteLevel without regex]) and "qwen2_split" (Qwen2's:
the same with Qwen2's regex, plus the NFC normalizer); the last two encode more strings. Added tokens: <|endoftext|>,
<|im_start|> and <|im_end|> (special), <mask> (special, lstrip), " rlhf++" is not one but
"rlhf++" is (not special, normalized, rstrip).

With --out DIR only the JSON summary is written (to DIR; check_fixtures.py compares it with
the committed one); --folders-dir DIR2 writes the tokenizer folder there too.
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile

import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

from common import ROOT, Fixture

VOCAB_SIZE = 600
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

TRAIN_TEXT = [
    "The quick brown fox jumps over the lazy dog. The dog didn't care; it's a lazy dog.",
    "We'll train a reward model, then we've got to align the policy with PPO and DPO.",
    "I'm sure they're right: you'd think it's easy, but it isn't. She'll see.",
    "Numbers: 0 1 2 3 42 1024 3.14159 2026-01-01 1,000,000 and 007.",
    "Café, naïve, résumé, façade, Ångström, jalapeño, Übermensch, crème brûlée.",
    "日本語のテキストも少し。中文也有一点。한국어 문장도 있습니다.",
    "Emoji 🙂🚀 and symbols ©®™ — dashes – and “quotes” ‘single’ … ellipsis.",
    "Whitespace   runs,\ttabs\t\tand\nnewlines\n\nparagraphs   end here.   ",
    "def f(x):\n    return x * 2  # code with indentation\n\n\tif x > 0:\n\t\tpass",
    "Reinforcement learning from human feedback aligns language models with preferences.",
    "Ελληνικά γράμματα, кириллица тоже, עברית, العربية, हिन्दी.",
    "<|im_start|>user\nHello there!<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>",
] * 8

CORPUS = [
    "",
    "Hello world",
    "Hello, world!",
    " leading space",
    "trailing space ",
    "  two leading, two trailing  ",
    "\n\n",
    "a\n\nb",
    "line one\nline two\n",
    "tabs\tand\t\ttabs",
    "many     spaces    between",
    "   ",
    "\t \n \r\n",
    "it's they're we've I'm you'll he'd can't",
    "IT'S SHOUTED 'S 'quoted' words'",
    "1234567 3.14159 42nd 2026-01-01",
    "Café naïve résumé Ångström",
    "日本語のテキスト 中文 한국어",
    "emoji 🙂🚀🎉 mixed✓text",
    "Ελληνικά кириллица עברית العربية हिन्दी",
    "<|endoftext|>",
    "text<|endoftext|>more text",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "a <mask> b",
    "a    <mask>   b",
    "I like rlhf++ a lot",
    "rlhf++   done",
    "<|im_start|><|im_end|><|endoftext|>",
    "<|im_start|<|im_end|>",
    "unseen: xylophone zebra quartz ФЫВА ЯЧС",
    "x" * 300,
    "The quick brown fox jumps over the lazy dog. The dog didn't care; it's a lazy dog.",
    "def f(x):\n    return x * 2\n",
    "\u00a0nbsp\u2003em space\u3000ideographic",
    "mixed123abc456 a1b2c3",
    "¼ ½ ² ³ Ⅻ ① digits in other scripts: ٣٤٥ ३४५",
    "control\x01\x1fchars\x7f",
    "\u200bzero width\u200d joiner",
]

VARIANTS = ["default", "prefix_space", "no_regex"]

# Llama 3's and Qwen2's pre-tokenizer regexes (Split, behavior Isolated, before a ByteLevel
# without its own regex).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# More strings for the Split variants (they encode CORPUS + SPLIT_EXTRA; the variants above
# keep CORPUS alone, so their records do not change).
SPLIT_EXTRA = [
    "I'M DON'T you'RE We'Ve THEY'LL she'D IT'S it's 'ſt 'K",
    "1234567 12 123 1234 9999999999 v1.2.3",
    "a\r\n\nb",
    "line\r\n",
    "x \n  y",
    "end   \n",
    "trailing   ",
    "   \r\n   ",
    "!\r\n",
    " !\n\n next",
    "punct!!! ... ?!?\n\n(a) [b] {c} --> <== ;;",
    "\t\tindented\n\tcode()\n",
    "x  \n\n  y\u2028z\u0085w",
    "e\u0301 cafe\u0301 A\u030a o\u0308\u0304 a\u0323\u0307 a\u0307\u0323",
    "\u1100\u1161\u11a8 \u1112\u1161\u11ab \uac00\u11a8 \u1100\u1161",
    "\u212b \u2126 \u0344 \u0958 \ufb01 \u1e9b\u0323 \u0301leading",
    "\u0e40\u0e21\u0e37\u0e48\u0e2d \u0915\u094d\u0937 q\u0307\u0323",
    "\u0663\u0664\u0665\u0666 \u00bd\u00bc 12\u00b2",
    "'s's 'S'T ''re x'll'd",
]

SPLIT_VARIANTS = ["llama3_split", "qwen2_split"]


def train():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=1, show_progress=False,
                                  special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TRAIN_TEXT, trainer=trainer)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    tok.add_tokens([AddedToken("rlhf++", rstrip=True, special=False, normalized=True)])
    return tok


def variant(tok_json, name):
    d = json.loads(tok_json)
    if name == "prefix_space":
        d["pre_tokenizer"]["add_prefix_space"] = True
    elif name == "no_regex":
        d["pre_tokenizer"]["use_regex"] = False
    elif name in SPLIT_VARIANTS:
        pattern = LLAMA3_PATTERN if name == "llama3_split" else QWEN2_PATTERN
        d["pre_tokenizer"] = {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated",
                 "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                 "use_regex": False},
            ],
        }
        if name == "qwen2_split":
            d["normalizer"] = {"type": "NFC"}
    return Tokenizer.from_str(json.dumps(d))


def files_of(folder):
    out = {}
    for n in sorted(os.listdir(folder)):
        with open(os.path.join(folder, n), "rb") as f:
            out[n] = hashlib.sha256(f.read()).hexdigest()
    return out


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--folders-dir", default=None)
    args = ap.parse_args(argv)
    default_dir = os.path.join(ROOT, "tests", "fixtures")
    out = args.out or default_dir
    folders = args.folders_dir or (None if args.out else default_dir)

    tok = train()
    fx = Fixture("bpe_tokenizer")
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "bpe_tokenizer_tiny")
        os.makedirs(base)
        tok.save(os.path.join(base, "tokenizer.json"))
        tok.model.save(base)  # vocab.json, merges.txt
        hashes = files_of(base)
        with open(os.path.join(base, "tokenizer.json")) as f:
            tok_json = f.read()
        if folders:
            dst = os.path.join(folders, "bpe_tokenizer_tiny")
            os.makedirs(dst, exist_ok=True)
            for n in hashes:
                with open(os.path.join(base, n), "rb") as src, open(os.path.join(dst, n), "wb") as o:
                    o.write(src.read())
            print(f"wrote {dst} ({len(hashes)} files)")

    for v in VARIANTS + SPLIT_VARIANTS:
        t = variant(tok_json, v)
        texts = CORPUS + SPLIT_EXTRA if v in SPLIT_VARIANTS else CORPUS
        ids = [t.encode(s, add_special_tokens=False).ids for s in texts]
        decoded = [t.decode(i, skip_special_tokens=False) for i in ids]
        fx.add(v, {"variant": v, "tokenizers": tokenizers.__version__,
                   "vocab_size": t.get_vocab_size(with_added_tokens=True)},
               {"texts": texts},
               {"ids": ids, "decoded": decoded, "files_sha256": hashes})
        print(f"{v}: {sum(len(i) for i in ids)} ids for {len(texts)} strings")
    # Fixture.write records torch's version; this script does not use torch.
    fx.write(["--out", out])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
