"""The trained span reader: its decoding (pure logic, synthetic logits), and the shipped model itself, exported to
ONNX and read with OpenVINO over a real index: the flagship question, and exact offsets on hostile text."""

from __future__ import annotations

import numpy as np
import pytest

from rag.answer.readers.span import MAX_ANSWER_TOKENS, SpanReader, Window, score_sentences
from rag.answer.reading import SentenceCandidate
from rag.pipeline import Pipeline
from rag.types import Chunk, Hit
from tests.conftest import make_settings

QUESTION = "How much aid was announced?"


def hit(article_id="a", start=0, text="x" * 200):
    return Hit(Chunk(f"{article_id}-0", article_id, 0, start, start + len(text), text), 1.0)


def sentence(start, end, article_id="a"):
    return SentenceCandidate(1, hit(article_id), start, end, "")


def test_the_best_span_stays_inside_its_sentence_and_within_the_answer_length():
    # Ten context tokens, at article offsets 100, 110, ...: tokens 1-4 are sentence A, 5-9 sentence B.
    tokens = np.arange(10)
    window = Window(0, list(range(12)), [0] * 12, tokens + 2, 100 + 10 * tokens, 105 + 10 * tokens)
    starts = np.full((1, 12), -5.0)
    ends = np.full((1, 12), -5.0)
    starts[0, 0] = ends[0, 0] = 0.0  # no answer: 0
    starts[0, 2 + 3], ends[0, 2 + 6] = 4.0, 4.0  # the best pair crosses from A into B: never a span
    starts[0, 2 + 1], ends[0, 2 + 2] = 3.0, 2.0  # the best inside A
    starts[0, 2 + 7], ends[0, 2 + 9] = 1.0, 1.5  # the best inside B
    a, b = sentence(110, 145), sentence(150, 200)
    scores, total = score_sentences([window], starts, ends, [a, b], [hit()])
    assert (scores[0].start, scores[0].end, scores[0].tokens) == (110, 125, 2)
    assert (scores[1].start, scores[1].end) == (170, 195)
    assert scores[0].best == pytest.approx(5.0) and scores[1].best == pytest.approx(2.5)
    assert scores[0].null == 0.0 and total > scores[0].mass > scores[0].best


def test_a_span_is_never_longer_than_the_answer_limit():
    # One sentence of 40 tokens; the highest start is token 0 and the highest end token 35: too far apart.
    tokens = np.arange(40)
    window = Window(0, list(range(42)), [0] * 42, tokens + 2, 10 * tokens, 10 * tokens + 5)
    starts = np.zeros((1, 42))
    ends = np.zeros((1, 42))
    starts[0, 2], ends[0, 2 + 35], ends[0, 2 + 3] = 9.0, 9.0, 1.0
    scores, _ = score_sentences([window], starts, ends, [sentence(0, 400)], [hit()])
    assert scores[0].tokens <= MAX_ANSWER_TOKENS and (scores[0].start, scores[0].end) == (0, 35)


def test_a_token_outside_every_sentence_is_never_part_of_a_span():
    tokens = np.arange(4)
    window = Window(0, list(range(6)), [0] * 6, tokens + 2, np.array([0, 20, 40, 60]), np.array([5, 25, 45, 65]))
    starts = np.zeros((1, 6))
    ends = np.zeros((1, 6))
    starts[0, 2 + 1] = ends[0, 2 + 1] = 9.0  # a token between the two sentences
    scores, _ = score_sentences([window], starts, ends, [sentence(0, 10), sentence(40, 70)], [hit()])
    assert all(not (s.start <= 20 < s.end) for s in scores.values())


def test_a_span_never_starts_inside_a_dateline():
    # One sentence, "ATLANTA (CNN) Sprite ...": its first two tokens are the dateline (content_start 14).
    tokens = np.arange(5)
    window = Window(0, list(range(7)), [0] * 7, tokens + 2, np.array([0, 8, 14, 21, 30]), np.array([7, 13, 20, 29, 35]))
    starts = np.zeros((1, 7))
    ends = np.zeros((1, 7))
    starts[0, 2], ends[0, 2 + 2] = 9.0, 9.0  # the model's favourite: the dateline through "Sprite"
    starts[0, 2 + 2], ends[0, 2 + 2] = 3.0, 3.0
    dated = SentenceCandidate(1, hit(), 0, 35, "", content_start=14)
    scores, _ = score_sentences([window], starts, ends, [dated], [hit()])
    assert (scores[0].start, scores[0].end) == (14, 20)


