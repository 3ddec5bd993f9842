"""The injection classifier's features, exactly as the guard engine computes them in Rust
(`shared/guard/src/classifier.rs`). Both sides must agree byte for byte; `train_injection.py` exports
fixtures that a Rust unit test checks.

Specification (version 1):
- The text is the guard's normalised text (or one of its decoded views). ASCII letters are lowercased;
  nothing else is changed.
- A word is a maximal run of word characters: ASCII letters and digits, `_`, and every character at or
  above U+0080 outside these ranges of punctuation and symbols: U+0080..U+00BF, U+00D7, U+00F7,
  U+2000..U+2BFF, U+3000..U+303F, U+FE10..U+FE6F, U+FF00..U+FF0F, U+1F000..U+1FAFF.
- Each word gives, in this order: its unigram `w:<word>`; its bigram with the next word `b:<word> <next>`
  (when there is a next word); and the character 4-grams `c:<gram>` of ` <word> ` (the word padded with
  one space on each side; a word longer than 32 characters is cut to its first 32 and gets no closing
  space). A padded word shorter than 4 characters gives itself as its one gram.
- Each feature is hashed with 32-bit FNV-1a over its UTF-8 bytes; its bucket is the hash's low `bits` bits.
- Words are grouped in blocks of 32 (by position); a window is two consecutive blocks (64 words, overlapping
  by 32), or the whole text when it has at most two blocks. A window's features are those of its words.
- A window's logit is `bias + scale * Σ q[bucket] / sqrt(n + 32)`, where `n` is the number of features in
  the window (each occurrence counts) and `q` the quantised weights; the 32 keeps a text of two or three
  words from being judged on a handful of features. Its probability is the logistic of the logit. A text's
  probability is the highest of its windows'.
"""

from __future__ import annotations

import math

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
BLOCK_WORDS = 32
MAX_GRAM_WORD_CHARS = 32
GRAM = 4
NORM_OFFSET = 32


def fnv1a(data: bytes) -> int:
    h = FNV_OFFSET
    for b in data:
        h ^= b
        h = (h * FNV_PRIME) & 0xFFFFFFFF
    return h


def is_word_char(c: str) -> bool:
    o = ord(c)
    if o < 0x80:
        return c.isascii() and (c.isalnum() or c == "_")
    return not (
        0x80 <= o <= 0xBF
        or o in (0xD7, 0xF7)
        or 0x2000 <= o <= 0x2BFF
        or 0x3000 <= o <= 0x303F
        or 0xFE10 <= o <= 0xFE6F
        or 0xFF00 <= o <= 0xFF0F
        or 0x1F000 <= o <= 0x1FAFF
    )


def ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def words(text: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    for c in ascii_lower(text):
        if is_word_char(c):
            current.append(c)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


def word_features(ws: list[str], i: int) -> list[str]:
    w = ws[i]
    feats = ["w:" + w]
    if i + 1 < len(ws):
        feats.append("b:" + w + " " + ws[i + 1])
    if len(w) > MAX_GRAM_WORD_CHARS:
        padded = " " + w[:MAX_GRAM_WORD_CHARS]
    else:
        padded = " " + w + " "
    if len(padded) < GRAM:
        feats.append("c:" + padded)
    else:
        feats.extend("c:" + padded[j : j + GRAM] for j in range(len(padded) - GRAM + 1))
    return feats


def buckets(feats: list[str], bits: int) -> list[int]:
    mask = (1 << bits) - 1
    return [fnv1a(f.encode("utf-8")) & mask for f in feats]


def windows(text: str, bits: int) -> list[list[int]]:
    """The buckets of each window's features (with repeats), in word order."""
    ws = words(text)
    if not ws:
        return []
    per_word = [buckets(word_features(ws, i), bits) for i in range(len(ws))]
    blocks = [
        [b for pw in per_word[s : s + BLOCK_WORDS] for b in pw] for s in range(0, len(ws), BLOCK_WORDS)
    ]
    if len(blocks) <= 2:
        return [[b for block in blocks for b in block]]
    return [blocks[i] + blocks[i + 1] for i in range(len(blocks) - 1)]


def window_logit(window: list[int], weights, scale: float, bias: float) -> float:
    if not window:
        return bias
    total = sum(int(weights[b]) for b in window)
    return bias + scale * total / math.sqrt(len(window) + NORM_OFFSET)


def probability(text: str, weights, scale: float, bias: float, bits: int) -> float:
    """The text's probability: the highest window's, 0 for a text without words."""
    best = None
    for window in windows(text, bits):
        logit = window_logit(window, weights, scale, bias)
        best = logit if best is None or logit > best else best
    if best is None:
        return 0.0
    return 1.0 / (1.0 + math.exp(-best))
