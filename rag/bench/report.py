"""docs/MEASUREMENTS.md, written from measurement files, so that no figure in it is typed by hand.

`rag bench --docs DIR` reads DIR/bench.json (what `rag bench --out` wrote), every DIR/eval-*.json (the
`metrics.json` of a `rag eval` run, copied there under the name of its question set) and any other DIR/*.json
(another script's figures, with its `command`), and writes DIR/../MEASUREMENTS.md: the headline figures against
their targets, then every figure of each file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVAL_ROWS = (
    ("questions", "questions"),
    ("retrieval_hit@5", "gold article in the top 5"),
    ("answer_contained_answer", "gold answer in the cited sentences"),
    ("short_answer_coverage", "short answer shown (coverage)"),
    ("short_answer_precision", "short answers right, of those shown"),
    ("short_answer_candidate_right", "best short-answer candidate right, shown or not"),
    ("answer_em_candidate", "best candidate, exact match"),
    ("answer_f1_candidate", "best candidate, token F1"),
    ("citation_offset_validity", "citation offsets exact"),
    ("citation_precision", "cited sentences that hold the answer or its evidence"),
    ("citations_for_sources_differ", "citations of another report's differing value (not counted above)"),
    ("false_abstention_rate", "answerable questions abstained on"),
    ("abstention_recall", "unanswerable questions abstained on (recall)"),
    ("abstention_precision", "abstentions that were right (precision)"),
    ("latency_median_ms", "question latency, median (ms)"),
    ("latency_p95_ms", "question latency, p95 (ms)"),
)


def _get(data: dict, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) <= 1 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value[:8]) + (" …" if len(value) > 8 else "")
    return str(value).replace("|", "\\|")


def _times(value: Any) -> str:
    return f"{value:.2f}x" if isinstance(value, int | float) else "—"


def _ratio(a: Any, b: Any) -> str:
    return f"{a / b:.2f}x" if isinstance(a, int | float) and isinstance(b, int | float) and b else "—"


def headline(bench: dict) -> list[tuple[str, str, str]]:
    """(figure, value, target) for the figures the project holds itself to."""
    q = lambda path: _get(bench, path)  # noqa: E731
    rows = []
    if q("query"):
        rows += [
            (
                "retrieve + answer, p50 / p95",
                f"{_fmt(q('query.retrieve_and_answer.p50_ms'))} / {_fmt(q('query.retrieve_and_answer.p95_ms'))} ms",
                "span reader: p50 ≤ 80 ms, p95 ≤ 150 ms; fitted: p50 ≤ 40 ms, p95 ≤ 100 ms",
            ),
            (
                "retrieval alone, p50 / p95",
                f"{_fmt(q('query.retrieval.p50_ms'))} / {_fmt(q('query.retrieval.p95_ms'))} ms",
                "",
            ),
            ("the answer step, p50", f"{_fmt(q('query.answer_step.p50_ms'))} ms", ""),
            (
                "bare dense lookup (encode + Chroma top 5), p50; retrieve + answer against it",
                f"{_fmt(q('query.bare_dense_lookup.p50_ms'))} ms; "
                f"{_ratio(q('query.retrieve_and_answer.p50_ms'), q('query.bare_dense_lookup.p50_ms'))}",
                "≤ 2x",
            ),
        ]
    if q("ingest"):
        rows += [
            (
                "ingest: ours / LangChain's defaults, from a loaded model",
                f"{_fmt(q('ingest.ours.seconds'))} s / {_fmt(q('ingest.langchain.seconds'))} s = "
                f"{_ratio(q('ingest.langchain.seconds'), q('ingest.ours.seconds'))}",
                "3x",
            ),
            ("ingest: pipeline throughput / the raw encoder's", _fmt(q("ingest.pipeline_vs_raw_encoder")), "≥ 0.9"),
        ]
    if q("http"):
        rows += [
            ("`/api/ask`, 1 client", f"{_fmt(q('http.clients_1.requests_per_s'))} requests/s", ""),
            (
                "`/api/ask`, 8 clients",
                f"{_fmt(q('http.clients_8.requests_per_s'))} requests/s "
                f"({_times(q('http.clients_8.throughput_vs_one_client'))}), p95 {_fmt(q('http.clients_8.p95_ms'))} ms",
                "≥ 1.5x, p95 ≤ 400 ms",
            ),
            (
                "`/api/ask`, 32 clients",
                f"{_fmt(q('http.clients_32.requests_per_s'))} requests/s "
                f"({_times(q('http.clients_32.throughput_vs_one_client'))})",
                "never falls",
            ),
            (
                "cold start: `/healthz` answers / first answer",
                f"{_fmt(q('http.cold_start.healthz_s'))} s / {_fmt(q('http.cold_start.first_answer_s'))} s",
                "first answer ≤ 8 s",
            ),
            ("RSS serving the index, after load", f"{_fmt(q('http.rss_after_load.rss_mb'))} MB", "≤ 1.5 GB"),
        ]
    if q("load"):
        rows.append(("mixed requests, 16 clients: server errors", _fmt(q("load.load.server_errors")), "0"))
    return rows


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        out = []
        for key, value in data.items():
            if key in ("latencies_ms", "client_errors"):  # raw samples; their percentiles are beside them
                continue
            out += _flatten(value, f"{prefix}{key}.")
        return out
    return [(prefix[:-1], data)]


def render(
    bench: dict,
    evals: dict[str, dict],
    others: dict[str, dict] | None = None,
    scripts: dict[str, dict] | None = None,
) -> str:
    """The page: ``bench`` (the default settings' run) in full, the headline of each of ``others`` (runs under
    other settings, by name) beside it, the eval runs side by side, and each of ``scripts``' figures (another
    script's measurement, with the command that made it)."""
    others = others or {}
    machine = bench.get("machine", {})
    lines = [
        "# Measurements",
        "",
        "Generated by `rag bench --docs docs/measurements` from the files in `docs/measurements/`; do not edit by",
        "hand. `bench.json` is what `rag bench --out` wrote with the default settings, each `bench-NAME.json` a run",
        "under other settings (named in it), and each `eval-NAME.json` the `metrics.json` of a `rag eval` run.",
        "Ratios compare runs made in the same session, on the same machine.",
        "",
        f"Machine: {_fmt(machine.get('cpus'))} CPU cores, Python {_fmt(machine.get('python'))}; "
        f"bench run started {_fmt(bench.get('started'))}.",
        "",
    ]
    if evals:
        names = sorted(evals)
        lines += [
            "## Answer quality (`rag eval`)",
            "",
            "| figure | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for key, label in EVAL_ROWS:
            lines.append(f"| {label} | " + " | ".join(_fmt(evals[n].get(key)) for n in names) + " |")
        lines += [
            "",
            "Reader and thresholds per run: "
            + "; ".join(f"{n}: short-answer threshold {_fmt(evals[n].get('short_answer_threshold'))}" for n in names)
            + ".",
            "",
        ]
    rows = headline(bench)
    if rows:
        extra = {name: {label: value for label, value, _ in headline(run)} for name, run in others.items()}
        head = "| figure | default | " + "".join(f"{name} | " for name in extra) + "target |"
        lines += ["## Speed and memory (`rag bench`): the headline", "", head, "|---|" + "---|" * (len(extra) + 2)]
        lines += [
            f"| {a} | {b} | " + "".join(f"{extra[n].get(a, '—')} | " for n in extra) + f"{c} |" for a, b, c in rows
        ]
        lines.append("")
        for name, run in others.items():
            env = run.get("settings") or {}
            lines.append(f"`{name}`: started {_fmt(run.get('started'))}" + (f", with {_fmt(env)}" if env else "") + ".")
        if others:
            lines.append("")
    for section in ("index", "ingest", "query", "update", "http", "load", "uploads"):
        if section in bench:
            lines += [f"### `{section}`: every figure", "", "| figure | value |", "|---|---|"]
            lines += [f"| {key} | {_fmt(value)} |" for key, value in _flatten(bench[section])]
            lines.append("")
    for name, figures in (scripts or {}).items():
        lines += [
            f"## `{name}.json`",
            "",
            f"Made by `{figures.get('command', '?')}`.",
            "",
            "| figure | value |",
            "|---|---|",
        ]
        lines += [f"| {key} | {_fmt(value)} |" for key, value in _flatten(figures) if key != "command"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_docs(folder: Path) -> Path:
    """Render ``folder``'s measurement files into MEASUREMENTS.md beside that folder; the path written."""
    bench_file = folder / "bench.json"
    bench = json.loads(bench_file.read_text()) if bench_file.is_file() else {}
    evals = {p.stem.removeprefix("eval-"): json.loads(p.read_text()) for p in sorted(folder.glob("eval-*.json"))}
    others = {p.stem.removeprefix("bench-"): json.loads(p.read_text()) for p in sorted(folder.glob("bench-*.json"))}
    scripts = {
        p.stem: json.loads(p.read_text())
        for p in sorted(folder.glob("*.json"))
        if not p.stem.startswith(("bench", "eval-"))
    }
    out = folder.parent / "MEASUREMENTS.md"
    out.write_text(render(bench, evals, others, scripts))
    return out
