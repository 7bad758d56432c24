"""Offline building blocks for tiny models, shared by the tests and the GPU benchmark (no pytest)."""

from __future__ import annotations

from typing import Any


def t5_tokenizer() -> Any:
    """A T5 (sentencepiece-style unigram) tokenizer from a small hand-written vocabulary."""
    from transformers import T5Tokenizer

    words = ["a", "the", "cat", "dog", "walks", "street", "video", "car", "man", "runs"]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += [("\u2581" + c, -3.5) for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += [("\u2581" + w, -1.0) for w in words]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=64)
