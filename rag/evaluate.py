"""`rag eval`: run a question set, score retrieval, answers, citations and abstention, write reports.

A question line: {"id", "question", "answers": [...], "article_ids" or "doc_ids": [...],
"answerable"?: bool (default true), "evidence"?: str, "choices"?: [...], "answer_index"?: [...],
"question_date"?: YYYY-MM-DD}.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import re
import statistics
import string
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import BadInput, NotFound
from .ingest import read_path
from .store import SCHEMA_VERSION

KS = (1, 3, 5, 10)


# -- SQuAD-style answer scoring ---------------------------------------------------------------------
def normalize_answer(s: str) -> str:
    """Lower case, drop punctuation (curly quotes too) and articles, collapse white space."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation) | set("“”‘’«»–—"))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def exact_match(pred: str | None, golds: list[str]) -> float:
    p = normalize_answer(pred or "")
    return float(any(p == normalize_answer(g) for g in golds)) if p else 0.0


def token_f1(pred: str | None, golds: list[str]) -> float:
    p = normalize_answer(pred or "").split()
    best = 0.0
    for g in golds:
        gt = normalize_answer(g).split()
        common = Counter(p) & Counter(gt)
        same = sum(common.values())
        if same:
            prec, rec = same / len(p), same / len(gt)
            best = max(best, 2 * prec * rec / (prec + rec))
    return best


def contains(text: str | None, golds: list[str]) -> bool:
    t = f" {normalize_answer(text or '')} "
    return any(normalize_answer(g) and f" {normalize_answer(g)} " in t for g in golds)


def best_choice(answer_text: str, choices: list[str]) -> int | None:
    """The choice the answer supports best: contained whole first, else most shared tokens."""
    if not answer_text:
        return None
    scored = []
    for i, ch in enumerate(choices):
        whole = contains(answer_text, [ch])
        overlap = token_f1(answer_text, [ch]) if not whole else 1.0
        recall = _token_recall(ch, answer_text)
        scored.append((whole, recall, overlap, -i))
    best = max(scored)
    return -best[3] if (best[0] or best[1] > 0) else None


def _token_recall(choice: str, text: str) -> float:
    c = normalize_answer(choice).split()
    t = set(normalize_answer(text).split())
    return sum(1 for w in c if w in t) / len(c) if c else 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    i = min(len(v) - 1, max(0, round(q * (len(v) - 1))))
    return v[i]


# -- running ------------------------------------------------------------------------------------------
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


def evaluate_question(pipeline, q: dict[str, Any], use_as_of: bool = False) -> dict[str, Any]:
    as_of = q.get("question_date") if use_as_of else None
    answer, ranking = pipeline.ask_ranked(q["question"], as_of=as_of)
    a = answer.to_dict()
    gold_ids = set(q["article_ids"])
    golds = q["answers"]
    row: dict[str, Any] = {
        "id": q["id"], "question": q["question"], "answerable": q["answerable"], "gold_answers": golds,
        "gold_article_ids": sorted(gold_ids), "answer": a["answer"], "short_answer": a["short_answer"],
        "abstained": a["abstained"], "confidence": a["confidence"], "citations": a["citations"],
        "retrieved_article_ids": ranking[:10], "total_ms": a["timings_ms"].get("total", 0.0),
    }
    if gold_ids:
        rank = next((i for i, aid in enumerate(ranking[:10], 1) if aid in gold_ids), None)
        row["gold_rank"] = rank
        for k in KS:
            row[f"hit@{k}"] = float(rank is not None and rank <= k)
        row["rr@10"] = 1.0 / rank if rank else 0.0
    if q["answerable"] and golds:
        answer_text = "" if a["abstained"] else a["answer"]
        row["contained_short"] = float(contains(a["short_answer"], golds))
        row["contained_answer"] = float(contains(answer_text, golds) or contains(a["short_answer"], golds))
        row["em"] = exact_match(a["short_answer"], golds)
        row["f1"] = token_f1(a["short_answer"], golds)
        if q.get("choices") and q.get("answer_index") is not None:
            pick = None if a["abstained"] else best_choice(f"{a['short_answer'] or ''} {a['answer']}", q["choices"])
            row["choice_correct"] = float(pick is not None and pick in q["answer_index"])
    if a.get("sentences") is not None:
        v = a.get("verification") or {}
        row["llm_sentences"] = len(a["sentences"])
        row["llm_supported"] = sum(1 for s in a["sentences"] if s["supported"])
        row["llm_facts_checked"] = v.get("facts_checked", 0)
        row["llm_facts_supported"] = v.get("facts_supported", 0)
    if a.get("notice"):
        row["notice"] = a["notice"]
    # Citations: exact offsets, markers that resolve, and whether they point at the evidence.
    cites = a["citations"]
    texts = {}
    for c in cites:
        with contextlib.suppress(NotFound):
            texts[c["article_id"]] = pipeline.get_article(c["article_id"])
    row["offsets_valid"] = [texts.get(c["article_id"]) is not None
                            and texts[c["article_id"]].text[c["start"]:c["end"]] == c["quote"] for c in cites]
    markers = [int(m) for m in re.findall(r"\[(\d+)\]", a["answer"])]
    numbers = {c["n"] for c in cites}
    row["markers_resolve"] = all(m in numbers for m in markers) and numbers <= set(markers)
    if q["answerable"] and cites:
        passages = {p["chunk_id"]: p["text"] for p in a["passages"]}
        evidence = q.get("evidence") or ""
        row["citation_precise"] = [
            contains(passages.get(c["chunk_id"], c["quote"]), golds) or _evidence_overlap(c["quote"], evidence)
            for c in cites
        ]
    return row


