"""The core pipeline end to end: real model, real embedded Chroma, real BM25."""

import json

import pytest

from rag.documents.sources import file_article_id
from rag.errors import BadInput, IndexMismatch
from rag.language import rules
from rag.pipeline import Pipeline
from tests.conftest import ROOT, SEED_ID, make_settings

pytestmark = pytest.mark.slow  # the real model, and real servers where a test starts one


@pytest.fixture
def reader(settings, embedder) -> Pipeline:
    """Every best candidate shown (the short-answer threshold at 0), as `rag eval` reads them: for what the
    reader ranks first, apart from whether it is sure enough to show it."""
    return Pipeline(settings.model_copy(update={"short_answer_threshold": 0.0}), embedder=embedder)


@pytest.fixture
def bundled_reader(bundled_index, embedder) -> Pipeline:
    return Pipeline(make_settings(bundled_index, short_answer_threshold=0.0), embedder=embedder)


SEED_TEXT_SENTENCE = (
    "Since then, Harris has met with civil society leaders, announced additional aid of $310 million "
    "for the region, and secured investment commitments from companies included Microsoft ."
)


def test_310_million_answer_with_exact_offsets(bundled, bundled_reader):
    a = bundled.ask("How much aid was announced?")
    assert not a.abstained
    # Evidence first: the headline is the cited sentence unless the short answer is likely right.
    assert a.answer.startswith(SEED_TEXT_SENTENCE + " [1]")
    assert a.short_answer in (None, "$310 million")
    best = bundled_reader.ask("How much aid was announced?")
    assert best.short_answer == "$310 million" and 0.0 < best.short_answer_confidence < 1.0
    c = a.citations[0]
    assert c.article_id == SEED_ID
    assert c.quote == SEED_TEXT_SENTENCE
    text = bundled.get_article(SEED_ID).text
    assert text[c.start : c.end] == c.quote
    assert text.index(SEED_TEXT_SENTENCE) == c.start
    assert c.published == "2023-05-31"
    assert set(a.timings_ms) == {"retrieve", "answer", "total"}


def test_every_marker_resolves_and_every_citation_is_used(bundled):
    import re

    for q in [
        "When did Harris land in Guatemala?",
        "Who is the president of the Migration Policy Institute?",
        "How many regional politicians were labeled as corrupt?",
    ]:
        a = bundled.ask(q)
        assert not a.abstained, q
        markers = {int(m) for m in re.findall(r"\[(\d+)\]", a.answer)}
        assert markers == {c.n for c in a.citations}
        text = bundled.get_article(SEED_ID).text
        assert all(text[c.start : c.end] == c.quote for c in a.citations)


@pytest.mark.parametrize(
    "question",
    ["What is the capital of France?", "Who won the 2022 World Cup final?", "What is the recipe for banana bread?"],
)
def test_off_topic_questions_abstain(bundled, question):
    a = bundled.ask(question)
    assert a.abstained
    assert a.citations == [] and a.short_answer is None
    assert "do not contain" in a.answer
    assert a.passages, "the passages read are still reported"


@pytest.mark.parametrize(
    "question",
    [
        pytest.param(
            "How much aid did Mexico announce for Guatemala?",
            marks=pytest.mark.xfail(
                strict=True,
                reason="near misses are the readers' known weakness: the span reader's best sentence scores 0.25 "
                "against its abstain threshold of 0.084 (the fitted reader's, 0.097 against 0.096); bundled "
                "abstention recall 0.41",
            ),
        ),
        "How many vaccine doses will be shared with Guatemala?",
    ],
)
def test_near_misses_abstain(bundled, question):
    """The article's words, someone else's story: the $310 million was Harris's, for the whole region."""
    a = bundled.ask(question)
    assert a.abstained, (a.answer, a.confidence)


@pytest.mark.parametrize("question", ["How many people live in Honduras?"])
def test_a_count_question_without_a_count_in_the_evidence_abstains(bundled, question):
    """The article gives no count of people in Honduras."""
    a = bundled.ask(question)
    assert a.abstained, (a.answer, a.short_answer, a.confidence)


