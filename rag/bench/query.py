"""Question latency: a bare dense lookup, retrieval alone, and retrieval with the answer, on one index."""

from __future__ import annotations

import statistics
import time

import numpy as np


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    v = np.asarray(values)
    return {
        "p50_ms": round(float(np.percentile(v, 50)), 1),
        "p95_ms": round(float(np.percentile(v, 95)), 1),
        "p99_ms": round(float(np.percentile(v, 99)), 1),
        "mean_ms": round(statistics.fmean(values), 1),
    }


def run(pipeline, questions: list[dict], use_dates: bool = True) -> dict:
    """Each question three ways, interleaved so that noise falls on all three alike."""
    pipeline.warm_up()
    bare, retrieval, full, answer_step = [], [], [], []
    for q in questions:
        as_of = q.get("question_date") if use_dates else None
        started = time.perf_counter()
        vector = pipeline.embedder.embed_query(q["question"])
        pipeline.index.store.dense_query(vector, 5)
        bare.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        pipeline.prepare(pipeline.request(q["question"], as_of=as_of))
        retrieval.append((time.perf_counter() - started) * 1000)
        answer = pipeline.ask(q["question"], as_of=as_of)
        full.append(answer.timings_ms["total"])
        answer_step.append(answer.timings_ms["answer"])
    out = {
        "questions": len(questions),
        "dates": use_dates,
        "bare_dense_lookup": percentiles(bare),
        "retrieval": percentiles(retrieval),
        "retrieve_and_answer": percentiles(full),
        "answer_step": percentiles(answer_step),
    }
    out["retrieve_and_answer_vs_bare_p50"] = round(
        out["retrieve_and_answer"]["p50_ms"] / out["bare_dense_lookup"]["p50_ms"], 2
    )
    return out
