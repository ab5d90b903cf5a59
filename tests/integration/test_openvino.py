"""Documents encoded by the model's export on OpenVINO: the model's vectors, without torch."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import numpy as np
import pytest

from rag.encoders import embedder as embed_module
from rag.encoders import export
from rag.encoders.embedder import LATE_CHUNK_BATCH, Embedder, cpu_has_bf16
from rag.encoders.openvino import OpenVinoEncoder
from tests.conftest import make_settings, run_in_own_home, wait_until

pytestmark = pytest.mark.slow  # the real model

SENTENCES = [
    "The port of Santos reopened on Monday after a strike.",
    "Dock workers won a 7% raise.",
    "Ukraine received $310 million in aid.",
    "  The council approved the budget.  ",
    "São Paulo and Zürich: “quotes” — and 東京.",
    "Shares fell 3% in early trading.",
]


def texts_and_spans(count: int) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """Texts of varied lengths (one past the token limit), each with a span per sentence, in no order."""
    rng = np.random.default_rng(11)
    texts, spans = [], []
    for i in range(count):
        picked = [SENTENCES[j].strip() for j in rng.permutation(len(SENTENCES))[: 1 + i % len(SENTENCES)]]
        if i == 3:
            picked = picked * 60
        text, starts = "  " if i % 4 == 0 else "", []
        for s in picked:
            starts.append(len(text))
            text += s + " "
        texts.append(text)
        spans.append([(a, a + len(s)) for a, s in zip(starts, picked)])
    return texts, spans


def lowest_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


@pytest.fixture(scope="module")
def reference():
    """The model itself in float32: what every encoder is held to."""
    return Embedder(ingest_encoder="torch", query_encoder="torch", dtype="float32")


@pytest.mark.parametrize("dtype", ["float32", "auto"])
def test_documents_and_their_spans_match_the_model(reference, dtype):
    texts, spans = texts_and_spans(LATE_CHUNK_BATCH + 9)
    openvino = Embedder(dtype=dtype)
    vectors, pooled = openvino.embed_with_spans(texts, spans)
    precision = "bf16" if dtype == "auto" and cpu_has_bf16() else "f32"
    assert openvino.status.documents == f"openvino ({precision})", openvino.status
    expected, expected_pooled = reference.embed_with_spans(texts, spans)
    assert reference.status.documents == "torch (RAG_INGEST_ENCODER=torch)"
    # float32 is the same computation; bfloat16 rounds (0.99997 at worst over 699 news chunks here).
    floor = 0.99999 if precision == "f32" else 0.9999
    assert lowest_cosine(vectors, expected) > floor
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for got, want, text_spans in zip(pooled, expected_pooled, spans):
        assert got.shape == want.shape == (len(text_spans), openvino.dimension)
        assert lowest_cosine(got, want) > floor
    # A large job through embed_batch is the same encoder: each text as its own chunk vector.
    assert lowest_cosine(openvino.embed_batch(texts), vectors) > 0.99999


def test_a_text_gets_the_same_vector_in_any_batch(embedder):
    texts, spans = texts_and_spans(20)
    together, pooled = embedder.embed_with_spans(texts, spans)
    for i in (0, 3, 7, 19):
        alone, rows = embedder.embed_with_spans([texts[i]], [spans[i]])
        assert float(alone[0] @ together[i]) > 0.9999
        assert lowest_cosine(rows[0], pooled[i]) > 0.9999


def test_released_buffers_leave_the_encoder_open_and_its_vectors_unchanged(embedder):
    texts, spans = texts_and_spans(20)
    before, pooled = embedder.embed_with_spans(texts, spans)
    encoder = embedder._documents.value
    assert encoder is not None
    embedder.release_ingest_buffers()
    assert embedder._documents.value is encoder, "the encoder stays open; only its buffers go"
    after, pooled_after = embedder.embed_with_spans(texts, spans)
    assert np.array_equal(before, after)
    assert all(np.array_equal(a, b) for a, b in zip(pooled, pooled_after))


def test_when_openvino_cannot_open_documents_use_the_model(caplog, monkeypatch, reference):
    def broken(*args, **kwargs):
        raise RuntimeError("no CPU plugin")

    monkeypatch.setattr(embed_module, "OpenVinoEncoder", broken)
    fresh = Embedder(dtype="float32")
    with caplog.at_level("WARNING"):
        vectors = fresh.embed_batch(SENTENCES)
    assert fresh.status.documents.startswith("torch (") and "no CPU plugin" in fresh.status.documents
    assert "no CPU plugin" in caplog.text
    assert lowest_cosine(vectors, reference.embed_batch(SENTENCES)) > 0.99999


def test_a_compiled_encoder_that_disagrees_with_the_model_is_not_used(caplog, monkeypatch, reference):
    monkeypatch.setattr(export, "MIN_OPEN_COSINE", 1.5)  # no real cosine reaches it
    fresh = Embedder(dtype="float32")
    with caplog.at_level("WARNING"):
        fresh.warm_up_ingest()
        vector = fresh.embed_query(SENTENCES[0])
    assert fresh.status.documents.startswith("torch (") and "disagrees" in fresh.status.documents
    assert fresh.status.questions.startswith("torch (") and "disagrees" in fresh.status.questions
    assert "lowest cosine" in caplog.text
    assert float(vector @ reference.embed_query(SENTENCES[0])) > 0.99999, "the model itself answers instead"


def test_a_process_that_ingests_never_imports_torch_nor_phones_home(embedder, tmp_path):
    embedder.warm_up()  # the export exists in the default cache, as after any first start
    script = (
        "import sys\nfrom rag.pipeline import Pipeline\nfrom rag.config import Settings\n"
        "from rag.types import Article\n"
        f"p = Pipeline(Settings(_env_file=None, index_dir={str(tmp_path / 'index')!r}))\n"
        "p.index_articles([Article(id='dam', title='Dam opens', text='The Itaipu dam opened on Friday. "
        "It cost $19.6 billion to build.')])\n"
        "a = p.ask('How much did the dam cost?')\n"
        "assert '$19.6 billion' in a.answer, a.answer\n"
        "print(p.ingest_encoder)\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'openvino_telemetry') "
        "if sys.modules.get(m) is not None))"
    )
    # OpenVINO's telemetry would write a client id under ~/intel.
    home = tmp_path / "home"
    backend, modules = run_in_own_home(script, home, embedder.cache_dir).strip().splitlines()[-2:]
    assert backend.startswith("openvino"), backend
    assert modules == "[]", modules
    assert not any(home.rglob("*")), sorted(home.rglob("*"))


def test_an_idle_ingest_encoder_is_dropped_and_opened_again():
    fresh = Embedder(ingest_idle_seconds=0.3)
    first = fresh.embed_batch(SENTENCES)  # more texts than a question's job: the ingest encoder
    assert fresh._documents.value is not None
    dropped = weakref.ref(fresh._documents.value)
    assert wait_until(lambda: fresh._documents.value is None), "dropped once idle"
    assert wait_until(lambda: gc.collect() >= 0 and dropped() is None), "nothing keeps a dropped encoder in memory"
    assert fresh.status.documents.startswith("openvino"), "still says what encoded the last ingest"
    again = fresh.embed_batch(SENTENCES)
    assert fresh._documents.value is not None
    assert np.array_equal(first, again), "the encoder opened again gives the same vectors"


def test_the_ingest_encoder_is_not_dropped_while_it_encodes(monkeypatch):
    fresh = Embedder(ingest_idle_seconds=0.1)
    real = OpenVinoEncoder.token_passes

    def slow(self, texts):
        time.sleep(0.8)
        return real(self, texts)

    monkeypatch.setattr(OpenVinoEncoder, "token_passes", slow)
    texts, spans = texts_and_spans(8)
    fresh.embed_with_spans(texts, spans)  # its end arms the idle timer, 0.1 s
    busy = threading.Thread(target=fresh.embed_with_spans, args=(texts, spans))
    busy.start()  # holds the encoder for 0.8 s, well past the timer
    time.sleep(0.5)
    assert fresh._documents.value is not None, "dropped while encoding"
    busy.join()
    assert wait_until(lambda: fresh._documents.value is None), "dropped once the encode ended and the wait passed"


def test_settings_choose_the_ingest_encoder(tmp_path):
    from rag.wiring import build_parts

    parts = build_parts(make_settings(tmp_path / "index", ingest_encoder="torch", ingest_encoder_idle=30))
    assert parts.embedder.ingest_encoder == "torch" and parts.embedder.ingest_idle_seconds == 30