def _evidence_overlap(quote: str, evidence: str, floor: float = 0.5) -> bool:
    ev = set(normalize_answer(evidence).split())
    if not ev:
        return False
    return len(ev & set(normalize_answer(quote).split())) / len(ev) >= floor


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(key: str, subset=None) -> float | None:
        vals = [r[key] for r in (subset if subset is not None else rows) if key in r]
        return round(sum(vals) / len(vals), 4) if vals else None

    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    m: dict[str, Any] = {"questions": len(rows), "answerable": len(answerable), "unanswerable": len(unanswerable)}
    retrieval_rows = [r for r in answerable if "gold_rank" in r]
    for k in KS:
        m[f"retrieval_hit@{k}"] = mean(f"hit@{k}", retrieval_rows)
    m["retrieval_mrr@10"] = mean("rr@10", retrieval_rows)
    m["retrieval_mrr@5"] = (round(sum((1 / r["gold_rank"]) if r.get("gold_rank") and r["gold_rank"] <= 5 else 0.0
                                     for r in retrieval_rows) / len(retrieval_rows), 4) if retrieval_rows else None)
    for key in ("contained_short", "contained_answer", "em", "f1", "choice_correct"):
        m[f"answer_{key}"] = mean(key, answerable)
    offsets = [v for r in rows for v in r["offsets_valid"]]
    m["citation_count"] = len(offsets)
    m["citation_offset_validity"] = round(sum(offsets) / len(offsets), 4) if offsets else None
    precise = [v for r in rows for v in r.get("citation_precise", [])]
    m["citation_precision"] = round(sum(precise) / len(precise), 4) if precise else None
    m["citation_markers_resolve"] = round(sum(r["markers_resolve"] for r in rows) / len(rows), 4) if rows else None
    abstained = [r for r in rows if r["abstained"]]
    tp = sum(1 for r in abstained if not r["answerable"])
    m["abstention_rate"] = round(len(abstained) / len(rows), 4) if rows else None
    m["abstention_precision"] = round(tp / len(abstained), 4) if abstained else None
    m["abstention_recall"] = round(tp / len(unanswerable), 4) if unanswerable else None
    m["false_abstention_rate"] = (round(sum(1 for r in answerable if r["abstained"]) / len(answerable), 4)
                                  if answerable else None)
    sent = sum(r.get("llm_sentences", 0) for r in rows)
    fact = sum(r.get("llm_facts_checked", 0) for r in rows)
    if any("llm_sentences" in r for r in rows):
        m["llm_supported_sentence_rate"] = round(sum(r.get("llm_supported", 0) for r in rows) / sent, 4) if sent else None
        m["llm_number_fidelity_rate"] = (round(sum(r.get("llm_facts_supported", 0) for r in rows) / fact, 4)
                                         if fact else None)
    m["llm_fallbacks"] = sum(1 for r in rows if r.get("notice"))
    lat = [r["total_ms"] for r in rows]
    m["latency_median_ms"] = round(statistics.median(lat), 1) if lat else None
    m["latency_p95_ms"] = round(_percentile(lat, 0.95), 1) if lat else None
    return m


