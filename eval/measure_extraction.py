"""How well a fetched page becomes an article: real news articles served as web pages with a site's furniture
around them (tests/helpers/news_site.py), fetched over loopback by the real client and extracted.

    python eval/measure_extraction.py [--pages 60] [--out docs/measurements/extraction.json]

Figures, over the pages:
- sentences kept: the share of the article's sentences (25 characters or more) found whole in the extracted text;
- furniture dropped: the share of the furniture lines (navigation, cookie banner, share buttons, newsletter box,
  footer, ...) and of the sidebar's related-story titles that are not a line of it;
- title, date and site name: the share of pages where each came out as the article's own.
The articles are a seeded sample of realtimeqa-news-scale's corpus (../shared/datasets).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import Settings  # noqa: E402
from rag.fetch.client import PoliteClient  # noqa: E402
from rag.fetch.sources import WebSources  # noqa: E402
from rag.hashing import file_sha256  # noqa: E402
from rag.index.locks import IndexLocks  # noqa: E402
from tests.helpers.news_site import FURNITURE, NewsSite  # noqa: E402

CORPUS = ROOT.parent / "shared" / "datasets" / "realtimeqa-news-scale" / "corpus.jsonl"
SEED = 20261206
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z“\"])|(?<=[.!?][\"”’)])\s+(?=[A-Z“\"])|\n+")


def squash(text: str) -> str:
    return " ".join(text.split())


def sample(n: int, corpus: Path = CORPUS) -> list[dict]:
    """``n`` articles of the corpus with a title, a date and 400-20,000 characters of text, seeded."""
    rows = [json.loads(line) for line in corpus.open(encoding="utf-8")]
    usable = [r for r in rows if r.get("title") and r.get("published") and 400 <= len(r.get("text", "")) <= 20_000]
    return random.Random(SEED).sample(usable, n)


def measure(n: int, scratch: Path) -> dict:
    articles = sample(n)
    kept = total = dropped = furniture = titles = dates = sites = 0
    worst: list[tuple[float, str]] = []
    leaks: Counter[str] = Counter()
    started = time.perf_counter()
    with NewsSite() as site:
        slugs = [
            site.add(f"a{i}", a["title"], a["text"], a["published"]).split("/")[-1][:-5] for i, a in enumerate(articles)
        ]
        settings = Settings(_env_file=None, index_dir=scratch, fetch_allow_private=True, fetch_host_delay=0)
        web = WebSources(settings, ingester=None, locks=IndexLocks(scratch))
        with PoliteClient(allow_private=True, host_delay=0) as client:
            for slug, a in zip(slugs, articles, strict=True):
                _, got = web.fetch_article(client, f"{site.url}/news/{slug}.html")
                text = squash(got.text) if got else ""
                got_lines = {squash(line) for line in got.text.split("\n")} if got else set()
                sentences = [squash(s) for s in SENTENCE.split(a["text"]) if len(squash(s)) >= 25]
                found = sum(s in text for s in sentences)
                kept, total = kept + found, total + len(sentences)
                worst.append((found / max(1, len(sentences)), a["id"]))
                lines = FURNITURE + site.pages[slug].related
                leaked = [line for line in lines if squash(line) in got_lines]  # a whole line of its own
                dropped += len(lines) - len(leaked)
                leaks.update(leaked)
                furniture += len(lines)
                titles += bool(got) and squash(got.title) == squash(a["title"])
                dates += bool(got) and got.published == a["published"]
                sites += bool(got) and got.source == "The Loopback Ledger"
    return {
        "command": "python eval/measure_extraction.py --pages " + str(n),
        "corpus": {"file": "realtimeqa-news-scale/corpus.jsonl", "sha256": file_sha256(CORPUS)},
        "seed": SEED,
        "pages": n,
        "sentences": total,
        "sentences_kept": round(kept / total, 4),
        "furniture_lines": furniture,
        "furniture_dropped": round(dropped / furniture, 4),
        "title_right": round(titles / n, 4),
        "date_right": round(dates / n, 4),
        "site_name_right": round(sites / n, 4),
        "furniture_kept": dict(leaks.most_common(5)),
        "least_kept": [{"id": i, "kept": round(k, 3)} for k, i in sorted(worst)[:5]],
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pages", type=int, default=60)
    p.add_argument("--out", help="write the figures here as JSON")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        figures = measure(args.pages, Path(scratch))
    print(json.dumps(figures, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