def test_a_one_article_index_still_answers_with_common_words(bundled):
    # In one article "Harris" and "trip" are in every chunk; their weight comes from general English.
    a = bundled.ask("How long is Harris's trip?")
    assert not a.abstained
    assert "three-day trip" in a.answer


def test_other_model_path_mismatch_is_detected(bundled_index, embedder, tmp_path):
    import shutil

    from rag.encoders.embedder import Embedder

    # A copy of the model with one byte changed in its weights is "another model".
    other = tmp_path / "other-model"
    shutil.copytree(embedder.model_path, other)
    w = other / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 1
    w.write_bytes(bytes(data))
    p = Pipeline(make_settings(bundled_index, embedding_model=str(other)), embedder=Embedder(str(other)))
    with pytest.raises(IndexMismatch, match="weights_hash"):
        p.stats()


def test_bundled_weights_are_verified(tmp_path, monkeypatch):
    import rag.encoders.embedder as embed_mod

    monkeypatch.setattr(embed_mod, "BUNDLED_SHA256", "0" * 64)
    from rag.errors import ModelError

    with pytest.raises(ModelError, match="expected 0000"):
        _ = embed_mod.Embedder().weights_hash


def test_unknown_model_name_fails_without_download(tmp_path):
    from rag.encoders.embedder import Embedder
    from rag.errors import ModelError

    with pytest.raises(ModelError, match="RAG_EMBEDDING_MODEL"):
        _ = Embedder("no-such-org/no-such-model").model_path


def test_bad_questions_are_rejected(bundled):
    with pytest.raises(BadInput, match="empty"):
        bundled.ask("   ")
    with pytest.raises(BadInput, match="limit is 2,000"):
        bundled.ask("why " * 600)
    with pytest.raises(BadInput, match="YYYY-MM-DD"):
        bundled.ask("How much aid?", since="last week")
    with pytest.raises(BadInput, match="k=0: Input should be greater than or equal to 1"):
        bundled.ask("How much aid?", k=0)


def test_date_filters(bundled):
    assert not bundled.ask("How much aid was announced?", since="2023-01-01").abstained
    with pytest.raises(BadInput, match="swap"):
        bundled.ask("How much aid was announced?", since="2024-01-01", until="2023-01-01")
    a = bundled.ask("How much aid was announced?", since="2024-01-01")
    assert a.abstained and a.passages == []
    assert a.notice == (
        "No dated article in the index was published from 2024-01-01. Widen or clear the dates to search everything."
    )


DAM, LEVEE = file_article_id("dam.md"), file_article_id("levee.md")


def test_a_date_range_drops_undated_articles_but_the_time_of_asking_keeps_them(pipeline, reader, tmp_path):
    (tmp_path / "dam.md").write_text(
        "---\ntitle: Dam repair\n---\nThe county spent $4 million repairing the Oakfield dam."
    )
    (tmp_path / "levee.md").write_text(
        "---\ntitle: Levee repair\npublished: 2022-03-01\n---\nThe city spent $9 million repairing the Riverside levee."
    )
    pipeline.index_paths([tmp_path / "dam.md", tmp_path / "levee.md"])
    q = "How much did the county spend repairing the Oakfield dam?"
    asked_today = reader.ask(q, as_of="2022-03-10")
    assert asked_today.short_answer == "$4 million" and {p.article_id for p in asked_today.passages} == {DAM, LEVEE}
    ranged = pipeline.ask(q, until="2022-03-10")
    assert {p.article_id for p in ranged.passages} == {LEVEE}  # both searches, dense and BM25, agree
    assert {p.article_id for p in pipeline.ask(q, as_of="2022-02-01").passages} == {DAM}


