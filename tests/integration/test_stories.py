"""Stories and agreement on a real index (real model, real embedded Chroma): reports of one event are grouped
as they are ingested, retrieval shows one report per story first, each citation lists the story's other reports,
and a different figure for the asked quantity is reported as an update or a conflict, with both cited."""

from __future__ import annotations

import hashlib

import pytest

from rag.cli import format_answer
from rag.pipeline import Pipeline
from rag.types import Article
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

STORM = (
    "BUFFALO, N.Y. - A powerful winter storm buried western New York under more than four feet of snow, stranding "
    "drivers on highways and knocking out power to tens of thousands of homes over the holiday weekend.\n\n"
    "The storm has killed at least {dead} people across the region, officials said, as crews searched cars "
    "and homes for anyone trapped by the drifts.\n\n"
    "Erie County Executive Mark Poloncarz called it the worst storm in the county's history and said a driving "
    "ban would stay in place until the roads were cleared. National Guard troops were sent to help with rescues.\n\n"
    "Forecasters said the lake-effect snow would ease by Tuesday, but warned of flooding as temperatures rise."
)
FIRE = (
    "A fire tore through a chemical plant outside Houston early on {day}, sending a column of black smoke over "
    "the ship channel and forcing nearby schools to keep students indoors.\n\n"
    "The blaze injured {hurt} workers, according to the plant's operator, and firefighters spent six hours "
    "bringing it under control.\n\n"
    "Residents within a mile were told to shelter in place while air monitors checked for benzene, and the "
    "cause of the fire was under investigation by state and federal inspectors."
)
CLIPPER = (
    "CAPE CANAVERAL, Fla. - NASA has set a new date for the launch of its Europa Clipper probe after a hurricane "
    "closed the space center earlier this week.\n\nThe launch is now scheduled for {day}, the agency said, with a "
    "window that opens shortly after noon.\n\nThe spacecraft will take more than five years to reach Jupiter, where "
    "it will study the icy moon Europa and the ocean beneath its crust."
)
TRAIN = (
    "The city council approved a new light rail line on Monday that will link the airport with the downtown "
    "convention center. Construction is expected to begin next spring and take four years, the mayor said, and "
    "the line will have nine stations along a former freight corridor."
)


def article(aid: str, source: str, published: str, title: str, text: str) -> Article:
    return Article(
        id=aid,
        title=title,
        text=text,
        source=source,
        published=published,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        origin="record",
    )


ARTICLES = [
    article("storm-cnn", "CNN", "2022-12-24", "Winter storm buries western New York", STORM.format(dead=12)),
    article(
        "storm-usat",
        "USA TODAY",
        "2022-12-27",
        "Deadly winter storm: western New York digs out",
        STORM.format(dead=15) + "\n\nSchools in the area will stay closed through the week.",
    ),
    article("fire-ap", "AP", "2023-03-02", "Fire at Houston chemical plant", FIRE.format(day="Thursday", hurt=30)),
    article(
        "fire-kprc", "KPRC", "2023-03-02", "Houston plant fire injures workers", FIRE.format(day="Thursday", hurt=34)
    ),
    article("rail", "Metro Daily", "2023-03-01", "Council approves airport rail line", TRAIN),
    article(
        "clip-cnn",
        "CNN",
        "2024-10-08",
        "NASA sets new launch date for Europa Clipper",
        CLIPPER.format(day="October 14"),
    ),
    article(
        "clip-usat",
        "USA TODAY",
        "2024-10-10",
        "Europa Clipper launch moved",
        CLIPPER.format(day="October 16") + "\n\nCrews returned to the pads on Thursday.",
    ),
]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, embedder) -> Pipeline:
    p = Pipeline(make_settings(tmp_path_factory.mktemp("stories") / "index"), embedder=embedder)
    assert p.index_articles(ARTICLES).added == len(ARTICLES)
    return p


def stories_of(p: Pipeline) -> dict[str, str]:
    with p.index.reading() as view:
        return {a: view.snapshot.articles.story_of(a) for a in view.snapshot.articles.ids()}


def check_citations(p: Pipeline, answer) -> None:
    for c in answer.citations:
        assert p.get_article(c.article_id).text[c.start : c.end] == c.quote
        assert f"[{c.n}]" in answer.answer
    assert "".join(s["text"] for s in answer.segments) == answer.answer


def test_reports_of_one_event_share_a_story_and_others_do_not(pipeline):
    story = stories_of(pipeline)
    assert story["storm-cnn"] == story["storm-usat"] == "storm-cnn"
    assert story["fire-ap"] == story["fire-kprc"] == "fire-ap"
    assert story["rail"] == "rail"
    assert pipeline.get_article("storm-usat").story == "storm-cnn"


