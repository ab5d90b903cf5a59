"""How well stories group articles, and how well "sources differ" is told, on hand-labelled realtimeqa-news-scale
articles (eval/story_pairs.jsonl, eval/sources_differ_cases.jsonl).

    python eval/stories.py [--out docs/measurements/stories.json]

1. The corpus is ingested into a scratch index (index/eval-cache/stories-news-scale) through the real ingester,
   in order of publication, as feeds would bring it: each article is placed in its story as it is written.
2. Over the labelled pairs: purity, of the pairs the index puts in one story, the share labelled one story; recall,
   of the pairs labelled one story, the share it puts in one. Also for the hard half (pairs whose vectors are
   neither near nor far: cosine 0.5-0.85) and the easy half.
3. The same-event threshold (rag.index.stories.SAME_EVENT) is chosen, and with --write written to
   rag/index/stories.json: the stored vectors and
   signatures are placed again, in the same order, for each threshold of a grid; the pairs are split in two by a
   seeded shuffle; the threshold with the highest recall at purity >= 0.9 on the fit half is reported on the check half.
4. "Sources differ", on labelled cases: a question, the sentence an answer cites, and another article that reports
   the same event. Each is labelled by hand: the other article gives the asked quantity the same value (agree), a
   different one later (update) or the same day (conflict), or only a different quantity that looks alike
   (different: "44 arrested by ICE" against "49 arrested by the police on Thursday"). The comparison
   (rag.answer.agreement) is run on each pair; precision and recall are for "sources differ" (update or conflict).
   How often the two articles share a story is reported too: only then does an answer compare them. The rules of
   the comparison were written while reading the "fit" cases; the "check" cases were labelled after, and are the
   figure to trust.
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

from rag.answer import agreement  # noqa: E402
from rag.answer.agreement import Comparison, differ_kind  # noqa: E402
from rag.answer.question import analyse  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.documents.parse import read_path  # noqa: E402
from rag.hashing import file_sha256  # noqa: E402
from rag.index import stories  # noqa: E402
from rag.language import rules  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.types import Answer, Article, Citation  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "realtimeqa-news-scale"
PAIRS = ROOT / "eval" / "story_pairs.jsonl"
CASES = ROOT / "eval" / "sources_differ_cases.jsonl"
DIFFER = ("update", "conflict")
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


def judge(pipeline: Pipeline, snapshot, case: dict) -> dict:
    """What the comparison says of one labelled case: agree, update, conflict, or why it said nothing."""
    reports = stories.StoryView(snapshot)
    cited, other = case["cited"], case["other"]
    record = reports.record(cited["article_id"])
    quote = reports.text(cited["article_id"])[cited["start"] : cited["end"]]
    citation = Citation(
        n=1,
        article_id=cited["article_id"],
        title=record["title"],
        url=record["url"],
        published=record["published"],
        chunk_id=reports.chunk_at(cited["article_id"], cited["start"], cited["end"]),
        start=cited["start"],
        end=cited["end"],
        quote=quote,
        source=record["source"],
    )
    answer = Answer(case["question"], f"{quote} [1]", None, False, [citation], [])
    analysis = analyse(case["question"], pipeline.parts.analyzer, snapshot.lexical.idf)
    comparison = Comparison(analysis, pipeline.parts.analyzer, reports)
    found = comparison.anchor(answer)
    said = "no asked value cited"
    if found is not None:
        anchor, vector, frame = found
        statement = comparison.statement(other, vector, frame)
        if statement is None:
            said = "not stated"
        elif agreement.same_figure(statement.value, anchor.value):
            said = "agree"
        else:
            said = differ_kind(
                [(record["published"], anchor.value.key), (reports.record(other)["published"], statement.value.key)]
            )
    story = snapshot.articles.story_of
    return {**case, "said": said, "same_story": story(cited["article_id"]) == story(other)}


def differ_figures(judged: list[dict]) -> dict:
    said = [j for j in judged if j["said"] in DIFFER]
    truly = [j for j in judged if j["label"] in DIFFER]
    hits = [j for j in said if j["label"] in DIFFER]
    in_story = [j for j in hits if j["same_story"]]
    return {
        "cases": len(judged),
        "labels": {k: sum(j["label"] == k for j in judged) for k in ("agree", "update", "conflict", "different")},
        "said_differ": len(said),
        "precision": round(len(hits) / len(said), 3) if said else None,
        "recall": round(len(hits) / len(truly), 3) if truly else None,
        "kind_right": f"{sum(j['said'] == j['label'] for j in hits)} of {len(hits)}",
        "recall_within_stories": round(len(in_story) / len(truly), 3) if truly else None,
        "pairs_in_one_story": f"{sum(j['same_story'] for j in judged)} of {len(judged)}",
        "mistakes": [
            {"question": j["question"], "label": j["label"], "said": j["said"], "note": j["note"]}
            for j in judged
            if (j["said"] in DIFFER) != (j["label"] in DIFFER)
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="write the figures here as JSON")
    ap.add_argument("--skip-grid", action="store_true", help="only the index's own stories, not the threshold grid")
    ap.add_argument("--write", action="store_true", help="write the chosen threshold to rag/index/stories.json")
    ap.add_argument("--index", type=Path, help="the scratch index (default index/eval-cache/stories-news-scale)")
    args = ap.parse_args()
    corpus = DATASET / "corpus.jsonl"
    if not corpus.is_file():
        sys.exit(f"{corpus} is missing: this measurement needs ../shared/datasets.")
    pairs = [json.loads(line) for line in PAIRS.open(encoding="utf-8")]
    index = args.index or ROOT / "index" / "eval-cache" / "stories-news-scale"
    settings = Settings(index_dir=index, chroma_url=None)
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
        "command": "python eval/stories.py"
        + (" --write" if args.write else "")
        + (f" --out {args.out}" if args.out else ""),
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
    cases = [json.loads(line) for line in CASES.open(encoding="utf-8")]
    judged = [judge(pipeline, snapshot, c) for c in cases]
    result["sources_differ"] = {
        "cases": {"path": "eval/sources_differ_cases.jsonl", "sha256": file_sha256(CASES)},
        "same_quantity_cosine": agreement.SAME_QUANTITY,
        **{split: differ_figures([j for j in judged if j["split"] == split]) for split in ("check", "fit")},
        "without_rule": {},
    }
    for rule in ("rounded-figure",):
        with rules.disabled(rule):
            ablated = [judge(pipeline, snapshot, c) for c in cases]
        result["sources_differ"]["without_rule"][rule] = {
            split: {
                k: v for k, v in differ_figures([j for j in ablated if j["split"] == split]).items() if k != "mistakes"
            }
            for split in ("check", "fit")
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
    if args.write:
        if args.skip_grid or result["threshold"]["chosen"] is None:
            sys.exit("--write needs the threshold grid, and a threshold that reaches the purity it asks for.")
        stories.FITTED.write_text(
            json.dumps(
                {
                    "same_event_cosine": result["threshold"]["chosen"],
                    "rule": result["threshold"]["rule"],
                    "check_half": result["threshold"]["check_half_at_chosen"],
                    "pairs_sha256": result["pairs"]["sha256"],
                    "corpus_sha256": result["corpus"]["sha256"],
                    "command": "python eval/stories.py --write",
                },
                indent=2,
            )
            + "\n"
        )
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
