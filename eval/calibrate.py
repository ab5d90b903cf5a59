"""Fit the extractive answerer's confidence model and abstention threshold on data.

Positives and negatives come from a QA dataset (default: XQuAD/SQuAD under ../shared/datasets):
each question is asked twice against the same index, once as is and once with its gold passage hidden
from retrieval. The other passages of the same article stay, so the second ask is a near miss: same
topic and names, no answer. The label is whether the best sentence the answerer picks contains a gold
answer, so a hidden passage whose answer is repeated elsewhere still counts as answerable.

A third ask swaps one name in the question for a name from elsewhere in the corpus ("How much aid did
Mexico announce?" for "... did Harris announce?"): the words still match the answering sentence, but
the question is about someone else, so it is unanswerable. Without these, nothing in the data teaches
the model that a question's names must be in what answers it.

    python eval/calibrate.py [--dataset DIR] [--limit N]

Prints the fitted weights (for rag/answer.py CONFIDENCE_WEIGHTS / CONFIDENCE_BIAS) and, for a range of
thresholds, abstention precision / recall and false-abstention rate on held-out questions.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import entities  # noqa: E402
from rag.answer import question_entities  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.evaluate import contains, dataset_pipeline, load_questions  # noqa: E402
from rag.retrieve import HybridRetriever  # noqa: E402


def examples(pipeline, questions):
    rows = []
    for q in questions:
        query = pipeline.make_query(q["question"])
        qvec, ranking = pipeline.retrieve(query)
        hidden = set(q["article_ids"])
        for held_out in (False, True):
            ranked = [h for h in ranking.hits if not (held_out and h.chunk.article_id in hidden)]
            hits = HybridRetriever.cap(ranked, query.k, pipeline.settings.max_per_article)
            cands = pipeline.answerer.candidates(query.text, qvec, hits)
            if not cands:
                continue
            best = cands[0]
            label = contains(best.text, q["answers"])
            # Unanswerable for reporting: hidden gold, and no passage that is left holds the answer.
            unanswerable = held_out and not any(contains(h.chunk.text, q["answers"]) for h in hits)
            if held_out and not unanswerable:
                continue
            rows.append((best.features(), float(label), q["id"], unanswerable))
    return rows


def name_pool(pipeline) -> list[str]:
    names = set()
    for a in pipeline.list_articles():
        names.update(e.text for e in entities.find("name", pipeline.get_article(a["id"]).text))
    return sorted(names)


def swapped_examples(pipeline, questions, pool, rng):
    """Near misses made by putting another name from the corpus in place of one of the question's."""
    rows = []
    for q in questions:
        words = q["question"].split()
        names = [e for e in question_entities(q["question"])
                 if not any(ch.isdigit() for ch in e) and not words[0].startswith(e)]
        if not names:
            continue
        name = rng.choice(names)
        gold = " ".join(pipeline.get_article(a).text for a in q["article_ids"]).lower()
        other = next((n for n in (rng.choice(pool) for _ in range(50))
                      if n.lower() not in gold and n.lower() not in q["question"].lower()), None)
        if other is None:
            continue
        query = pipeline.make_query(q["question"].replace(name, other, 1))
        qvec, ranking = pipeline.retrieve(query)
        hits = HybridRetriever.cap(ranking.hits, query.k, pipeline.settings.max_per_article)
        cands = pipeline.answerer.candidates(query.text, qvec, hits)
        if cands:
            rows.append((cands[0].features(), 0.0, q["id"], True))
    return rows


def fit_logistic(X, y, l2=1e-2, steps=4000, lr=0.5):
    w = np.zeros(X.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(X @ w + b)))
        g = p - y
        w -= lr * (X.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return w, b


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "xquad-en-squad11-dev"))
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--index-dir", default=str(ROOT / "index"))
    args = ap.parse_args()
    settings = Settings(index_dir=Path(args.index_dir))
    pipeline, _ = dataset_pipeline(Path(args.dataset), settings)
    questions = load_questions(Path(args.dataset) / "questions.jsonl")
    random.Random(13).shuffle(questions)
    questions = questions[: args.limit]
    half = len(questions) // 2
    pool, rng = name_pool(pipeline), random.Random(7)
    train = examples(pipeline, questions[:half]) + swapped_examples(pipeline, questions[:half], pool, rng)
    test = examples(pipeline, questions[half:]) + swapped_examples(pipeline, questions[half:], pool, rng)
    X = np.array([r[0] for r in train])
    y = np.array([r[1] for r in train])
    w, b = fit_logistic(X, y)
    print("CONFIDENCE_WEIGHTS =", tuple(round(float(v), 2) for v in w))
    print("CONFIDENCE_BIAS =", round(float(b), 2))
    print(f"train: {len(train)} examples, {int(y.sum())} positive")
    Xt = np.array([r[0] for r in test])
    yt = np.array([r[1] for r in test])
    held = np.array([r[3] for r in test])
    p = 1 / (1 + np.exp(-(Xt @ w + b)))
    print(f"test: {len(test)} examples, {int(held.sum())} unanswerable (gold passage hidden and no passage left "
          "holds the answer, or a name swapped)")
    print("threshold  abst_precision  abst_recall  false_abstention(answerable)  answered_correct_rate")
    for t in np.arange(0.2, 0.81, 0.05):
        abst = p < t
        tp = (abst & held).sum()
        prec = tp / max(abst.sum(), 1)
        rec = tp / max(held.sum(), 1)
        fa = (abst & ~held).sum() / max((~held).sum(), 1)
        correct = ((~abst) & (yt == 1)).sum() / max((~abst).sum(), 1)
        print(f"{t:9.2f}  {prec:14.3f}  {rec:11.3f}  {fa:28.3f}  {correct:21.3f}")
    cov = Xt[:, 3]
    print("with the rule 'abstain when a name, number or date of the question is missing from the sentence':")
    for t in (0.2, 0.25, 0.3):
        abst = (p < t) | (cov < 1.0)
        tp = (abst & held).sum()
        print(f"{t:9.2f}  {tp / max(abst.sum(), 1):14.3f}  {tp / max(held.sum(), 1):11.3f}  "
              f"{(abst & ~held).sum() / max((~held).sum(), 1):28.3f}")
    json.dump({"weights": [float(v) for v in w], "bias": float(b)}, sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