def differ(pipeline: Pipeline, question: str, kind: str) -> list[tuple[str, str, str]]:
    """Asks; checks that one quantity differs, of this kind, that each value is in the quote of the citation it names,
    and that the answer says so; returns each value with its source and date, in the order given."""
    answer = pipeline.ask(question)
    assert not answer.abstained
    (entry,) = answer.sources_differ
    assert entry["kind"] == kind
    cited = {c.n: c for c in answer.citations}
    for v in entry["values"]:
        assert v["value"] in cited[v["n"]].quote and cited[v["n"]].source == v["source"]
    assert ("Updated since:" if kind == "update" else "Sources differ:") in answer.answer
    check_citations(pipeline, answer)
    return [(v["value"], v["source"], v["published"]) for v in entry["values"]]


def test_a_later_figure_in_the_same_story_is_an_update_with_both_cited(pipeline):
    assert differ(pipeline, "How many people has the winter storm in western New York killed?", "update") == [
        ("12", "CNN", "2022-12-24"),
        ("15", "USA TODAY", "2022-12-27"),
    ]


def test_eval_counts_a_citation_made_for_sources_differ_apart(pipeline, embedder):
    """`rag eval` asks whether each citation holds the answer; one made only to show another report's figure is
    counted apart, not as padding."""
    from rag.evaluation.runner import _citation_checks

    # The fitted reader cites one storm report in its answer and the other only for its figure (the span reader
    # cites both in its answer here).
    pipeline = Pipeline(pipeline.settings.model_copy(update={"reader": "fitted"}), embedder=embedder)
    apart = 0
    for question, answers in (
        ("How many people has the winter storm in western New York killed?", ["12", "15"]),
        ("How many workers were injured in the Houston chemical plant fire?", ["30", "34"]),
        ("When is the Europa Clipper launch scheduled?", ["October 14", "October 16"]),
    ):
        a = pipeline.ask(question).to_dict()
        answering = {s["n"] for s in a["segments"] if s["n"] and s.get("part") != "sources_differ"}
        shown = [c for c in a["citations"] if c["n"] in answering]
        checks = _citation_checks(pipeline, {"answerable": True, "answers": answers, "evidence": ""}, a)
        assert checks["citations_for_sources_differ"] == len(a["citations"]) - len(shown)
        assert len(checks["citation_precise"]) == len(shown)
        apart += checks["citations_for_sources_differ"]
    assert apart >= 1, "the storm answer cites another report only for its figure"


def test_a_different_figure_on_the_same_day_is_a_conflict(pipeline):
    found = differ(pipeline, "How many workers were injured in the Houston chemical plant fire?", "conflict")
    assert sorted(found) == [("30", "AP", "2023-03-02"), ("34", "KPRC", "2023-03-02")]


def test_a_date_moved_in_a_later_report_is_an_update(pipeline):
    assert differ(pipeline, "When is the Europa Clipper launch scheduled?", "update") == [
        ("October 14", "CNN", "2024-10-08"),
        ("October 16", "USA TODAY", "2024-10-10"),
    ]


def test_agreeing_reports_or_a_question_without_a_figure_say_nothing_differs(pipeline):
    answer = pipeline.ask("How many stations will the new light rail line have?")
    assert answer.sources_differ == []
    answer = pipeline.ask("Who called it the worst storm in the county's history?")
    assert answer.sources_differ == []


def test_each_citation_lists_the_other_reports_of_its_story(pipeline):
    answer = pipeline.ask("Who called it the worst storm in the county's history?")
    first = answer.citations[0]
    other = "storm-usat" if first.article_id == "storm-cnn" else "storm-cnn"
    assert [r["article_id"] for r in first.also_reported_by] == [other]
    (record,) = first.also_reported_by
    assert set(record) == {"article_id", "title", "source", "url", "published"}
    # `rag ask` says it once, under the cited article.
    printed = format_answer(answer.to_dict())
    assert printed.count(f"also reported by: {record['source']} {record['published']} ({other})") == 1


def test_the_article_page_links_the_other_reports_of_its_story(pipeline):
    from fastapi.testclient import TestClient

    from web.app import create_app

    with TestClient(create_app(pipeline=pipeline)) as client:
        page = client.get("/articles/storm-cnn").text
        assert "Also reported by:" in page and '/articles/storm-usat"' in page and "2022-12-27" in page
        assert "Also reported by:" not in client.get("/articles/rail").text


def test_passages_come_from_different_stories_first(pipeline):
    answer = pipeline.ask("What happened during the winter storm in western New York?", k=2)
    articles = [p.article_id for p in answer.passages]
    assert len({"storm-cnn", "storm-usat"} & set(articles)) == 1, articles


def test_an_index_made_before_stories_gets_them_at_its_next_ingest(tmp_path, embedder):
    p = Pipeline(make_settings(tmp_path / "index"), embedder=embedder)
    p.index_articles(ARTICLES[:2])
    # As an older version of the index stored them: no story, no signature.
    p.index.store.articles.update(ids=["storm-cnn", "storm-usat"], metadatas=[{"story": "", "signature": ""}] * 2)
    p.index.rebuild_snapshot()
    assert stories_of(p) == {"storm-cnn": "storm-cnn", "storm-usat": "storm-usat"}
    p.index_articles([a for a in ARTICLES if a.id == "rail"])
    assert stories_of(p) == {"storm-cnn": "storm-cnn", "storm-usat": "storm-cnn", "rail": "rail"}
