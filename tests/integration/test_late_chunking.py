"""Sentence vectors pooled from a chunk's own encoder pass, with the real model."""

from __future__ import annotations

import numpy as np
import pytest

from rag.encoders.embedder import LATE_CHUNK_BATCH
from rag.encoders.worker import shared_worker

SENTENCES = [
    "The port of Santos reopened on Monday after a strike.",
    "Dock workers won a 7% raise.",
    "Ukraine received $310 million in aid.",
    "The council approved the budget.",
    "Rain is expected all week.",
    "Shares fell 3% in early trading.",
]


@pytest.mark.slow
def test_each_text_and_span_gets_its_own_vector_whatever_the_batch_order(embedder):
    # Lengths that vary, in no order, over more than one batch: the pass sorts them by length inside.
    rng = np.random.default_rng(5)
    texts, spans = [], []
    for i in range(LATE_CHUNK_BATCH + 9):
        picked = [SENTENCES[j] for j in rng.permutation(len(SENTENCES))[: 1 + i % len(SENTENCES)]]
        text, starts = "", []
        for s in picked:
            starts.append(len(text))
            text += s + " "
        texts.append(text.strip())
        spans.append([(a, a + len(s)) for a, s in zip(starts, picked)])
    vectors, pooled = embedder.embed_with_spans(texts, spans)
    alone = embedder.embed_batch(texts)
    assert np.einsum("ij,ij->i", vectors, alone).min() > 0.99
    for i in range(0, len(texts), 7):  # each as if it had been encoded alone
        vector, rows = embedder.embed_with_spans([texts[i]], [spans[i]])
        assert pooled[i].shape == (len(spans[i]), embedder.dimension)
        assert float(vector[0] @ vectors[i]) > 0.999
        assert np.einsum("ij,ij->i", rows[0], pooled[i]).min() > 0.999, texts[i]
    # A one-sentence text's span is the whole text but for its special tokens: nearest to that text's vector.
    singles = [(t, rows[0]) for t, sp, rows in zip(texts, spans, pooled) if len(sp) == 1]
    assert len({t for t, _ in singles}) > 3
    for text, row in singles:
        nearest = max(range(len(texts)), key=lambda j: float(vectors[j] @ row))
        assert texts[nearest] == text


@pytest.mark.slow
def test_batches_are_padded_to_shape_buckets_without_changing_vectors(embedder):
    from rag.encoders.embedder import PAD_MULTIPLE

    model = embedder._load()
    assert model[0].processing_kwargs["text"]["pad_to_multiple_of"] == PAD_MULTIPLE
    assert model.tokenize(["Dock workers won a 7% raise."])["input_ids"].shape[1] % PAD_MULTIPLE == 0
    texts = [" ".join(SENTENCES[: 1 + i % len(SENTENCES)]) for i in range(12)]
    # The model itself, not the question encoder that takes small jobs.
    together = shared_worker().run(embedder._encode, texts, 1)
    alone = np.stack([shared_worker().run(embedder._encode, [t], 1)[0] for t in texts])
    assert np.einsum("ij,ij->i", together, alone).min() > 0.9999


@pytest.mark.slow
def test_an_ingest_reaches_the_model_worker_in_small_background_jobs(embedder, monkeypatch):
    """However large the upload, a question waits behind at most one job of INGEST_JOB texts: the worker runs
    questions' jobs before waiting background ones (tests/unit/test_worker.py)."""
    from rag.encoders.embedder import INGEST_JOB
    from rag.encoders.worker import BACKGROUND

    worker = shared_worker()
    seen = []
    submit = worker.submit

    def spy(fn, *args, priority=0):
        seen.append((fn.__name__, len(args[0]) if args and isinstance(args[0], list) else None, priority))
        return submit(fn, *args, priority=priority)

    monkeypatch.setattr(worker, "submit", spy)
    texts = [f"{SENTENCES[i % len(SENTENCES)]} Item {i}." for i in range(3 * INGEST_JOB + 5)]
    vectors, pooled = embedder.embed_with_spans(texts, [[(0, 10)]] * len(texts))
    assert vectors.shape == (len(texts), embedder.dimension) and len(pooled) == len(texts)
    jobs = [(n, p) for name, n, p in seen if name == "_encode_with_spans"]
    assert len(jobs) == 4 and all(n <= INGEST_JOB and p == BACKGROUND for n, p in jobs)
    seen.clear()
    together = embedder.embed_batch(texts)
    jobs = [(n, p) for name, n, p in seen if name in ("_encode_documents", "_encode")]
    assert len(jobs) == 4 and all(n <= INGEST_JOB and p == BACKGROUND for n, p in jobs)
    assert np.einsum("ij,ij->i", together, vectors).min() > 0.999
    question = embedder.embed_batch(["How much aid was announced?"])
    assert [p for name, _, p in seen if name == "_encode_few"] == [0] and question.shape == (1, embedder.dimension)
