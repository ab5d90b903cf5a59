"""Runs a question set through the Pipeline's public API and scores each question.

A question line: {"id", "question", "answers": [...], "article_ids" or "doc_ids": [...], "answerable"?: bool
(default true), "evidence"?: str, "choices"?: [...], "answer_index"?: [...], "question_date"?: YYYY-MM-DD}.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.documents.ingester import Progress
from rag.documents.parse import read_path
from rag.errors import BadInput, NotFound
from rag.evaluation.metrics import (
    best_choice,
    contains,
    exact_match,
    normalize_answer,
    percentile,
    short_answer_right,
    token_f1,
)
from rag.index.chroma import SCHEMA_VERSION
from rag.types import Article

KS = (1, 3, 5, 10)


def load_questions(path: Path) -> list[dict[str, Any]]:
    qs = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"Cannot read questions file {path}: {e}") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInput(f"{path}:{n}: malformed JSON ({e.msg}); fix the line and run again.") from e
        if not isinstance(q, dict) or not isinstance(q.get("question"), str):
            raise BadInput(f"{path}:{n}: each line needs a 'question' string.")
        q.setdefault("id", str(n))
        q["article_ids"] = q.get("article_ids") or q.get("doc_ids") or []
        q["answers"] = q.get("answers") or []
        q["answerable"] = bool(q.get("answerable", True))
        qs.append(q)
    if not qs:
        raise BadInput(f"{path} holds no questions.")
    return qs


def evaluate_question(pipeline, q: dict[str, Any], short_threshold: float, use_as_of: bool = False) -> dict[str, Any]:
    """One question's row. The pipeline shows every short answer (threshold 0) so the precision-coverage curve
    can be drawn; ``short_threshold`` is the one the product uses, and decides what counts as shown."""
    answer, ranking = pipeline.ask_ranked(q["question"], as_of=q.get("question_date") if use_as_of else None)
    a = answer.to_dict()
    gold_ids, golds = set(q["article_ids"]), q["answers"]
    candidate = a["short_answer"]
    shown = candidate if candidate and (a["short_answer_confidence"] or 0) >= short_threshold else None
    row: dict[str, Any] = {
        "id": q["id"],
        "question": q["question"],
        "answerable": q["answerable"],
        "gold_answers": golds,
        "gold_article_ids": sorted(gold_ids),
        "answer": a["answer"],
        "short_answer": shown,
        "short_answer_candidate": candidate,
        "short_answer_confidence": a["short_answer_confidence"],
        "abstained": a["abstained"],
        "confidence": a["confidence"],
        "citations": a["citations"],
        "retrieved_article_ids": ranking[:10],
        "total_ms": a["timings_ms"].get("total", 0.0),
        "retrieve_ms": a["timings_ms"].get("retrieve", 0.0),
        "answer_ms": a["timings_ms"].get("answer", 0.0),
    }
    if gold_ids:
        rank = next((i for i, aid in enumerate(ranking[:10], 1) if aid in gold_ids), None)
        row["gold_rank"] = rank
        for k in KS:
            row[f"hit@{k}"] = float(rank is not None and rank <= k)
        row["rr@10"] = 1.0 / rank if rank else 0.0
    if q["answerable"] and golds:
        answer_text = "" if a["abstained"] else a["answer"]
        row["contained_answer"] = float(contains(answer_text, golds))
        row["short_right"] = float(short_answer_right(shown, golds)) if shown else None
        row["candidate_right"] = float(short_answer_right(candidate, golds)) if candidate else 0.0
        # Of the short answers shown only: none shown is no figure, not a score of 0.
        row["em"] = exact_match(shown, golds) if shown else None
        row["f1"] = token_f1(shown, golds) if shown else None
        row["em_candidate"] = exact_match(candidate, golds)
        row["f1_candidate"] = token_f1(candidate, golds)
        if q.get("choices") and q.get("answer_index") is not None:
            pick = None if a["abstained"] else best_choice(f"{shown or ''} {a['answer']}", q["choices"])
            row["choice_correct"] = float(pick is not None and pick in q["answer_index"])
    if a.get("sentences") is not None:
        v = a.get("verification") or {}
        row["llm_sentences"] = len(a["sentences"])
        row["llm_supported"] = sum(1 for s in a["sentences"] if s["supported"])
        row["llm_facts_checked"] = v.get("facts_checked", 0)
        row["llm_facts_supported"] = v.get("facts_supported", 0)
    if a.get("notice"):
        row["notice"] = a["notice"]
    row.update(_citation_checks(pipeline, q, a))
    return row


def _citation_checks(pipeline, q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    """Exact offsets, markers that resolve, and whether each citation points at the evidence."""
    cites = a["citations"]
    texts: dict[str, Article] = {}
    for c in cites:
        with contextlib.suppress(NotFound):
            texts.setdefault(c["article_id"], pipeline.get_article(c["article_id"]))
    out: dict[str, Any] = {
        "offsets_valid": [
            c["article_id"] in texts and texts[c["article_id"]].text[c["start"] : c["end"]] == c["quote"] for c in cites
        ],
        "markers_resolve": {s["n"] for s in a["segments"] if s["n"]} == {c["n"] for c in cites},
    }
    # A citation made only for "sources differ" quotes another report's value by design: counted apart, not as
    # a citation that should hold the answer.
    answering = {s["n"] for s in a["segments"] if s["n"] and s.get("part") != "sources_differ"}
    elsewhere = [c for c in cites if c["n"] not in answering and a.get("sources_differ")]
    out["citations_for_sources_differ"] = len(elsewhere)
    if q["answerable"] and cites:
        evidence = set(normalize_answer(q.get("evidence") or "").split())
        out["citation_precise"] = [
            contains(c["quote"], q["answers"])
            or bool(evidence)
            and len(evidence & set(normalize_answer(c["quote"]).split())) / len(evidence) >= 0.5
            for c in cites
            if c not in elsewhere
        ]
    return out


def summarize(rows: list[dict[str, Any]], short_threshold: float) -> dict[str, Any]:
    def mean(key: str, subset=None) -> float | None:
        vals = [r[key] for r in (subset if subset is not None else rows) if r.get(key) is not None]
        return round(sum(vals) / len(vals), 4) if vals else None

    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    scored = [r for r in answerable if "contained_answer" in r]
    m: dict[str, Any] = {"questions": len(rows), "answerable": len(answerable), "unanswerable": len(unanswerable)}
    retrieval_rows = [r for r in answerable if "gold_rank" in r]
    for k in KS:
        m[f"retrieval_hit@{k}"] = mean(f"hit@{k}", retrieval_rows)
    m["retrieval_mrr@10"] = mean("rr@10", retrieval_rows)
    m["retrieval_mrr@5"] = (
        round(
            sum(1 / r["gold_rank"] for r in retrieval_rows if r.get("gold_rank") and r["gold_rank"] <= 5)
            / len(retrieval_rows),
            4,
        )
        if retrieval_rows
        else None
    )
    for key in ("contained_answer", "em", "f1", "em_candidate", "f1_candidate", "choice_correct"):
        m[f"answer_{key}"] = mean(key, scored)
    shown = [r for r in scored if r["short_answer"]]
    m["short_answer_threshold"] = short_threshold
    m["short_answer_precision"] = mean("short_right", shown)
    m["short_answer_coverage"] = round(len(shown) / len(scored), 4) if scored else None
    m["short_answer_candidate_right"] = mean("candidate_right", scored)
    # What another threshold would be worth here: reported for the record, never chosen from a checking set.
    m["short_answer_at_thresholds"] = {
        f"{t:.1f}": {"precision": round(p, 4), "coverage": round(c, 4)}
        for t, p, c in precision_coverage(rows)
        if round(t * 100) in (30, 40, 50, 60, 70)
    }
    offsets = [v for r in rows for v in r["offsets_valid"]]
    m["citation_count"] = len(offsets)
    m["citation_offset_validity"] = round(sum(offsets) / len(offsets), 4) if offsets else None
    precise = [v for r in rows for v in r.get("citation_precise", [])]
    m["citation_precision"] = round(sum(precise) / len(precise), 4) if precise else None
    m["citations_for_sources_differ"] = sum(r.get("citations_for_sources_differ", 0) for r in rows)
    m["citation_markers_resolve"] = round(sum(r["markers_resolve"] for r in rows) / len(rows), 4) if rows else None
    abstained = [r for r in rows if r["abstained"]]
    tp = sum(1 for r in abstained if not r["answerable"])
    m["abstention_rate"] = round(len(abstained) / len(rows), 4) if rows else None
    m["abstention_precision"] = round(tp / len(abstained), 4) if abstained else None
    m["abstention_recall"] = round(tp / len(unanswerable), 4) if unanswerable else None
    m["false_abstention_rate"] = (
        round(sum(1 for r in answerable if r["abstained"]) / len(answerable), 4) if answerable else None
    )
    sent = sum(r.get("llm_sentences", 0) for r in rows)
    fact = sum(r.get("llm_facts_checked", 0) for r in rows)
    if any("llm_sentences" in r for r in rows):
        m["llm_supported_sentence_rate"] = (
            round(sum(r.get("llm_supported", 0) for r in rows) / sent, 4) if sent else None
        )
        m["llm_number_fidelity_rate"] = (
            round(sum(r.get("llm_facts_supported", 0) for r in rows) / fact, 4) if fact else None
        )
    m["llm_fallbacks"] = sum(1 for r in rows if r.get("notice"))
    for key, name in (("total_ms", "latency"), ("retrieve_ms", "latency_retrieve"), ("answer_ms", "latency_answer")):
        lat = sorted(r[key] for r in rows)
        m[f"{name}_median_ms"] = round(statistics.median(lat), 1) if lat else None
        m[f"{name}_p95_ms"] = round(percentile(lat, 0.95), 1) if lat else None
    return m


def precision_coverage(rows: list[dict[str, Any]]) -> list[tuple[float, float, float]]:
    """(threshold, precision, coverage) of short answers as the threshold rises, over answerable questions."""
    scored = [r for r in rows if r["answerable"] and "contained_answer" in r]
    out = []
    for t in [i / 100 for i in range(0, 100, 2)]:
        shown = [r for r in scored if r["short_answer_candidate"] and (r["short_answer_confidence"] or 0) >= t]
        if shown:
            out.append((t, sum(r["candidate_right"] for r in shown) / len(shown), len(shown) / len(scored)))
    return out


def run(
    pipeline, questions: list[dict[str, Any]], short_threshold: float, use_as_of: bool = False, progress: bool = True
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from tqdm import tqdm

    rows = [
        evaluate_question(pipeline, q, short_threshold, use_as_of)
        for q in tqdm(questions, desc="questions", unit="q", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    ]
    return rows, summarize(rows, short_threshold)


def dataset_pipeline(dataset: Path, settings: Settings, progress: bool = True, embedder=None):
    """A Pipeline over a cached scratch index of ``dataset/corpus.jsonl`` (re-ingest skips what is stored)."""
    from tqdm import tqdm

    from rag.pipeline import Pipeline

    corpus = dataset / "corpus.jsonl"
    if not corpus.is_file() or not (dataset / "questions.jsonl").is_file():
        raise BadInput(f"{dataset} needs corpus.jsonl and questions.jsonl.")
    key = hashlib.sha256(
        f"{dataset.resolve()}|{settings.embedding_model}|{settings.chunk_size}|"
        f"{settings.chunk_overlap}|{SCHEMA_VERSION}".encode()
    ).hexdigest()[:10]
    scratch = settings.index_dir / "eval-cache" / f"{dataset.name}-{key}"
    pipeline = Pipeline(settings.model_copy(update={"index_dir": scratch, "chroma_url": None}), embedder=embedder)
    articles, skipped = [], []
    for item in read_path(corpus, max_bytes=1 << 31):
        (articles.append(item) if isinstance(item, Article) else skipped.append(item))
    bar: dict[str, Any] = {}

    def on_total(n: int) -> None:
        if progress and n:
            bar["b"] = tqdm(total=n, desc=f"indexing {dataset.name}", unit="chunk", file=sys.stderr, dynamic_ncols=True)

    started = time.perf_counter()
    report = pipeline.index_articles(
        articles, progress=Progress(on_total, lambda n: bar.get("b") and bar["b"].update(n))
    )
    if "b" in bar:
        bar["b"].close()
    report.seconds = time.perf_counter() - started
    report.skipped.extend(skipped)
    return pipeline, report
