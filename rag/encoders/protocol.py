"""The Encoder seam: what the pipeline, the ingester and the index ask of an embedding model.

`rag.encoders.embedder.Embedder` is the one implementation (the model's export on OpenVINO, torch as the
fallback); tests of pure logic use a deterministic fake behind the same protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class EncoderStatus:
    """What encodes in this process, for `/healthz` and the log."""

    loaded: bool  # the question encoder is ready
    questions: str  # e.g. "openvino (bf16)", or "torch (why)"; "" before the first question
    documents: str  # the same for an ingest's documents; "" before the first ingest


class Encoder(Protocol):
    model_id: str  # with the weights' hash and the dimension, what an index's manifest records
    weights_hash: str
    dimension: int

    @property
    def status(self) -> EncoderStatus: ...

    def warm_up(self) -> None:
        """Make the question encoder ready."""

    def warm_up_ingest(self) -> None:
        """Make the document encoder ready."""

    def embed_query(self, text: str) -> np.ndarray:
        """One question's unit vector."""

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> (len(texts), dimension) unit float32 rows."""

    def submit_batch(self, texts: Sequence[str]) -> Future:
        """`embed_batch`, started: the Future's result is the array."""

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text's vector, and a vector for each character span of it, from one pass."""

    def release_ingest_buffers(self) -> None:
        """Give back what an ingest's batches left allocated."""
