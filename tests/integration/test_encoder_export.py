"""The embedding model exported to ONNX: made once, checked against the model, and served on OpenVINO without
torch."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rag.encoders import embedder as embed_module
from rag.encoders.embedder import Embedder
from rag.encoders.export import FORMAT, SPEC_FILE, export_folder, pool, read_export
from tests.conftest import make_settings, run_in_own_home

QUESTIONS = ["How much aid was announced?", "Who visited Guatemala in June 2021?", "  Was it $310 million?  "]


def test_pool_follows_sentence_transformers_modes():
    tokens = np.array([[1.0, 0.0], [3.0, 2.0], [2.0, 4.0]], dtype=np.float32)
    assert pool(tokens, "mean").tolist() == [2.0, 2.0]
    assert pool(tokens, "cls").tolist() == [1.0, 0.0]
    assert pool(tokens, "lasttoken").tolist() == [2.0, 4.0]
    assert pool(tokens, "max").tolist() == [3.0, 4.0]
    assert np.allclose(pool(tokens, "mean_sqrt_len_tokens"), np.array([6.0, 6.0]) / np.sqrt(3))
    assert np.allclose(pool(tokens, "weightedmean"), np.array([1 + 6 + 6, 0 + 4 + 12]) / 6.0)


@pytest.mark.slow
def test_export_matches_the_model_and_is_made_once(tmp_path, embedder, monkeypatch):
    fresh = Embedder(cache_dir=tmp_path / "cache")
    current = export_folder(tmp_path / "cache", fresh.weights_hash)
    older = current.with_name(current.name.replace(f"-v{FORMAT}", "-v1"))
    older.mkdir(parents=True)
    (older / "model.onnx").write_bytes(b"an export in an older layout")
    got = fresh.embed_batch(QUESTIONS)
    assert fresh.status.questions.startswith("openvino ("), fresh.status
    folder = export_folder(tmp_path / "cache", fresh.weights_hash)
    spec = json.loads((folder / SPEC_FILE).read_text())
    assert spec["weights_sha256"] == fresh.weights_hash and spec["min_cosine"] >= 0.9999
    left = [p.name for p in (tmp_path / "cache").iterdir()]
    assert left == [folder.name], "no half-made export, nor one in an older layout, is left"

    reference = Embedder(query_encoder="torch", dtype="float32")
    expected = reference.embed_batch(QUESTIONS)
    assert reference.status.questions == "torch (RAG_QUERY_ENCODER=torch)"
    assert np.min(np.sum(got * expected, axis=1)) > 0.9999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)

    # A second process finds the export and does not make it again.
    monkeypatch.setattr(embed_module, "export", lambda *args: pytest.fail("exported twice"))
    again = Embedder(cache_dir=tmp_path / "cache")
    assert np.array_equal(again.embed_batch(QUESTIONS), got), "the same text gives the same vector"


@pytest.mark.slow
def test_a_damaged_or_foreign_export_is_made_anew(tmp_path, embedder):
    cache = tmp_path / "cache"
    folder = export_folder(cache, embedder.weights_hash)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"not a model")
    (folder / SPEC_FILE).write_text(json.dumps({"weights_sha256": "0" * 64}))
    fresh = Embedder(cache_dir=cache)
    vector = fresh.embed_query(QUESTIONS[0])
    assert fresh.status.questions.startswith("openvino ("), fresh.status
    assert read_export(folder, embedder.weights_hash) is not None
    assert float(vector @ embedder.embed_query(QUESTIONS[0])) > 0.9999


@pytest.mark.slow
def test_a_model_pooling_another_way_exports_too(tmp_path, embedder):
    model = tmp_path / "cls-model"
    shutil.copytree(embedder.model_path, model)
    (model / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": 384, "pooling_mode": "cls"}))
    exported = Embedder(str(model), cache_dir=tmp_path / "cache")
    torch = Embedder(str(model), query_encoder="torch", dtype="float32")
    got, expected = exported.embed_batch(QUESTIONS), torch.embed_batch(QUESTIONS)
    assert exported.status.questions.startswith("openvino ("), exported.status
    assert np.min(np.sum(got * expected, axis=1)) > 0.9999
    # cls pooling really is another vector than the bundled model's mean pooling
    assert np.max(np.sum(got * embedder.embed_batch(QUESTIONS), axis=1)) < 0.99


@pytest.mark.slow
def test_when_the_export_fails_questions_use_the_model(tmp_path, caplog, monkeypatch):
    def broken(*args):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(embed_module, "export", broken)
    fresh = Embedder(cache_dir=tmp_path / "cache")
    with caplog.at_level("WARNING"):
        vector = fresh.embed_query(QUESTIONS[0])
    assert fresh.status.questions.startswith("torch (") and "exporter exploded" in fresh.status.questions
    assert "exporter exploded" in caplog.text
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5


@pytest.mark.slow
def test_a_process_that_only_answers_never_imports_torch_nor_phones_home(bundled_index, embedder, tmp_path):
    embedder.warm_up()  # the export exists in the default cache, as after any first start
    script = (
        "import sys\nfrom rag.pipeline import Pipeline\nfrom rag.config import Settings\n"
        f"p = Pipeline(Settings(_env_file=None, index_dir={str(bundled_index)!r}))\np.warm_up()\n"
        "a = p.ask('How much aid was announced?')\n"
        "assert '$310 million' in a.answer, a.answer\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'onnxruntime') "
        "if m in sys.modules))"
    )
    # OpenVINO's telemetry would write a client id under ~/intel.
    home = tmp_path / "home"
    out = run_in_own_home(script, home, embedder.cache_dir, timeout=120)
    assert out.strip() == "[]", out
    assert not any(home.rglob("*")), sorted(home.rglob("*"))


def test_settings_choose_the_question_encoder(tmp_path):
    from rag.wiring import build_parts

    parts = build_parts(make_settings(tmp_path / "index", query_encoder="torch", encoder_cache=tmp_path / "c"))
    assert parts.embedder.query_encoder == "torch" and parts.embedder.cache_dir == tmp_path / "c"