def test_which_country_is_answered_with_a_country_and_never_the_dateline(reader, tmp_path):
    (tmp_path / "lanka.md").write_text(
        "---\ntitle: Debt crisis\npublished: 2022-07-05\n---\n"
        "Colombo, Sri Lanka (CNN) Sri Lanka is “bankrupt,” Prime Minister Ranil Wickremesinghe said Tuesday, "
        "as the country suffers its worst financial crisis in decades."
    )
    (tmp_path / "sprite.md").write_text(
        "---\ntitle: New bottles\npublished: 2022-07-27\n---\n"
        "Atlanta (CNN Business) Retiring its green plastic bottles after 60 years is the plan at Sprite, "
        "the company said."
    )
    reader.index_paths([tmp_path])
    assert reader.ask("Which country is now bankrupt, according to its prime minister?").short_answer == "Sri Lanka"
    assert reader.ask("Which beverage is retiring its green plastic bottles?").short_answer == "Sprite"


def test_a_which_phrase_after_a_preamble_or_a_preposition_is_answered_with_a_name(reader, tmp_path):
    (tmp_path / "visit.md").write_text(
        "---\ntitle: The visit\npublished: 2022-08-02\n---\n"
        "(CNN) House Speaker Nancy Pelosi's visit to Taiwan has set off a fierce response from China."
    )
    (tmp_path / "bottles.md").write_text(
        "---\ntitle: New bottles\npublished: 2022-07-27\n---\n"
        "New York (CNN Business) Sprite is retiring its green plastic bottles after more than 60 years."
    )
    reader.index_paths([tmp_path])
    visit = reader.ask("House Speaker Nancy Pelosi made a controversial visit to which area, angering China?")
    assert visit.short_answer == "Taiwan"  # before: "CNN", from the credit
    bottles = reader.ask("After more than 60 years, which popular beverage is getting a new bottle design?")
    assert bottles.short_answer == "Sprite"  # before: "York", from the dateline


def test_a_question_in_an_article_is_never_cited_as_the_answer(pipeline, tmp_path):
    src = tmp_path / "quiz.md"
    src.write_text(
        "---\ntitle: News quiz\npublished: 2022-06-16\n---\n"
        "Which wildly popular show was recently green lit for a new season?\n\n"
        "Netflix said its wildly popular show Squid Game was green lit for a new season on Sunday."
    )
    pipeline.index_paths([src])
    a = pipeline.ask("Which wildly popular show was recently green lit for a new season?")
    assert not a.abstained
    assert [c.quote for c in a.citations] == [
        "Netflix said its wildly popular show Squid Game was green lit for a new season on Sunday."
    ]


def test_follow_up_questions_are_searched_with_the_earlier_question(reader, tmp_path):
    (tmp_path / "harris.md").write_text(
        "---\ntitle: Harris visits Guatemala\npublished: 2021-06-07\n---\n"
        "Vice President Kamala Harris landed in Guatemala on Sunday for talks on migration."
    )
    (tmp_path / "pilot.md").write_text(
        "---\ntitle: Record solo flight ends\npublished: 2021-06-09\n---\n"
        "Pilot Maria Lopez landed in Denver on Thursday after a record solo flight."
    )
    reader.index_paths([tmp_path])
    harris = reader.ask("When did she land?", history=["What did Kamala Harris do in Guatemala?"])
    pilot = reader.ask("When did she land?", history=[{"question": "Which pilot made a record solo flight?"}])
    assert harris.short_answer == "Sunday" and harris.citations[0].article_id == file_article_id("harris.md")
    assert pilot.short_answer == "Thursday" and pilot.citations[0].article_id == file_article_id("pilot.md")
    # A question that does not refer back is searched on its own words.
    q = reader.prepare(
        reader.request("Where did Maria Lopez land?", history=["What did Kamala Harris do in Guatemala?"])
    ).query
    assert q.context == "" and q.search_text == "Where did Maria Lopez land?"
    with pytest.raises(BadInput, match="history"):
        reader.ask("When did she land?", history="not a list")


