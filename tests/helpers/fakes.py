"""A deterministic stand-in for the encoder, for tests of logic and contracts that do not need meaning.

Behind the Encoder protocol (rag.encoders.protocol): a text's vector is the normalised sum of one fixed random
vector per word, so texts that share words are near each other, and the same text always gives the same
vector. It loads nothing and takes microseconds.
"""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import Future

import numpy as np

from rag.encoders.protocol import EncoderStatus

DIMENSION = 64


class FakeEmbedder:
    model_id = "fake-bag-of-words"
    weights_hash = "0" * 64
    dimension = DIMENSION
    status = EncoderStatus(loaded=True, questions="fake", documents="")

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}
        self.calls = 0

    def warm_up(self) -> None:
        pass

    def _word(self, w: str) -> np.ndarray:
        v = self._cache.get(w)
        if v is None:
            seed = int.from_bytes(hashlib.sha256(w.encode()).digest()[:8], "little")
            v = self._cache[w] = np.random.default_rng(seed).normal(size=DIMENSION).astype(np.float32)
        return v

    def _vector(self, text: str) -> np.ndarray:
        words = re.findall(r"\w+", text.lower()) or ["<empty>"]
        v = np.sum([self._word(w) for w in words], axis=0)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def embed_batch(self, texts) -> np.ndarray:
        self.calls += 1
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, DIMENSION), np.float32)

    def release_ingest_buffers(self) -> None:
        pass

    def submit_batch(self, texts) -> Future:
        done: Future = Future()
        done.set_result(self.embed_batch(texts))
        return done

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_batch([text])[0]

    def embed_with_spans(self, texts, spans):
        return self.embed_batch(list(texts)), [
            np.stack([self._vector(t[a:b]) for a, b in s]) if s else np.zeros((0, DIMENSION), np.float32)
            for t, s in zip(texts, spans)
        ]
