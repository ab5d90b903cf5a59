"""The evaluation's outputs: metrics.json, results.jsonl, report.md, and report.html rendered from a template.

The report is for people: metrics under readable names, grouped; a latency histogram; the short answers'
precision-coverage curve; and, given an earlier run, each metric's change and the questions whose outcome
flipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Retrieval",
        [
            ("retrieval_hit@1", "Gold article first"),
            ("retrieval_hit@3", "Gold article in top 3"),
            ("retrieval_hit@5", "Gold article in top 5"),
            ("retrieval_hit@10", "Gold article in top 10"),
            ("retrieval_mrr@5", "MRR@5"),
            ("retrieval_mrr@10", "MRR@10"),
        ],
    ),
    (
        "Answers",
        [
            ("answer_contained_answer", "Gold answer in the cited sentences"),
            ("short_answer_precision", "Short answers right, of those shown"),
            ("short_answer_coverage", "Short answer shown, of answerable questions"),
            ("short_answer_threshold", "Short-answer threshold (probability)"),
            ("short_answer_candidate_right", "Best candidate right, shown or not"),
            ("answer_em", "Exact match, of the short answers shown"),
            ("answer_f1", "Token F1, of the short answers shown"),
            ("answer_em_candidate", "Exact match (best candidate)"),
            ("answer_f1_candidate", "Token F1 (best candidate)"),
            ("answer_choice_correct", "Multiple choice picked right"),
        ],
    ),
    (
        "Citations",
        [
            ("citation_count", "Citations"),
            ("citation_offset_validity", "Offsets exact"),
            ("citation_markers_resolve", "Every [n] resolves, every citation used"),
            ("citation_precision", "Citations that hold the answer or the evidence"),
            ("citations_for_sources_differ", "Citations of another report's differing value (not counted above)"),
        ],
    ),
    (
        "Abstention",
        [
            ("abstention_rate", "Abstained"),
            ("abstention_precision", "Abstentions that were right"),
            ("abstention_recall", "Unanswerable questions abstained on"),
            ("false_abstention_rate", "Answerable questions abstained on"),
        ],
    ),
    (
        "Latency",
        [
            ("latency_median_ms", "Question, median (ms)"),
            ("latency_p95_ms", "Question, p95 (ms)"),
            ("latency_retrieve_median_ms", "Retrieval, median (ms)"),
            ("latency_answer_median_ms", "Answer step, median (ms)"),
        ],
    ),
]
LOWER_IS_BETTER = {
    "false_abstention_rate",
    "latency_median_ms",
    "latency_p95_ms",
    "latency_retrieve_median_ms",
    "latency_answer_median_ms",
    "latency_retrieve_p95_ms",
    "latency_answer_p95_ms",
    "abstention_rate",
}


def write_outputs(
    out: Path,
    metrics: dict[str, Any],
    rows: list[dict[str, Any]],
    titles: dict[str, str],
    curve: list[tuple[float, float, float]],
    baseline: Path | None = None,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    with open(out / "results.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    comparison = compare(metrics, rows, baseline) if baseline else None
    context = {
        "metrics": metrics,
        "groups": grouped(metrics, comparison),
        "failures": failures(rows),
        "titles": titles,
        "histogram": histogram([r["total_ms"] for r in rows]),
        "curve": curve,
        "comparison": comparison,
        "other": other_metrics(metrics),
    }
    env = Environment(
        loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape(["html"])
    )
    env.filters["show"] = show
    (out / "report.html").write_text(env.get_template("report.html").render(context))
    (out / "report.md").write_text(env.get_template("report.md").render(context))


def show(value: Any) -> str:
    """A value as a reader of the report should see it: no Python spellings (None, False, [])."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(show(v) for v in value) or "none"
    if isinstance(value, dict):
        return (
            "; ".join(
                f"{k} ({', '.join(f'{a} {show(b)}' for a, b in v.items())})"
                if isinstance(v, dict)
                else f"{k} {show(v)}"
                for k, v in value.items()
            )
            or "none"
        )
    return str(value)


def grouped(metrics: dict[str, Any], comparison: dict | None) -> list[dict]:
    out = []
    for title, keys in GROUPS:
        items = []
        for key, name in keys:
            if metrics.get(key) is None:
                continue
            item = {"key": key, "name": name, "value": metrics[key]}
            if comparison and key in comparison["deltas"]:
                item.update(comparison["deltas"][key])
            items.append(item)
        if items:
            out.append({"title": title, "items": items})
    return out


def other_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    shown = {k for _, keys in GROUPS for k, _ in keys}
    return {k: v for k, v in metrics.items() if k not in shown}


def compare(metrics: dict[str, Any], rows: list[dict[str, Any]], baseline: Path) -> dict:
    """Each metric's change against an earlier run, and the questions whose outcome flipped."""
    before = json.loads((baseline / "metrics.json").read_text())
    before_rows = {r["id"]: r for r in map(json.loads, (baseline / "results.jsonl").read_text().splitlines())}
    deltas = {}
    for key, value in metrics.items():
        old = before.get(key)
        if isinstance(value, (int, float)) and isinstance(old, (int, float)) and not isinstance(value, bool):
            change = value - old
            better = change < 0 if key in LOWER_IS_BETTER else change > 0
            deltas[key] = {"before": old, "change": round(change, 4), "better": better if change else None}
    flips = []
    for r in rows:
        old = before_rows.get(r["id"])
        if old is None:
            continue
        for what, now_ok, then_ok in (
            ("abstained", not r["abstained"], not old["abstained"]),
            ("gold in cited sentences", r.get("contained_answer"), old.get("contained_answer")),
            ("short answer right", r.get("short_right"), old.get("short_right")),
        ):
            if now_ok is None or then_ok is None or bool(now_ok) == bool(then_ok):
                continue
            if what == "abstained" and not r["answerable"]:
                now_ok, then_ok = not now_ok, not then_ok
            flips.append(
                {
                    "id": r["id"],
                    "question": r["question"],
                    "what": what,
                    "better": bool(now_ok),
                    "before": old.get("short_answer") or old["answer"][:120],
                    "after": r.get("short_answer") or r["answer"][:120],
                }
            )
    return {"baseline": str(baseline), "deltas": deltas, "flips": flips}


def histogram(values: list[float], bins: int = 20) -> dict:
    if not values:
        return {"bars": [], "max": 0}
    top = max(values)
    width = max(top / bins, 1.0)
    counts = [0] * bins
    for v in values:
        counts[min(int(v / width), bins - 1)] += 1
    return {
        "bars": [{"low": round(i * width), "high": round((i + 1) * width), "count": c} for i, c in enumerate(counts)],
        "max": max(counts),
    }


def failures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    bad = []
    for r in rows:
        reasons = []
        if r["answerable"] and r.get("hit@5") == 0.0:
            reasons.append("gold article not in top 5")
        if r["answerable"] and r["abstained"]:
            reasons.append("abstained on an answerable question")
        elif r["answerable"] and r.get("contained_answer") == 0.0:
            reasons.append("gold answer not in the cited sentences")
        if r.get("short_right") == 0.0:
            reasons.append("short answer shown, and wrong")
        if not r["answerable"] and not r["abstained"]:
            reasons.append("answered an unanswerable question")
        if not all(r["offsets_valid"]):
            reasons.append("citation offsets invalid")
        if reasons:
            bad.append({**r, "reasons": reasons})
    return bad