@pytest.fixture(scope="module")
def span_pipeline(tmp_path_factory, embedder):
    from tests.conftest import BUNDLED

    index = tmp_path_factory.mktemp("span") / "index"
    p = Pipeline(make_settings(index, reader="span", short_answer_threshold=0.0), embedder=embedder)
    assert isinstance(p.parts.reader, SpanReader)
    assert p.index_paths([BUNDLED]).added >= 1
    return p


@pytest.mark.slow
def test_the_shipped_readers_best_answer_to_the_flagship_question_is_right_and_cited(span_pipeline):
    """Its best candidate, shown here whatever its probability (the threshold is 0 in this pipeline): the
    calibrated threshold does not yet let it lead in bold (docs/READER.md)."""
    from fastapi.testclient import TestClient

    from web.app import create_app

    a = span_pipeline.ask(QUESTION)
    assert a.short_answer == "$310 million" and not a.abstained
    assert "$310 million" in a.citations[0].quote and a.short_answer_confidence > 0
    assert span_pipeline.reader == "span, in this process"
    with TestClient(create_app(pipeline=span_pipeline)) as client:
        page = client.post("/", data={"question": QUESTION}).text
    assert "<strong>$310 million</strong>" in page


HOSTILE = (
    "Zoë Ångström, café owner in Reykjavík, said the fund—worth ₤4.5 million—was “announced” on 3 March 2024. "
    "The grant of 🇺🇦 $310 million [2] came from the ministry. "
    "北京 officials said 12,500 households would get aid. "
    "Her cousin, Đorđe, said the payment of $7\u200b billion was a mistake. "
    "A second payment of e\u0301 200 euros (about $215) followed on Tuesday."
)


@pytest.mark.slow
def test_offsets_are_exact_on_hostile_text(tmp_path, embedder):
    p = Pipeline(make_settings(tmp_path / "index", reader="span"), embedder=embedder)
    p.index_articles(
        [
            __import__("rag.types", fromlist=["Article"]).Article(
                id="hostile", title="Aid — “grants” & ₤ 🇺🇦", text=HOSTILE, published="2024-03-04"
            )
        ]
    )
    reader = p.parts.reader
    questions = [
        "How much was the grant?",
        "Who owns a café?",
        "How many households would get aid?",
        "How much was the payment?",
        "When was it announced?",
        "Which city are the officials from?",
    ]
    seen = 0
    for q in questions:
        prepared = p.prepare(p.request(q))
        sentences, spans = reader.candidates(prepared.analysis, prepared.evidence)
        text = prepared.evidence.articles["hostile"].text
        for c in sentences:
            assert text[c.start : c.end] == c.text
        for s in spans:
            seen += 1
            assert text[s.start : s.end] == s.text and s.text == s.text.strip() and s.text
            assert s.sentence.start <= s.start < s.end <= s.sentence.end
        answer = p.ask(q)
        for c in answer.citations:
            assert text[c.start : c.end] == c.quote
        if answer.short_answer:
            assert answer.short_answer in " ".join(c.quote for c in answer.citations)
    assert seen >= len(questions)


@pytest.mark.slow
def test_each_compile_of_the_export_is_checked_against_the_models_logits(span_pipeline, tmp_path):
    """The export runs in bfloat16 where the CPU has it, and in float32: each compile must give torch's logits on the
    probe windows kept with the export, within rounding; one that does not is refused with a way out."""
    import shutil

    from rag.answer.readers.span import MAX_OPEN_LOGIT_GAP, PROBES_FILE, QAModel
    from rag.errors import ModelError

    model = span_pipeline.parts.reader.model
    for bfloat16 in (False, True):
        QAModel(model.base_dir, model.base_sha256, model.cache_dir, threads=1, bfloat16=bfloat16)._open(model.folder)
    broken = tmp_path / "reader"
    shutil.copytree(model.folder, broken)
    with np.load(broken / PROBES_FILE) as probes:
        altered = {k: probes[k] for k in probes.files}
    altered["start"] = altered["start"] + 2 * MAX_OPEN_LOGIT_GAP
    np.savez(broken / PROBES_FILE, **altered)
    with pytest.raises(ModelError, match="differ from the model's .* Delete"):
        QAModel(model.base_dir, model.base_sha256, model.cache_dir, threads=1)._open(broken)
