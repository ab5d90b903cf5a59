"""Where sentence vectors come from: the measurement behind rag/encoders/vectors.py.

    python eval/sentence_vectors.py [--dataset ../shared/datasets/realtimeqa-cnn-2022] [--distractors 250]

Three ways to give every sentence a vector at ingest, compared on a dataset's questions:
- late: pool each sentence's token outputs from its chunk's own pass (one pass per chunk);
- separate: encode each sentence on its own as well (a second pass over all the text);
- sentences only: encode only the sentences, and pool chunk vectors from them (one pass).
It prints (1) how well each ranks the sentences of the gold article by meaning alone (MRR of a sentence
holding the answer) and (2) dense article retrieval (MRR@10, hit@5) with encoded or pooled chunk vectors,
over the gold articles plus a sample of distractors; and the encoding time of each pass.
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

from rag.documents.chunk import chunk_article, split_sentences  # noqa: E402
from rag.documents.parse import read_path  # noqa: E402
from rag.encoders.embedder import Embedder  # noqa: E402
from rag.evaluation.metrics import contains  # noqa: E402
from rag.types import Article  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "realtimeqa-cnn-2022"))
    ap.add_argument("--distractors", type=int, default=250)
    args = ap.parse_args()
    dataset = Path(args.dataset)
    arts = {a.id: a for a in read_path(dataset / "corpus.jsonl", max_bytes=1 << 31) if isinstance(a, Article)}
    questions = [json.loads(line) for line in (dataset / "questions.jsonl").read_text().splitlines()]
    questions = [q for q in questions if q["doc_ids"] and q["doc_ids"][0] in arts]
    gold = sorted({d for q in questions for d in q["doc_ids"]} & set(arts))
    rest = sorted(set(arts) - set(gold))
    random.Random(1).shuffle(rest)
    ids = gold + rest[: args.distractors]
    e = Embedder()
    chunks = [c for i in ids for c in chunk_article(arts[i])]
    texts = [c.embedding_text() for c in chunks]
    spans = [
        [(s.start + len(t) - len(c.text), s.end + len(t) - len(c.text)) for s in split_sentences(c.text)]
        for c, t in zip(chunks, texts)
    ]
    started = time.perf_counter()
    chunk_vectors, late = e.embed_with_spans(texts, spans)
    t_chunks = time.perf_counter() - started
    sentences = [t[a:b] for t, ss in zip(texts, spans) for a, b in ss]
    started = time.perf_counter()
    separate = e.embed_batch(sentences)
    t_sentences = time.perf_counter() - started
    owner = np.repeat(np.arange(len(chunks)), [len(s) for s in spans])
    titles = e.embed_batch([c.title for c in chunks])
    pooled = np.zeros_like(chunk_vectors)
    np.add.at(pooled, owner, separate)
    pooled = (pooled + titles) / np.linalg.norm(pooled + titles, axis=1, keepdims=True)
    late_all = np.concatenate(late)
    print(f"encoding: chunks {t_chunks:.0f} s ({len(chunks)}), sentences {t_sentences:.0f} s ({len(sentences)})")

    by_article: dict[str, list[int]] = {}
    for k, c in enumerate(chunks):
        by_article.setdefault(c.article_id, []).append(k)
    sentence_rows = {a: [r for k in ks for r in np.flatnonzero(owner == k)] for a, ks in by_article.items()}
    for name, mat in (("late", late_all), ("separate", separate)):
        rr = []
        for q in questions:
            rows = sentence_rows[q["doc_ids"][0]]
            labels = [contains(sentences[r], q["answers"]) for r in rows]
            if not any(labels):
                continue
            sims = mat[rows] @ e.embed_query(q["question"])
            rank = next(i for i, j in enumerate(np.argsort(-sims), 1) if labels[j])
            rr.append(1 / rank)
        print(f"answer sentence by meaning, {name:9}: MRR {np.mean(rr):.3f} over {len(rr)} questions")
    for name, mat in (("encoded chunks", chunk_vectors), ("pooled from sentences", pooled)):
        rr, hit5 = [], []
        for q in questions:
            sims = mat @ e.embed_query(q["question"])
            best: dict[str, float] = {}
            for c, s in zip(chunks, sims):
                best[c.article_id] = max(best.get(c.article_id, -1.0), float(s))
            ranking = sorted(best, key=lambda a: -best[a])[:10]
            rank = next((i for i, a in enumerate(ranking, 1) if a in q["doc_ids"]), None)
            rr.append(1 / rank if rank else 0.0)
            hit5.append(bool(rank and rank <= 5))
        print(f"dense article retrieval, {name}: MRR@10 {np.mean(rr):.3f}, hit@5 {np.mean(hit5):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
