"""How well stories group articles, on hand-labelled pairs of realtimeqa-news-scale articles (eval/story_pairs.jsonl).

    python eval/stories.py [--out docs/measurements/stories.json]

1. The corpus is ingested into a scratch index (index/eval-cache/stories-news-scale) through the real ingester,
   in order of publication, as feeds would bring it: each article is placed in its story as it is written.
2. Over the labelled pairs: purity, of the pairs the index puts in one story, the share labelled one story; recall,
   of the pairs labelled one story, the share it puts in one. Also for the hard half (pairs whose vectors are
   neither near nor far: cosine 0.5-0.85) and the easy half.
3. The same-event threshold (rag.index.stories.SAME_EVENT) is checked the way it was chosen: the stored vectors and
   signatures are placed again, in the same order, for each threshold of a grid; the pairs are split in two by a
   seeded shuffle; the threshold with the highest recall at purity >= 0.9 on the fit half is reported on the check half.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import Settings  # noqa: E402
from rag.documents.parse import read_path  # noqa: E402
from rag.hashing import file_sha256  # noqa: E402
from rag.index import stories  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.types import Article  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "realtimeqa-news-scale"
PAIRS = ROOT / "eval" / "story_pairs.jsonl"
SEED = 20261207
GRID = [round(x, 2) for x in np.arange(0.70, 0.951, 0.025)]
MIN_PURITY = 0.9


def pair_figures(pairs: list[dict], story: dict[str, str]) -> dict:
    together = [p for p in pairs if story.get(p["a"], p["a"]) == story.get(p["b"], p["b"])]
    same = [p for p in pairs if p["same_story"]]
    hits = sum(p["same_story"] for p in together)
    return {
        "pairs": len(pairs),
        "labelled_same": len(same),
        "put_together": len(together),
        "purity": round(hits / len(together), 3) if together else None,
        "recall": round(hits / len(same), 3) if same else None,
    }


def report(pairs: list[dict], story: dict[str, str]) -> dict:
    return {
        "all": pair_figures(pairs, story),
        "hard": pair_figures([p for p in pairs if p["hard"]], story),
        "easy": pair_figures([p for p in pairs if not p["hard"]], story),
    }


def ingest(pipeline: Pipeline, corpus: Path) -> dict:
    articles = [a for a in read_path(corpus, max_bytes=1 << 31) if isinstance(a, Article)]
    articles.sort(key=lambda a: (a.published or "", a.id))
    started = time.perf_counter()
    done = pipeline.index_articles(articles)
    return {"added": done.added, "unchanged": done.unchanged, "seconds": round(time.perf_counter() - started, 1)}


def replace_all(rows: list[tuple], vectors: np.ndarray, same_event: float) -> dict[str, str]:
    """Every article placed again in publication order with this threshold, from the stored vectors and
    signatures, as the ingester would have placed it."""
    dates = np.asarray([stories.date_key(p) for _, p, _ in rows], dtype=np.int64)
    placed = np.zeros(len(rows), dtype=bool)
    ids = [a for a, _, _ in rows]

    def search(vector, n, low, high):
        allowed = placed & (dates >= low) & (dates <= high)
        rows_ = np.flatnonzero(allowed)
        scores = vectors[rows_] @ vector
        top = np.argsort(-scores)[:n]
        return [(ids[rows_[k]], float(scores[k])) for k in top]

    assigner = stories.StoryAssigner([], search, same_event=same_event)
    out = {}
    for k in sorted(range(len(rows)), key=lambda k: (rows[k][1] or "", rows[k][0])):
        article_id, published, text = rows[k]
        out[article_id] = assigner.place(article_id, text, published, vectors[k]).story
        placed[k] = True
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="write the figures here as JSON")
    ap.add_argument("--skip-grid", action="store_true", help="only the index's own stories, not the threshold grid")
    args = ap.parse_args()
    corpus = DATASET / "corpus.jsonl"
    if not corpus.is_file():
        sys.exit(f"{corpus} is missing: this measurement needs ../shared/datasets.")
    pairs = [json.loads(line) for line in PAIRS.open(encoding="utf-8")]
    settings = Settings(index_dir=ROOT / "index" / "eval-cache" / "stories-news-scale", chroma_url=None)
    pipeline = Pipeline(settings)
    ingested = ingest(pipeline, corpus)
    with pipeline.index.reading() as view:
        snapshot = view.snapshot
        story = {a: s or a for a, s, _, _ in snapshot.articles.stories()}
        ids = snapshot.lexical.article_ids
        rows = [(a, snapshot.lexical.published(a), snapshot.articles.get(a).text) for a in ids]
        vectors = np.asarray(snapshot.article_vectors.vectors, dtype=np.float32)
    sizes = np.bincount(np.unique(list(story.values()), return_inverse=True)[1])
    result = {
        "command": "python eval/stories.py" + (f" --out {args.out}" if args.out else ""),
        "corpus": {"path": "realtimeqa-news-scale/corpus.jsonl", "sha256": file_sha256(corpus)},
        "pairs": {"path": "eval/story_pairs.jsonl", "sha256": file_sha256(PAIRS)},
        "settings": {
            "near_copy_jaccard": stories.NEAR_COPY,
            "near_copy_days": stories.NEAR_COPY_DAYS,
            "same_event_cosine": stories.SAME_EVENT,
            "same_event_days": stories.SAME_EVENT_DAYS,
        },
        "ingest": ingested,
        "index": {
            "articles": len(story),
            "stories": int(len(sizes)),
            "in_stories_of_two_or_more": int(sizes[sizes > 1].sum()),
            "largest_story": int(sizes.max()),
        },
        "as_ingested": report(pairs, story),
    }
    if not args.skip_grid:
        order = list(range(len(pairs)))
        random.Random(SEED).shuffle(order)
        fit = [pairs[i] for i in order[: len(pairs) // 2]]
        check = [pairs[i] for i in order[len(pairs) // 2 :]]
        grid = []
        for tau in GRID:
            placed = replace_all(rows, vectors, tau)
            grid.append({"same_event": tau, "fit": pair_figures(fit, placed), "check": pair_figures(check, placed)})
        good = [g for g in grid if (g["fit"]["purity"] or 0) >= MIN_PURITY]
        chosen = max(good, key=lambda g: (g["fit"]["recall"], -g["same_event"])) if good else None
        result["threshold"] = {
            "rule": f"highest recall on the fit half with purity >= {MIN_PURITY}",
            "chosen": chosen["same_event"] if chosen else None,
            "check_half_at_chosen": chosen["check"] if chosen else None,
            "grid": grid,
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
