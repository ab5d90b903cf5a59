"""Follow-up questions: conversations whose last question leans on an earlier one ("When did she land?"), against
the same questions with the names spelled out, asked alone.

    python eval/follow_ups.py [--out docs/measurements/follow-ups.json]

`eval/conversations.jsonl` holds the conversations, written by hand over the bundled article and RealTime QA
dev (2022) articles: the earlier turns, the follow-up, its spelled-out form and the gold answers. Each follow-up
is asked as the chat asks it, with the earlier questions as `history`; each spelled-out form without history.

A question counts as answered right when a gold answer is in what the user is shown: the short answer when one
is shown, else the cited sentences. Also reported: the short answers shown, and how many of them are right.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import Settings  # noqa: E402
from rag.evaluation.metrics import contains  # noqa: E402
from rag.evaluation.runner import dataset_pipeline  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402

CONVERSATIONS = ROOT / "eval" / "conversations.jsonl"
DEV = ROOT.parent / "shared" / "datasets" / "realtimeqa-cnn-2022"


def shown(answer: dict) -> str:
    """What the user reads as the answer: the short answer, else the cited sentences."""
    if answer["abstained"]:
        return ""
    return answer["short_answer"] or " ".join(c["quote"] for c in answer["citations"])


def score(answer: dict, golds: list[str]) -> dict:
    return {
        "right": contains(shown(answer), golds),
        "short": answer["short_answer"],
        "short_right": bool(answer["short_answer"]) and contains(answer["short_answer"], golds),
        "abstained": answer["abstained"],
    }


def run(pipeline: Pipeline, conversation: dict) -> dict:
    earlier = list(conversation["turns"])
    for i in range(1, len(earlier)):  # the earlier turns are asked too, as a user would, each with its own history
        pipeline.ask(pipeline.request(earlier[i], history=earlier[:i]))
    follow = pipeline.ask(pipeline.request(conversation["question"], history=earlier)).to_dict()
    spelled = pipeline.ask(pipeline.request(conversation["spelled"])).to_dict()
    return {
        "id": conversation["id"],
        "set": conversation["set"],
        "follow_up": score(follow, conversation["answers"]),
        "spelled": score(spelled, conversation["answers"]),
    }


def summary(rows: list[dict]) -> dict:
    def rate(key: str, field: str) -> float:
        return round(sum(r[key][field] for r in rows) / max(1, len(rows)), 3)

    out = {"conversations": len(rows)}
    for key in ("follow_up", "spelled"):
        out[key] = {
            "right": rate(key, "right"),
            "abstained": rate(key, "abstained"),
            "short_answers_shown": sum(bool(r[key]["short"]) for r in rows),
            "short_answers_right": sum(r[key]["short_right"] for r in rows),
        }
    out["gap_points"] = round(100 * (out["spelled"]["right"] - out["follow_up"]["right"]), 1)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", help="write the figures here as JSON")
    p.add_argument("--details", help="write each conversation's outcome here as JSONL")
    args = p.parse_args()
    conversations = [json.loads(line) for line in CONVERSATIONS.open(encoding="utf-8")]
    settings = Settings()
    bundled = Pipeline(settings.model_copy(update={"index_dir": settings.index_dir / "eval-cache" / "bundled"}))
    bundled.index_paths([ROOT / "index" / "articles"])
    dev, _ = dataset_pipeline(DEV, settings, progress=False, embedder=bundled.embedder)
    started = time.perf_counter()
    rows = [run(bundled if c["set"] == "bundled" else dev, c) for c in conversations]
    figures = {
        "command": "python eval/follow_ups.py" + (f" --out {args.out}" if args.out else ""),
        "reader": settings.reader,
        **summary(rows),
        "by_set": {s: summary([r for r in rows if r["set"] == s]) for s in sorted({r["set"] for r in rows})},
        "follow_ups_wrong_where_spelled_right": [
            r["id"] for r in rows if r["spelled"]["right"] and not r["follow_up"]["right"]
        ],
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(figures, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    if args.details:
        Path(args.details).write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