def test_a_follow_up_about_a_person_named_in_full_is_answered_by_the_surname(bundled_index, embedder):
    """On the bundled article, "When did she land?" after a question naming "Kamala Harris": the article says
    "Harris landed in Guatemala on Sunday". Without the surname-referent rule the fitted reader abstains (the span
    model, which the default reader adds, finds the sentence either way)."""
    earlier = ["What is Kamala Harris's trip meant to achieve?"]
    for reader in ("span", "fitted"):
        pipeline = Pipeline(make_settings(bundled_index, reader=reader), embedder=embedder)
        answer = pipeline.ask("When did she land?", history=earlier)
        assert not answer.abstained and "Harris landed in Guatemala on Sunday" in answer.answer, reader
    with rules.disabled("surname-referent"):
        assert pipeline.ask("When did she land?", history=earlier).abstained


def test_a_question_with_a_preamble_is_answered_from_the_sentence_that_states_it(reader, tmp_path):
    (tmp_path / "prices.md").write_text(
        "---\ntitle: Inflation report\npublished: 2022-07-13\n---\n"
        "Gasoline prices in the U.S. were up nearly 60% over the year, the Labor Department said on Wednesday."
    )
    reader.index_paths([tmp_path])
    a = reader.ask("Despite dropping slightly, how much have gasoline prices increased over the past year?")
    # "Despite" opens the question and is no name (rule "opening-word-names").
    assert not a.abstained and a.short_answer == "60%"


def test_an_answer_does_not_depend_on_what_was_asked_before(bundled_index, embedder):
    """Sentence vectors come from the index, not from a cache filled by earlier questions."""
    questions = ["How much aid was announced?", "When did Harris land in Guatemala?", "Who is Andrew Selee?"]
    fresh = [Pipeline(make_settings(bundled_index), embedder=embedder).ask(q) for q in questions]
    shared = Pipeline(make_settings(bundled_index), embedder=embedder)
    in_turn = [shared.ask(q) for q in reversed(questions)][::-1]
    for a, b in zip(fresh, in_turn):
        assert (a.answer, a.confidence, a.short_answer_confidence, a.citations) == (
            b.answer,
            b.confidence,
            b.short_answer_confidence,
            b.citations,
        )


def test_a_follow_up_is_read_with_the_words_of_the_question_it_points_back_at(bundled_index, embedder):
    """'Where will she go next?' says nothing of Harris or her trip; read with the earlier question's words too, it
    is answered from the sentences about her trip, which name Mexico. Without the referent-in-passage rule it
    abstains. (The sentence that says she "was to fly to Mexico on Tuesday" is not yet the one cited.)"""
    pipeline = Pipeline(make_settings(bundled_index), embedder=embedder)
    earlier = ["What is Kamala Harris's trip meant to achieve?"]
    answer = pipeline.ask("Where will she go next?", history=earlier)
    assert not answer.abstained and any("Mexico" in c.quote for c in answer.citations)
    with rules.disabled("referent-in-passage"):
        assert pipeline.ask("Where will she go next?", history=earlier).abstained


def test_follow_ups_on_the_bundled_article_do_as_well_as_the_questions_spelled_out(bundled_index, embedder):
    """eval/conversations.jsonl's conversations over the bundled article, scored as eval/follow_ups.py scores them:
    the follow-ups, asked with their history, are right at least as often as the spelled-out questions, less 5
    points (the issue's target)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("follow_ups", ROOT / "eval" / "follow_ups.py")
    follow_ups = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(follow_ups)
    conversations = [json.loads(line) for line in follow_ups.CONVERSATIONS.open(encoding="utf-8")]
    bundled = [c for c in conversations if c["set"] == "bundled"]
    assert len(conversations) >= 40 and len(bundled) >= 10
    pipeline = Pipeline(make_settings(bundled_index), embedder=embedder)
    figures = follow_ups.summary([follow_ups.run(pipeline, c) for c in bundled])
    assert figures["follow_up"]["right"] >= figures["spelled"]["right"] - 0.05, figures
    assert figures["follow_up"]["right"] >= 0.8, figures