def run(pipeline, questions: list[dict[str, Any]], use_as_of: bool = False, progress: bool = True):
    from tqdm import tqdm

    rows = []
    for q in tqdm(questions, desc="questions", unit="q", file=sys.stderr, disable=not progress, dynamic_ncols=True):
        rows.append(evaluate_question(pipeline, q, use_as_of))
    return rows, summarize(rows)


# -- scratch indexes for datasets -------------------------------------------------------------------
def dataset_pipeline(dataset: Path, settings: Settings, progress: bool = True, embedder=None):
    """A Pipeline over a cached scratch index of ``dataset/corpus.jsonl`` (re-ingest skips what is stored)."""
    from .pipeline import Pipeline

    corpus = dataset / "corpus.jsonl"
    if not corpus.is_file() or not (dataset / "questions.jsonl").is_file():
        raise BadInput(f"{dataset} needs corpus.jsonl and questions.jsonl.")
    key = hashlib.sha256(
        f"{dataset.resolve()}|{settings.embedding_model}|{settings.chunk_size}|{settings.chunk_overlap}|{SCHEMA_VERSION}"
        .encode()
    ).hexdigest()[:10]
    scratch = settings.index_dir / "eval-cache" / f"{dataset.name}-{key}"
    pipeline = Pipeline(settings.model_copy(update={"index_dir": scratch, "chroma_url": None}), embedder=embedder)
    from .ingestion import Progress

    articles, skipped = [], []
    for item in read_path(corpus, max_bytes=1 << 31):
        (articles.append(item) if hasattr(item, "content_hash") else skipped.append(item))
    from tqdm import tqdm

    bar = {}

    def on_total(n):
        if progress and n:
            bar["b"] = tqdm(total=n, desc=f"indexing {dataset.name}", unit="chunk", file=sys.stderr, dynamic_ncols=True)

    t0 = time.perf_counter()
    report = pipeline.index_articles(articles, progress=Progress(on_total, lambda n: bar.get("b") and bar["b"].update(n)))
    if "b" in bar:
        bar["b"].close()
    report.seconds = time.perf_counter() - t0
    report.skipped.extend(skipped)
    return pipeline, report


