"""`rag`: ingest, ask, serve, eval, list, stats, check, delete.

Exit codes: 0 ok, 1 a user error (one clear line, no traceback), 2 usage, 3 `rag check` found problems.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from .config import Settings
from .errors import RagError


def _pipeline(args):
    from .pipeline import Pipeline

    overrides = {}
    if getattr(args, "index_dir", None):
        overrides["index_dir"] = Path(args.index_dir)
    return Pipeline(Settings(**overrides))


def _progress_bar(enabled: bool):
    """A tqdm bar on stderr, created when the total is known."""
    from tqdm import tqdm

    state = {}

    def on_total(total: int) -> None:
        if enabled and total:
            state["bar"] = tqdm(total=total, unit="chunk", desc="embedding", file=sys.stderr, dynamic_ncols=True)

    def advance(n: int) -> None:
        if "bar" in state:
            state["bar"].update(n)

    def close() -> None:
        if "bar" in state:
            state["bar"].close()

    return on_total, advance, close


def cmd_ingest(args) -> int:
    from .ingestion import Progress

    p = _pipeline(args)
    on_total, advance, close = _progress_bar(not args.json and not args.quiet)
    try:
        report = p.index_paths(args.paths, Progress(on_total, advance))
    finally:
        close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
              f"skipped {len(report.skipped)} ({report.chunks} chunks in {report.seconds:.1f}s)")
        for s in report.skipped:
            print(f"  skipped {s.path}: {s.reason}")
        for w in report.warnings:
            print(f"  warning {w.path}: {w.reason}")
    return 0


def format_answer(a: dict) -> str:
    lines = []
    if a["abstained"]:
        lines.append(f"(no answer) {a['answer']}")
    else:
        if a.get("short_answer"):
            lines.append(f"Short answer: {a['short_answer']}")
        lines.append(textwrap.fill(a["answer"], 100))
        lines.append("")
        for c in a["citations"]:
            when = f", {c['published']}" if c.get("published") else ""
            lines.append(f"[{c['n']}] {c['title']}{when} ({c['article_id']}, chars {c['start']}-{c['end']})")
            lines.append(textwrap.indent(textwrap.fill(f"“{c['quote']}”", 96), "    "))
    t = a.get("timings_ms", {})
    lines.append(f"({a['backend']}, {t.get('total', 0):.0f} ms)")
    return "\n".join(lines)


def cmd_ask(args) -> int:
    p = _pipeline(args)
    answer = p.ask(args.question, k=args.k, since=args.since, until=args.until, as_of=args.as_of).to_dict()
    print(json.dumps(answer, indent=2, ensure_ascii=False) if args.json else format_answer(answer))
    return 0


def cmd_list(args) -> int:
    rows = _pipeline(args).list_articles()
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for r in rows:
        print(f"{r['id']}\t{r.get('published') or '-'}\t{r['chunks']} chunks\t{r['title']}")
    print(f"{len(rows)} articles")
    return 0


def cmd_stats(args) -> int:
    print(json.dumps(_pipeline(args).stats(), indent=2))
    return 0


def cmd_delete(args) -> int:
    _pipeline(args).delete(args.article_id)
    print(f"deleted {args.article_id}")
    return 0


def cmd_check(args) -> int:
    report = _pipeline(args).check(repair=args.repair)
    if args.json:
        from dataclasses import asdict

        print(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
        return 0 if report.ok or report.repaired else 3
    print(f"{report.articles} articles, {report.chunks} chunks, generation {report.generation or '-'}")
    problems = [
        (report.dead_writer, "a writer died mid-session (its work is uncommitted)"),
        (report.orphan_articles, f"{len(report.orphan_articles)} half-written article(s): chunks without a record"),
        (report.incomplete_articles, f"{len(report.incomplete_articles)} article(s) whose chunk count disagrees "
                                     "with their record"),
        (report.unreadable_vectors, f"{len(report.unreadable_vectors)} chunk vector(s) Chroma cannot read, in "
                                    f"{len(report.unreadable_articles)} article(s)"),
        (report.lexical_stale, "the BM25 index does not hold exactly the stored chunks"),
    ]
    for found, message in problems:
        if found:
            print(f"  problem: {message}")
    for line in report.repaired:
        print(f"  repaired: {line}")
    if report.ok:
        print("ok: the store, the BM25 index and the index state agree")
    elif not report.repaired:
        print("run `rag check --repair` to fix these")
        return 3
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    # The web app is named by string so that rag/ never imports web/.
    uvicorn.run("web.app:create_app", factory=True, host=args.host, port=args.port, log_level="info")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import run_cli

    return run_cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Grounded question answering over news articles.")
    parser.add_argument("--index-dir", help="index folder (default: RAG_INDEX_DIR or ./index)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add or update articles from files or folders")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--k", type=int, default=None, help="passages to read (1-50)")
    p.add_argument("--since", help="only articles published on or after YYYY-MM-DD")
    p.add_argument("--until", help="only articles published on or before YYYY-MM-DD")
    p.add_argument("--as-of", dest="as_of", help="time of asking, YYYY-MM-DD: favours recent articles")
    p.add_argument("--json", action="store_true", help="print the answer object as JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("serve", help="serve the web chat")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("eval", help="run a question set and write metrics and a report")
    p.add_argument("--questions", help="a questions.jsonl to run against the current index")
    p.add_argument("--dataset", help="a folder with corpus.jsonl and questions.jsonl, indexed in a cached scratch index")
    p.add_argument("--out", default="eval/out", help="folder for metrics.json, results.jsonl, report.md, report.html")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--as-of", dest="use_as_of", action="store_true",
                   help="use each question's question_date as the time of asking")
    p.add_argument("--json", action="store_true", help="print metrics.json to stdout")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("check", help="check that the store, the BM25 index and the index state agree")
    p.add_argument("--repair", action="store_true", help="fix what disagrees (re-embeds damaged articles)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    sub.add_parser("list", help="list indexed articles").set_defaults(func=cmd_list)
    sub.choices["list"].add_argument("--json", action="store_true")
    sub.add_parser("stats", help="index statistics").set_defaults(func=cmd_stats)
    p = sub.add_parser("delete", help="remove an article and its chunks")
    p.add_argument("article_id")
    p.set_defaults(func=cmd_delete)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
