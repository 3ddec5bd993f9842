"""The injection classifier's features, exactly as the guard engine computes them in Rust
(`shared/guard/src/classifier.rs`). Both sides must agree byte for byte; `train_injection.py` exports
fixtures that a Rust unit test checks.

Specification (version 2):
- The text is the guard's normalised text (or one of its decoded views). ASCII letters are lowercased;
  nothing else is changed.
- A word is a maximal run of word characters: ASCII letters and digits, `_`, and every character at or
  above U+0080 outside these ranges of punctuation and symbols: U+0080..U+00BF, U+00D7, U+00F7,
  U+2000..U+2BFF, U+3000..U+303F, U+FE10..U+FE6F, U+FF00..U+FF0F, U+1F000..U+1FAFF.
- Each word gives, in this order: its unigram; its bigram with the next word (when there is a next word);
  and the character 4-grams of ` <word> ` (the word padded with one space on each side; a word longer than
  32 characters is cut to its first 32 and gets no closing space). A padded word shorter than 4 characters
  gives itself as its one gram.
- Hashes are 64-bit. `chunks(seed, bytes)` starts from `seed` and, for each 8 bytes of `bytes` read as a
  little-endian integer (the last piece padded with zero bytes), replaces the hash `h` with
  `fmix64(h ^ piece)`, MurmurHash3's finaliser. A word's hash `W` is `chunks(0, <word's UTF-8 bytes>)`;
  its unigram hashes to `W`, its bigram to `rotl(W, 1) ^ W_next ^ BIGRAM_SEED`, and a gram to
  `chunks(GRAM_SEED, <gram's UTF-8 bytes>)`. A feature's bucket is its hash's low `bits` bits. (Word bytes
  are never zero, so a word of up to 8 bytes is one piece and `W` tells it from every other such word.)
- Words are grouped in blocks of 32 (by position); a window is two consecutive blocks (64 words, overlapping
  by 32), or the whole text when it has at most two blocks. A window's features are those of its words.
- A window's logit is `bias + scale * Σ q[bucket] / sqrt(n + 32)`, where `n` is the number of features in
  the window (each occurrence counts) and `q` the quantised weights; the 32 keeps a text of two or three
  words from being judged on a handful of features. Its probability is the logistic of the logit. A text's
  probability is the highest of its windows'.
"""

from __future__ import annotations

import math

MASK64 = (1 << 64) - 1
BIGRAM_SEED = 0x9E3779B97F4A7C15
GRAM_SEED = 0xC2B2AE3D27D4EB4F
BLOCK_WORDS = 32
MAX_GRAM_WORD_CHARS = 32
GRAM = 4
NORM_OFFSET = 32


def fmix64(h: int) -> int:
    """MurmurHash3's 64-bit finaliser: a bijection of 64-bit integers that mixes every bit into every other."""
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK64
    h ^= h >> 33
    return h


def chunks(seed: int, data: bytes) -> int:
    h = seed
    for i in range(0, len(data), 8):
        h = fmix64(h ^ int.from_bytes(data[i : i + 8], "little"))
    return h


def rotl(h: int, n: int) -> int:
    return ((h << n) | (h >> (64 - n))) & MASK64


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


def word_hashes(ws: list[str], i: int) -> list[int]:
    """The hashes of word `i`'s features, in order: unigram, bigram, grams."""
    w = ws[i].encode("utf-8")
    word = chunks(0, w)
    hashes = [word]
    if i + 1 < len(ws):
        hashes.append(rotl(word, 1) ^ chunks(0, ws[i + 1].encode("utf-8")) ^ BIGRAM_SEED)
    text = ws[i]
    if len(text) > MAX_GRAM_WORD_CHARS:
        padded = " " + text[:MAX_GRAM_WORD_CHARS]
    else:
        padded = " " + text + " "
    if len(padded) < GRAM:
        grams = [padded]
    else:
        grams = [padded[j : j + GRAM] for j in range(len(padded) - GRAM + 1)]
    hashes.extend(chunks(GRAM_SEED, g.encode("utf-8")) for g in grams)
    return hashes


def windows(text: str, bits: int) -> list[list[int]]:
    """The buckets of each window's features (with repeats), in word order."""
    ws = words(text)
    if not ws:
        return []
    mask = (1 << bits) - 1
    per_word = [[h & mask for h in word_hashes(ws, i)] for i in range(len(ws))]
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