# -- reports --------------------------------------------------------------------------------------------
def write_outputs(out: Path, metrics: dict[str, Any], rows: list[dict[str, Any]], titles: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    with open(out / "results.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    (out / "report.md").write_text(render_markdown(metrics, rows))
    (out / "report.html").write_text(render_html(metrics, rows, titles))


def failures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    bad = []
    for r in rows:
        reasons = []
        if r["answerable"] and r.get("hit@5") == 0.0:
            reasons.append("gold article not in top 5")
        if r["answerable"] and r["abstained"]:
            reasons.append("abstained on an answerable question")
        elif r["answerable"] and r.get("contained_answer") == 0.0:
            reasons.append("gold answer not in the answer")
        if not r["answerable"] and not r["abstained"]:
            reasons.append("answered an unanswerable question")
        if not all(r["offsets_valid"]):
            reasons.append("citation offsets invalid")
        if reasons:
            bad.append({**r, "reasons": reasons})
    return bad


def render_markdown(metrics: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = ["# Evaluation report", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in metrics.items()]
    bad = failures(rows)
    lines += ["", f"## Failures ({len(bad)})", "", "| id | question | reasons | short answer | gold |", "|---|---|---|---|---|"]
    for r in bad:
        q = r["question"].replace("|", "\\|")
        lines.append(f"| {r['id']} | {q} | {'; '.join(r['reasons'])} | {r['short_answer'] or ''} | "
                     f"{' / '.join(r['gold_answers'])} |")
    return "\n".join(lines) + "\n"


def render_html(metrics: dict[str, Any], rows: list[dict[str, Any]], titles: dict[str, str]) -> str:
    e = html.escape
    bars = []
    for i, k in enumerate(KS):
        v = metrics.get(f"retrieval_hit@{k}") or 0.0
        h = 160 * v
        x = 40 + i * 90
        bars.append(f'<rect x="{x}" y="{180 - h:.1f}" width="60" height="{h:.1f}" fill="#3867d6"/>'
                    f'<text x="{x + 30}" y="{172 - h:.1f}" text-anchor="middle">{v:.3f}</text>'
                    f'<text x="{x + 30}" y="198" text-anchor="middle">hit@{k}</text>')
    chart = (f'<svg role="img" aria-label="retrieval hit at k" width="420" height="205" '
             f'xmlns="http://www.w3.org/2000/svg" font-size="12">'
             f'<line x1="30" y1="180" x2="410" y2="180" stroke="#333"/>{"".join(bars)}</svg>')
    mrows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in metrics.items())
    frows = []
    for r in failures(rows):
        retrieved = "".join(
            f"<li{' class=gold' if aid in r['gold_article_ids'] else ''}>{e(aid)}: {e(titles.get(aid, ''))}</li>"
            for aid in r["retrieved_article_ids"][:5])
        frows.append(
            f"<tr><td>{e(str(r['id']))}</td><td>{e(r['question'])}</td><td>{e('; '.join(r['reasons']))}</td>"
            f"<td>{e(r['short_answer'] or '')}<details><summary>answer</summary>{e(r['answer'])}</details></td>"
            f"<td>{e(' / '.join(r['gold_answers']))}<br><small>{e(', '.join(r['gold_article_ids']))}</small></td>"
            f"<td><ol>{retrieved}</ol></td></tr>")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Evaluation report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;text-align:left}}li.gold{{font-weight:bold;color:#1e7e34}}</style>
</head><body><h1>Evaluation report</h1><h2>Retrieval hit@k</h2>{chart}
<h2>Metrics</h2><table>{mrows}</table>
<h2>Failures ({len(frows)})</h2><table><tr><th>id</th><th>question</th><th>why</th><th>answer</th><th>gold</th>
<th>retrieved (top 5; gold in bold)</th></tr>{''.join(frows)}</table></body></html>
"""


def run_cli(args) -> int:
    settings = Settings(**({"index_dir": Path(args.index_dir)} if getattr(args, "index_dir", None) else {}))
    progress = not args.json
    if bool(args.questions) == bool(args.dataset):
        raise BadInput("Give exactly one of --questions FILE or --dataset DIR.")
    extra: dict[str, Any] = {}
    if args.dataset:
        dataset = Path(args.dataset)
        pipeline, report = dataset_pipeline(dataset, settings, progress)
        extra = {"index_seconds": round(report.seconds, 1), "index_added": report.added + report.updated,
                 "index_chunks_added": report.chunks}
        qpath = dataset / "questions.jsonl"
    else:
        from .pipeline import Pipeline

        pipeline = Pipeline(settings)
        qpath = Path(args.questions)
    questions = load_questions(qpath)
    if args.limit:
        questions = questions[: args.limit]
    pipeline.warm_up()
    t0 = time.perf_counter()
    rows, metrics = run(pipeline, questions, use_as_of=args.use_as_of, progress=progress)
    metrics = {**metrics, **extra, "eval_seconds": round(time.perf_counter() - t0, 1),
               "as_of": bool(args.use_as_of), "questions_file": str(qpath)}
    titles = {a["id"]: a["title"] for a in pipeline.list_articles()}
    write_outputs(Path(args.out), metrics, rows, titles)
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
    else:
        for k, v in metrics.items():
            print(f"{k:32} {v}")
        print(f"wrote {args.out}/metrics.json, results.jsonl, report.md, report.html")
    return 0
