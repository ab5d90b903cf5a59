"""`rag eval` as a gate: the fixed question set against the bundled index, and the dataset path."""

import json
import os
import subprocess
import sys

import pytest

from rag.evaluation.metrics import best_choice, contains, exact_match, normalize_answer, token_f1
from rag.evaluation.runner import load_questions
from tests.conftest import ROOT, dataset_or_skip

pytestmark = pytest.mark.slow

# Floors only go up. Set from measured values; never lower one to make a change pass.
# The fitted reader's answer floors were re-based once, on purpose, when hand rules tuned on this very question set
# gave way to scoring fitted on disjoint news questions (issue 11; the held-out RealTime QA and XQuAD figures rose):
# gold in the cited sentences 1.0 -> 0.95, abstention recall 0.66 -> 0.5 and precision 1.0 -> 0.85, citation
# precision 0.97 -> 0.67 (up to three sentences are cited now, where one was). The span reader, the default, has
# floors of its own, from its first measurement; citation precision 0.8 is issue 29's target for citations that hold
# the answer or its evidence. Its abstention recall (5 of the 12 unanswerable questions) is under the fitted
# reader's (6), each of its abstentions right. They go up from here.
SHARED_FLOORS = {
    "retrieval_hit@5": 1.0,
    "citation_offset_validity": 1.0,
    "citation_markers_resolve": 1.0,
}
FLOORS = {
    "span": {
        **SHARED_FLOORS,
        "answer_contained_answer": 0.975,
        "abstention_recall": 0.41,
        "abstention_precision": 1.0,
        "citation_precision": 0.8,
        "false_abstention_rate_at_most": 0.0,
    },
    "fitted": {
        **SHARED_FLOORS,
        "answer_contained_answer": 0.95,
        "abstention_recall": 0.5,
        "abstention_precision": 0.85,
        "citation_precision": 0.67,
        "false_abstention_rate_at_most": 0.025,
    },
}


def run_eval(args, index_dir, out, **settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["RAG_INDEX_DIR"] = str(index_dir)
    env.update(settings)
    r = subprocess.run(
        [sys.executable, "-m", "rag.cli", "eval", *args, "--out", str(out), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


@pytest.mark.parametrize("reader", ["span", "fitted"])
def test_fixed_question_set_meets_the_floors(bundled_index, tmp_path, reader):
    """The default reader (span) with no setting, and the fitted reader alone, each against its floors."""
    out = tmp_path / "out"
    settings = {} if reader == "span" else {"RAG_READER": reader}
    metrics = run_eval(["--questions", str(ROOT / "eval" / "questions.jsonl")], bundled_index, out, **settings)
    for key, floor in FLOORS[reader].items():
        if key.endswith("_at_most"):
            key = key.removesuffix("_at_most")
            assert metrics[key] is not None and metrics[key] <= floor, (
                f"{key} = {metrics[key]} is above its cap {floor}"
            )
        else:
            assert metrics[key] is not None and metrics[key] >= floor, (
                f"{key} = {metrics[key]} is below its floor {floor}"
            )
    assert metrics["questions"] >= 48 and metrics["unanswerable"] >= 8
    for name in ("metrics.json", "results.jsonl", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "metrics.json").read_text()) == metrics
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == metrics["questions"]
    assert all("retrieved_article_ids" in r and "answer" in r for r in rows)
    html = (out / "report.html").read_text()
    assert "<svg" in html and "Gold article in top 5" in html and "<script" not in html


def test_eval_is_deterministic(bundled_index, tmp_path):
    a = run_eval(
        ["--questions", str(ROOT / "eval" / "questions.jsonl"), "--limit", "12"], bundled_index, tmp_path / "a"
    )
    b = run_eval(
        ["--questions", str(ROOT / "eval" / "questions.jsonl"), "--limit", "12"], bundled_index, tmp_path / "b"
    )
    for m in (a, b):
        for k in [k for k in m if k.startswith("latency") or k.endswith("seconds")]:
            m.pop(k)
        m.pop("questions_file")
    assert a == b


def test_dataset_path_on_an_xquad_slice(tmp_path):
    dataset = dataset_or_skip("xquad-en-squad11-dev")
    metrics = run_eval(["--dataset", str(dataset), "--limit", "20"], tmp_path / "ix", tmp_path / "out")
    assert metrics["questions"] == 20
    assert metrics["index_added"] == 240
    assert metrics["retrieval_hit@5"] >= 0.8
    assert metrics["citation_offset_validity"] == 1.0
    assert metrics["answer_contained_answer"] >= 0.8  # the gold answer is in the cited sentences
    assert metrics["answer_f1_candidate"] > 0.5  # the reader's best short answer, shown or not (0.54 measured)
    # Citations that hold the answer or its evidence: 0.61 measured on these 20 (the fitted reader alone: 0.48).
    assert metrics["citation_precision"] >= 0.6
    # A second run reuses the cached scratch index: nothing is embedded again.
    again = run_eval(["--dataset", str(dataset), "--limit", "20"], tmp_path / "ix", tmp_path / "out2")
    assert again["index_added"] == 0 and again["index_chunks_added"] == 0


def test_questions_file_must_be_valid(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "ok?"}\n{oops\n')
    from rag.errors import BadInput

    with pytest.raises(BadInput, match="q.jsonl:2: malformed JSON"):
        load_questions(bad)


def test_squad_style_scoring():
    assert normalize_answer("The  U.S. Army!") == "us army"
    assert exact_match("the $310 million", ["$310 million"]) == 1.0
    assert token_f1("310 million dollars", ["$310 million"]) == pytest.approx(0.8)
    assert contains("aid of $310 million for", ["$310 Million"])
    assert not contains("aid of $3100 million", ["310 million"])
    assert best_choice("Netflix said “Squid Game” returns", ["Game of Thrones", "“Squid Game”", "Friends"]) == 1
    assert best_choice("", ["a", "b"]) is None
