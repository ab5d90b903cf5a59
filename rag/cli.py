"""`rag`: ingest, ask, serve, eval, list, stats, check, delete.

Exit codes: 0 ok, 1 a user error (one clear line, no traceback), 2 usage, 3 `rag check` found problems.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

from rag.config import Settings
from rag.errors import BadInput, RagError


def settings_for(args) -> Settings:
    """Settings from the environment, with --index-dir over RAG_INDEX_DIR."""
    return Settings(**({"index_dir": Path(args.index_dir)} if getattr(args, "index_dir", None) else {}))


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _pipeline(args):
    from rag.pipeline import Pipeline

    return Pipeline(settings_for(args))


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
    from rag.documents.ingester import Progress
    from rag.fetch.sources import split_locations
    from rag.types import IngestReport

    p = _pipeline(args)
    urls, paths = split_locations(args.paths)
    on_total, advance, close = _progress_bar(not args.json and not args.quiet)
    try:
        report = p.index_paths(paths, Progress(on_total, advance)) if paths else IngestReport()
    finally:
        close()
    if urls:
        try:
            p.index_urls(urls, report)
        except BadInput:
            if not paths:
                raise
            # the files were ingested; why each URL was not is in the report
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(
            f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
            f"skipped {len(report.skipped)} ({report.chunks} chunks in {report.seconds:.1f}s)"
        )
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
            confidence = a.get("short_answer_confidence")
            likely = f" ({confidence:.0%} likely right)" if confidence is not None else ""
            lines.append(f"Short answer: {a['short_answer']}{likely}")
        else:
            lines.append("Best evidence (no short answer is likely enough to be right):")
        lines.append(textwrap.fill(a["answer"], 100))
        lines.append("")
        cited = {c["article_id"] for c in a["citations"]}
        listed: set[str] = set()
        for c in a["citations"]:
            when = f", {c['published']}" if c.get("published") else ""
            lines.append(f"[{c['n']}] {c['title']}{when} ({c['article_id']}, chars {c['start']}-{c['end']})")
            lines.append(textwrap.indent(textwrap.fill(f"“{c['quote']}”", 96), "    "))
            for d in c.get("dates") or []:
                lines.append(f"    “{d['text']}” = {d['date']} (counted from the article's date)")
            also = [r for r in c.get("also_reported_by") or [] if r["article_id"] not in cited]
            if also and c["article_id"] not in listed:
                listed.add(c["article_id"])
                reports = ", ".join(
                    f"{r['source'] or r['title']} {r['published'] or ''} ({r['article_id']})" for r in also
                )
                lines.append(textwrap.indent(textwrap.fill(f"also reported by: {reports}", 96), "    "))
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
    print(_count(len(rows), "article"))
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
    print(
        f"{_count(report.articles, 'article')}, {_count(report.chunks, 'chunk')}, generation {report.generation or '-'}"
    )
    problems = [
        (report.dead_writer, "a writer died mid-session (its work is uncommitted)"),
        (report.orphan_articles, f"{len(report.orphan_articles)} half-written article(s): chunks without a record"),
        (
            report.incomplete_articles,
            f"{len(report.incomplete_articles)} article(s) whose chunk count disagrees with their record",
        ),
        (
            report.unreadable_vectors,
            f"{len(report.unreadable_vectors)} chunk vector(s) Chroma cannot read, in "
            f"{len(report.unreadable_articles)} article(s)",
        ),
        (report.lexical_stale, "the BM25 index does not hold exactly the stored chunks"),
        (report.snapshot_damaged, f"the saved snapshot is damaged ({report.snapshot_damaged})"),
    ]
    for found, message in problems:
        if found:
            print(f"  problem: {message}")
    for line in report.repaired:
        print(f"  repaired: {line}")
    if report.ok:
        print("ok: the store, the BM25 index and the index state agree")
    elif report.read_only:
        print(
            "the index is read-only for this process: a process that can write it fixes these with `rag check --repair`"
        )
        return 3
    elif not report.repaired:
        print("run `rag check --repair` to fix these")
        return 3
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    # The web app is named by string so that rag/ never imports web/.
    if args.workers < 1:
        raise BadInput(f"--workers {args.workers}: give 1 or more.")
    # The app (in each worker) reads its settings from the environment.
    if args.index_dir:
        os.environ["RAG_INDEX_DIR"] = str(Path(args.index_dir).resolve())
    if args.refresh_feeds:
        from rag.fetch.schedule import parse_interval

        os.environ["RAG_REFRESH_FEEDS"] = repr(parse_interval(args.refresh_feeds))
    uvicorn.run(
        "web.app:create_app", factory=True, host=args.host, port=args.port, log_level="info", workers=args.workers
    )
    return 0


def cmd_eval(args) -> int:
    from rag.evaluation.command import run_cli

    return run_cli(args, settings_for(args))


def cmd_bench(args) -> int:
    from rag.bench.command import run_cli

    return run_cli(args)


def _ingest_args(p) -> None:
    p.add_argument("paths", nargs="+", metavar="path-or-url", help="files, folders, and http(s) URLs of articles")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _ask_args(p) -> None:
    p.add_argument("question")
    p.add_argument("--k", type=int, default=None, help="passages to read (1-50)")
    p.add_argument("--since", help="only articles published on or after YYYY-MM-DD")
    p.add_argument("--until", help="only articles published on or before YYYY-MM-DD")
    p.add_argument("--as-of", dest="as_of", help="time of asking, YYYY-MM-DD: favours recent articles")
    p.add_argument("--json", action="store_true", help="print the answer object as JSON")


def _serve_args(p) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes on one index; each holds its own encoder, store connection and reader "
        "process (about 0.5 GB of heap at 6,700 articles) and shares the mapped snapshot. One process "
        "already answers on two cores (RAG_READER_PROCESS); more are for machines with more cores",
    )
    p.add_argument(
        "--refresh-feeds",
        metavar="INTERVAL",
        help="refresh the followed feeds this often (e.g. 30m, 2h), one process at a time (RAG_REFRESH_FEEDS)",
    )


def _eval_args(p) -> None:
    p.add_argument("--questions", help="a questions.jsonl to run against the current index")
    p.add_argument("--dataset", help="a folder with corpus.jsonl and questions.jsonl, indexed in a scratch index")
    p.add_argument("--out", default="eval/out", help="folder for metrics.json, results.jsonl, report.md, report.html")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument(
        "--as-of", dest="use_as_of", action="store_true", help="use each question's question_date as the time of asking"
    )
    p.add_argument("--baseline", help="an earlier run's --out folder: report each metric's change and what flipped")
    p.add_argument(
        "--ablate", action="append", metavar="RULE", help="run without a rule (rag/language/rules.py); repeatable"
    )
    p.add_argument("--json", action="store_true", help="print metrics.json to stdout")


def _bench_args(p) -> None:
    p.add_argument(
        "--index-dir",
        dest="index_dir",
        default="index/bench",
        help="index of both RealTime QA corpora (built if missing; about an hour on two cores)",
    )
    p.add_argument("--datasets", help="folder holding the shared datasets (default ../shared/datasets)")
    p.add_argument("--ingest-articles", type=int, default=100, help="articles for the ingest comparison")
    p.add_argument("--repeats", type=int, default=1, help="runs of each ingest pipeline; the median is kept")
    p.add_argument("--queries", type=int, default=940, help="news-scale queries for the latency figures")
    p.add_argument("--only", help="comma-separated sections: ingest, query, update, http, load, uploads")
    p.add_argument("--serve-workers", type=int, default=1, help="`rag serve --workers` for the http and load sections")
    p.add_argument(
        "--serve-env",
        action="append",
        metavar="RAG_NAME=VALUE",
        help="a setting for the measured server only, e.g. RAG_READER_PROCESS=false; repeatable",
    )
    p.add_argument("--out", default="bench.json")
    p.add_argument(
        "--docs",
        metavar="DIR",
        help="measure nothing: write DIR/../MEASUREMENTS.md from DIR/bench.json and DIR/eval-*.json",
    )


def _check_args(p) -> None:
    p.add_argument("--repair", action="store_true", help="fix what disagrees (re-embeds damaged articles)")
    p.add_argument("--json", action="store_true")


def _json_arg(p) -> None:
    p.add_argument("--json", action="store_true")


def _delete_args(p) -> None:
    p.add_argument("article_id")


COMMANDS = [
    ("ingest", "add or update articles from files, folders or URLs", _ingest_args, "cmd_ingest"),
    ("feeds", "follow RSS and Atom feeds: add, list, remove, refresh", None, None),
    ("ask", "answer a question with citations", _ask_args, "cmd_ask"),
    ("serve", "serve the web chat", _serve_args, "cmd_serve"),
    ("eval", "run a question set and write metrics and a report", _eval_args, "cmd_eval"),
    ("bench", "measure ingest, questions and HTTP against real peers; writes bench.json", _bench_args, "cmd_bench"),
    ("check", "check that the store, the BM25 index and the index state agree", _check_args, "cmd_check"),
    ("list", "list indexed articles", _json_arg, "cmd_list"),
    ("stats", "index statistics", lambda p: None, "cmd_stats"),
    ("delete", "remove an article and its chunks", _delete_args, "cmd_delete"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Grounded question answering over news articles.")
    parser.add_argument("--index-dir", help="index folder (default: RAG_INDEX_DIR or ./index)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text, add_args, handler in COMMANDS:
        p = sub.add_parser(name, help=help_text)
        if name == "feeds":
            _feeds_parser(p)
            continue
        add_args(p)
        p.set_defaults(func=globals()[handler])
    return parser


# -- feeds ----------------------------------------------------------------------------------------------------


def _feeds_parser(p) -> None:
    sub = p.add_subparsers(dest="feeds_command", required=True)
    add = sub.add_parser("add", help="follow a feed (checked now); --refresh also fetches its articles now")
    add.add_argument("url")
    add.add_argument("--name", help="a short name (default: the feed's title)")
    add.add_argument("--refresh", action="store_true", help="fetch its articles now")
    add.set_defaults(func=cmd_feeds_add)
    listing = sub.add_parser("list", help="the feeds followed, when each was refreshed, and its last error")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_feeds_list)
    remove = sub.add_parser("remove", help="stop following a feed; its articles stay")
    remove.add_argument("feed", help="its name or URL")
    remove.set_defaults(func=cmd_feeds_remove)
    refresh = sub.add_parser("refresh", help="one pass over the feeds: fetch and ingest new and changed articles")
    refresh.add_argument("feeds", nargs="*", help="names or URLs (default: all)")
    refresh.add_argument("--force", action="store_true", help="also feeds backing off after failures")
    refresh.add_argument("--json", action="store_true")
    refresh.set_defaults(func=cmd_feeds_refresh)


def cmd_feeds_add(args) -> int:
    p = _pipeline(args)
    feed = p.web.add_feed(args.url, args.name)
    print(f"following '{feed.name}' ({feed.url})")
    if args.refresh:
        return _print_refresh(p.web.refresh([feed.url]), json_out=False)
    print("`rag feeds refresh` fetches its articles")
    return 0


def cmd_feeds_list(args) -> int:
    feeds = [f.to_public() for f in _pipeline(args).web.list_feeds()]
    if args.json:
        print(json.dumps(feeds, indent=2))
        return 0
    for f in feeds:
        when = f["last_refresh"] or "never refreshed"
        print(f"{f['name']}\t{f['url']}\t{_count(f['articles'], 'article')}\tlast refreshed {when}")
        if f["last_error"]:
            retry = f", next try after {f['retry_after']}" if f["retry_after"] else ""
            print(f"  last error: {f['last_error']}{retry}")
    print(_count(len(feeds), "feed"))
    return 0


def cmd_feeds_remove(args) -> int:
    feed = _pipeline(args).web.remove_feed(args.feed)
    print(f"stopped following '{feed.name}' ({feed.url}); its {_count(feed.articles, 'article')} stay in the index")
    return 0


def cmd_feeds_refresh(args) -> int:
    return _print_refresh(_pipeline(args).web.refresh(args.feeds, force=args.force), json_out=args.json)


def _print_refresh(outcomes, json_out: bool) -> int:
    if json_out:
        print(json.dumps([o.to_dict() for o in outcomes], indent=2))
    for o in [] if json_out else outcomes:
        r = o.report
        line = f"{o.name}: {o.status}"
        if o.status in ("updated", "unchanged"):
            line += (
                f": {_count(o.entries, 'entry', 'entries')}, {_count(o.fetched, 'page')} fetched; added {r.added}, "
                f"updated {r.updated}, unchanged {r.unchanged}, skipped {len(r.skipped)}"
            )
        print(line + (f" ({o.error})" if o.error else ""))
        for s in r.skipped:
            print(f"  skipped {s.path}: {s.reason}")
    if not outcomes and not json_out:
        print("no feeds followed: `rag feeds add URL` follows one")
    return 3 if any(o.status == "failed" for o in outcomes) else 0


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
