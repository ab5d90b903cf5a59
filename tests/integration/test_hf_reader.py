"""The reader around a user's own extractive-QA model, on a tiny model built here (random weights from a small
config, saved to a temp folder, so nothing is downloaded): loading, the hash check, offsets, and no-answer."""

import shutil

import numpy as np
import pytest

from rag.answer.question import analyse
from rag.answer.readers.hf_qa import ExtractiveQAReader
from rag.answer.reading import Evidence
from rag.encoders.embedder import bundled_model_path
from rag.encoders.vectors import SentenceVectors
from rag.errors import ModelError
from rag.hashing import file_sha256
from rag.index.lexical import Analyzer
from rag.types import Article, Chunk, Hit

pytestmark = pytest.mark.slow  # builds and runs a (tiny) transformer

TEXT = "Harris announced aid of $310 million for the region. She landed in Guatemala on Sunday."
WANTED = "310"


def tiny_model(folder, favour: str | None):
    """A BERT question-answering model with no layers: its outputs are the input embeddings, so the answer is
    rigged through them. ``favour`` is the token it answers with; None makes it answer "no answer"."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    source = bundled_model_path()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).exists():
            shutil.copy(source / name, folder / name)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=0,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    model = BertForQuestionAnswering(config).eval()
    with torch.no_grad():
        emb = model.bert.embeddings
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        emb.word_embeddings.weight.normal_(0, 0.01)
        marked = tokenizer.convert_tokens_to_ids(favour) if favour else tokenizer.cls_token_id
        emb.word_embeddings.weight[marked, 0] = 10.0
        model.qa_outputs.weight.zero_()
        model.qa_outputs.weight[:, 0] = 5.0
        model.qa_outputs.bias.zero_()
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def evidence():
    article = Article("a1", "Aid", TEXT)
    chunk = Chunk("a1:0", "a1", 0, 0, len(TEXT), TEXT, "Aid")
    spans = [(0, 52), (53, len(TEXT))]
    sentences = SentenceVectors.quantize(spans, np.ones((2, 4), dtype=np.float32) / 2)
    return Evidence([Hit(chunk, 1.0)], {"a1": article}, {"a1:0": sentences}, np.zeros(4, dtype=np.float32))


def question(text):
    return analyse(text, Analyzer(), lambda t: 1.0)


def test_loads_offline_checks_its_hash_and_maps_spans_to_exact_offsets(tmp_path):
    folder = tiny_model(tmp_path, WANTED)
    weights = folder / "model.safetensors"
    reader = ExtractiveQAReader(folder, sha256=file_sha256(weights))
    reading = reader.read(question("How much aid was announced?"), evidence())
    best = reading.spans[0]
    assert best.text == WANTED and TEXT[best.start : best.end] == best.text
    assert best.sentence.text == TEXT[0:52] and best.sentence.start == 0
    assert reading.no_answer_probability < 0.5 and best.probability > 0.5
    with pytest.raises(ModelError, match="sha256"):
        ExtractiveQAReader(folder, sha256="0" * 64).warm_up()
    with pytest.raises(ModelError, match="is not a folder"):
        ExtractiveQAReader(tmp_path / "nowhere").warm_up()


def test_no_answer_feeds_abstention(tmp_path):
    from rag.answer.decide import decide

    reader = ExtractiveQAReader(tiny_model(tmp_path, None))
    reading = reader.read(question("Who won the election?"), evidence())
    assert reading.no_answer_probability > 0.9
    assert decide(reading, reader.thresholds).abstain


def test_the_pipeline_reads_with_it_when_the_setting_names_it(tmp_path, fake_embedder):
    from rag.pipeline import Pipeline
    from tests.conftest import BUNDLED, SEED_ID, make_settings

    folder = tiny_model(tmp_path / "model", WANTED) if (tmp_path / "model").mkdir() is None else None
    p = Pipeline(make_settings(tmp_path / "ix", reader_model=str(folder)), embedder=fake_embedder)
    p.index_paths([BUNDLED])
    a = p.ask("How much aid was announced?")
    assert p.parts.reader.name == "extractive-qa"
    assert not a.abstained and "$310 million" in a.citations[0].quote
    assert a.short_answer == WANTED and a.citations[0].article_id == SEED_ID
