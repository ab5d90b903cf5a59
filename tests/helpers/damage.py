"""Damage a store the way an interrupted write leaves it, for the tests that find and repair it."""

from __future__ import annotations

import numpy as np


def add_orphan_chunk(store, chunk_id: str, vector: np.ndarray, article_id: str = "ghost") -> None:
    """A chunk of ``article_id`` written straight to Chroma with no article record: a half-written article."""
    store.chunks.add(
        ids=[chunk_id],
        embeddings=[np.asarray(vector, dtype=np.float32).ravel()],
        documents=[article_id],
        metadatas=[
            {
                "article_id": article_id,
                "ordinal": 0,
                "start": 0,
                "end": 5,
                "title": "",
                "published": "",
                "published_ord": 0,
            }
        ],
    )
