"""The eval's scoring functions and its report, on hand-made rows. Pure logic."""

import json

from rag.evaluation.metrics import short_answer_right
from rag.evaluation.report import compare, histogram, write_outputs
from rag.evaluation.runner import precision_coverage, summarize


def row(qid, right, abstained=False, shown=True, confidence=0.9, ms=40.0):
    return {
        "id": qid,
        "question": f"q{qid}?",
        "answerable": True,
        "gold_answers": ["x"],
        "gold_article_ids": ["a"],
        "answer": "x [1]",
        "short_answer": "x" if shown else None,
        "short_answer_candidate": "x" if right else "y",
        "short_answer_confidence": confidence,
        "abstained": abstained,
        "confidence": 0.8,
        "citations": [],
        "retrieved_article_ids": ["a"],
        "total_ms": ms,
        "retrieve_ms": ms / 2,
        "answer_ms": ms / 4,
        "gold_rank": 1,
        "hit@1": 1.0,
        "hit@3": 1.0,
        "hit@5": 1.0,
        "hit@10": 1.0,
        "rr@10": 1.0,
        "contained_answer": 1.0,
        "short_right": float(right) if shown else None,
        "candidate_right": float(right),
        "em": float(right),
        "f1": float(right),
        "em_candidate": float(right),
        "f1_candidate": float(right),
        "offsets_valid": [True],
        "markers_resolve": True,
    }


def test_short_answers_are_judged_strictly():
    assert short_answer_right("$310 million", ["$310 million"])
    assert short_answer_right("$310 million for the region", ["$310 million"])
    assert short_answer_right("Squid Game", ["the Squid Game series"])
    assert not short_answer_right("2", ["2 million"]) and not short_answer_right("310", ["$310 million"])
    assert not short_answer_right("Airlines", ["Southwest Airlines"]) and not short_answer_right("", ["x"])


def test_precision_coverage_and_summary():
    rows = [row(1, True, confidence=0.95), row(2, False, confidence=0.4, shown=False), row(3, True, confidence=0.7)]
    m = summarize(rows, 0.5)
    assert m["short_answer_precision"] == 1.0 and round(m["short_answer_coverage"], 3) == 0.667
    curve = dict((t, (p, c)) for t, p, c in precision_coverage(rows))
    assert curve[0.0] == (2 / 3, 1.0) and curve[0.5] == (1.0, 2 / 3) and 0.96 not in curve
    # the same figures at a few round thresholds, for the record
    assert m["short_answer_at_thresholds"]["0.3"] == {"precision": 0.6667, "coverage": 1.0}
    assert m["short_answer_at_thresholds"]["0.7"] == {"precision": 1.0, "coverage": 0.6667}
    assert histogram([10, 20, 30, 400])["bars"][-1]["count"] == 1


def test_a_baseline_shows_changes_and_flipped_questions(tmp_path):
    before = [row(1, True), row(2, True)]
    after = [row(1, True), row(2, False)]
    old = tmp_path / "old"
    write_outputs(old, summarize(before, 0.5), before, {}, precision_coverage(before))
    new = tmp_path / "new"
    write_outputs(new, summarize(after, 0.5), after, {"a": "An article"}, precision_coverage(after), baseline=old)
    diff = compare(summarize(after, 0.5), after, old)
    assert diff["deltas"]["short_answer_precision"] == {"before": 1.0, "change": -0.5, "better": False}
    assert [(f["id"], f["what"], f["better"]) for f in diff["flips"]] == [(2, "short answer right", False)]
    html = (new / "report.html").read_text()
    assert "Short answers right, of those shown" in html and "now wrong" in html and "<svg" in html
    assert "<script" not in html and "q2?" in html
    assert json.loads((new / "metrics.json").read_text())["short_answer_precision"] == 0.5
    assert "| Short answers right, of those shown | 0.5 | 1.0 | -0.5 |" in (new / "report.md").read_text()


def test_a_run_without_shown_short_answers_reads_plainly(tmp_path):
    rows = [row(1, True, shown=False, confidence=0.2), row(2, False, shown=False, confidence=0.1)]
    metrics = {**summarize(rows, 0.5), "ablated": [], "as_of": False}
    write_outputs(tmp_path, metrics, rows, {}, precision_coverage(rows))
    html = (tmp_path / "report.html").read_text()
    assert "no question reached it" in html and "precision None" not in html
    run = html[html.index("<h2>Run</h2>") :]
    assert "None" not in run and "False" not in run and "[]" not in run and "{" not in run
    assert "<td>ablated</td><td>none</td>" in run and "<td>as_of</td><td>no</td>" in run
    assert "target 0.85" in html, "the target line's label is whole, inside the chart"
