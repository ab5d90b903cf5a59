"""Fit the reader's scoring (rag/answer/weights.json) on news questions disjoint from the dev sets.

    python eval/fit_scoring.py --index-dir DIR [--queries FILE] [--out rag/answer/weights.json] [--ablate RULE]

Data: the 2023-2026 quiz queries of ../shared/datasets/realtimeqa-news-scale (never the 2022 dev questions nor
XQuAD), asked against an index that holds that folder's corpus (build it with `rag ingest`, or use
`rag bench`'s). Distant supervision: for the queries whose answer string occurs in one of their own search
documents, a sentence that contains the answer is a positive. Each query is asked as of its quiz date and
without a date, and once more with one of its names swapped for another name from the corpus, which makes it
unanswerable ("Which airline gave miles to Delta passengers?"): every sentence is then a negative.

Fitted, with scikit-learn's logistic regression, in two stages:
1. sentences: does this sentence hold the answer?
2. short answers: is this span the answer? (its sentence's out-of-fold score is one feature)
Then, from out-of-fold predictions (5 folds, grouped by query):
- the short-answer threshold: the lowest at which the shown short answers are right at least 85% of the time;
- the abstain threshold: the highest at which at most 5% of the questions whose passages hold the answer
  abstain ("abstain only when nothing supports an answer");
- the citation ratio: further sentences (up to 3) are cited while their probability is at least this share of
  the best's; the highest ratio whose answer-in-cited rate reaches 95% of the best ratio's.
Deterministic: fixed seeds, sorted inputs. The output names the data by its sha256.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))

from rag.answer.decide import decide  # noqa: E402
from rag.answer.features import SENTENCE_FEATURES, SPAN_FEATURES, SentenceFeaturizer, SpanFeaturizer  # noqa: E402
from rag.answer.question import analyse  # noqa: E402
from rag.answer.reading import Reading, SentenceCandidate, SpanCandidate, Thresholds  # noqa: E402
from rag.answer.scoring import Logistic, ScoringModel, logit  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.evaluation.metrics import contains, short_answer_right  # noqa: E402
from rag.hashing import file_sha256  # noqa: E402
from rag.language import rules  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "realtimeqa-news-scale"
FOLDS = 5
SEED = 20231101
TARGET_PRECISION = 0.85
MIN_SHOWN = 10  # a threshold met by fewer shown answers than this is luck as much as precision
ANSWERED_WITH_EVIDENCE = 0.95  # at most 5% of questions whose passages hold the answer may abstain
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
# Set iteration order follows the hash seed, and a threaded BLAS sums in a varying order: both are fixed so that
# two runs fit the same weights to the last bit.
DETERMINISTIC = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CITED_SHARE_OF_BEST = 0.95  # past this, a further citation adds reading more than it adds answers
CLEAR_SUPPORT_WORDS = 2  # as the news training labels: the answer string beside two of the question's words


@dataclass
class Asked:
    """One question as asked (a query, in one variant), with its sentence candidates and labels."""

    qid: str
    variant: str  # dated, undated, swapped
    answers: list[str]
    sentences: list[SentenceCandidate]
    labels: np.ndarray
    analysis: object = None
    spans: list[SpanCandidate] = field(default_factory=list)
    span_labels: np.ndarray | None = None

    @property
    def answerable(self) -> bool:
        return self.variant != "swapped"

    @property
    def supported(self) -> bool:
        return bool(self.labels.any())

    @property
    def weakly_supported(self) -> bool:
        """The answer string is in the passages, but never in a sentence that shares two words with the question:
        mostly a string from another story ("four sides heading into the tournament" for South Africa's four
        titles), where whether a span is right says little about the reader."""
        from train_reader import content_words

        words = content_words(self.analysis.text)
        return self.supported and not any(
            len(words & content_words(c.text)) >= CLEAR_SUPPORT_WORDS for c, y in zip(self.sentences, self.labels) if y
        )


def load_queries(path: Path, corpus_texts: dict[str, str]) -> list[dict]:
    """The queries whose answer string occurs in one of their own search documents, sorted by id."""
    usable = []
    for line in path.read_text().splitlines():
        q = json.loads(line)
        docs = [corpus_texts.get(d, "") for d in q.get("search_result_doc_ids", [])]
        if q.get("answers") and any(contains(d, q["answers"]) for d in docs):
            usable.append(q)
    return sorted(usable, key=lambda q: q["id"])


def name_pool(corpus_titles: list[str]) -> list[str]:
    names = set()
    for t in corpus_titles:
        names.update(m.group(0) for m in re.finditer(r"\b[A-Z][a-z]{3,}(?:\s[A-Z][a-z]{3,})?\b", t))
    return sorted(names)


def swapped(
    question: str, names: tuple[str, ...], pool: list[str], answers: list[str], rng: random.Random
) -> str | None:
    words = question.split()
    candidates = [
        n
        for n in names
        if not any(ch.isdigit() for ch in n) and not words[0].startswith(n) and len(n) > 2 and n in question
    ]
    if not candidates:
        return None
    name = rng.choice(candidates)
    for _ in range(50):
        other = rng.choice(pool)
        if other.lower() not in question.lower() and not any(other.lower() in a.lower() for a in answers):
            return question.replace(name, other, 1)
    return None


@dataclass
class Retrieved:
    """One question as asked, after retrieval: what reading needs. Retrieval runs once; the features are
    computed again for each rule left out."""

    qid: str
    variant: str
    answers: list[str]
    prepared: object
    idf: object


def retrieve_all(pipeline: Pipeline, queries: list[dict], pool: list[str]) -> list[Retrieved]:
    rng = random.Random(SEED)
    out: list[Retrieved] = []
    started = time.perf_counter()
    for i, q in enumerate(queries):
        for variant, as_of in (("dated", q.get("question_date")), ("undated", None)):
            try:
                prepared = pipeline.prepare(pipeline.request(q["question"], as_of=as_of))
            except RagError:
                continue
            idf = pipeline.lexical.idf
            out.append(Retrieved(q["id"], variant, q["answers"], prepared, idf))
            if variant == "dated":
                other = swapped(q["question"], prepared.analysis.names, pool, q["answers"], rng)
                if other:
                    out.append(
                        Retrieved(
                            q["id"],
                            "swapped",
                            q["answers"],
                            pipeline.prepare(pipeline.request(other, as_of=as_of)),
                            idf,
                        )
                    )
        if (i + 1) % 100 == 0:
            print(f"  asked {i + 1}/{len(queries)} queries ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return out


def featurize(retrieved: list[Retrieved], analyzer, reader=None) -> list[Asked]:
    """Analyse each question and measure its sentences, under the rules switched on now; with the span
    ``reader``, its sentences and spans, with the model's scores among their features."""
    featurizer = SentenceFeaturizer(analyzer)
    asked = []
    for r in retrieved:
        evidence = r.prepared.evidence
        analysis = analyse(
            r.prepared.query.text, analyzer, r.idf, context=" ".join(h.chunk.text for h in evidence.hits)
        )
        spans = []
        if reader is None:
            sentences = featurizer.candidates(analysis, evidence)
        else:
            sentences, spans = reader.candidates(analysis, evidence)
        labels = np.array([r.variant != "swapped" and contains(s.text, r.answers) for s in sentences], dtype=bool)
        a = Asked(r.qid, r.variant, r.answers, sentences, labels, analysis)
        if reader is not None:
            a.spans = spans
            a.span_labels = np.array(
                [a.answerable and short_answer_right(s.text, a.answers) for s in spans], dtype=bool
            )
        asked.append(a)
    return asked


def folds_of(asked: list[Asked]) -> dict[str, int]:
    ids = sorted({a.qid for a in asked})
    random.Random(SEED).shuffle(ids)
    return {qid: i % FOLDS for i, qid in enumerate(ids)}


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float, names: tuple[str, ...]) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=c, max_iter=5000, solver="lbfgs")
    model.fit((x - mean) / scale, y)
    return Logistic(names, mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]))


def out_of_fold(rows: list[tuple[str, np.ndarray, bool]], fold: dict[str, int], names, grid=C_GRID):
    """Choose C by out-of-fold log loss; return (C, out-of-fold probabilities, log loss by C)."""
    groups = np.array([fold[g] for g, _, _ in rows])
    x = np.stack([r[1] for r in rows]).astype(np.float64)
    y = np.array([r[2] for r in rows], dtype=bool)
    losses, preds = {}, {}
    for c in grid:
        p = np.zeros(len(rows))
        for k in range(FOLDS):
            train, test = groups != k, groups == k
            if y[train].all() or not y[train].any():
                p[test] = y[train].mean()
                continue
            p[test] = fit_logistic(x[train], y[train], c, names).probabilities(x[test])
        p = np.clip(p, 1e-6, 1 - 1e-6)
        losses[c] = float(-np.mean(y * np.log(p) + (~y) * np.log(1 - p)))
        preds[c] = p
    best = min(grid, key=lambda c: (losses[c], c))
    return best, preds[best], losses, x, y


def auc(y: np.ndarray, p: np.ndarray) -> float:
    order = np.argsort(p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    pos = y.sum()
    neg = len(y) - pos
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / max(pos * neg, 1))


def decide_offline(a: Asked, ratio: float, short_t: float, abstain_t: float):
    """What the answerer does with these probabilities: rag.answer.decide itself."""
    d = decide(Reading(a.sentences, a.spans), Thresholds(abstain_t, short_t, ratio))
    return d.abstain, d.cited, d.short


def choose_thresholds(asked: list[Asked]) -> tuple[Thresholds, dict]:
    answerable = [a for a in asked if a.answerable]
    supported = [a for a in answerable if a.supported]
    # Abstain: the highest threshold at which at most 5% of questions with the answer in their passages abstain.
    tops = np.array(sorted(a.sentences[0].probability for a in supported))
    abstain_t = float(tops[int(np.floor((1 - ANSWERED_WITH_EVIDENCE) * len(tops)))]) if len(tops) else 0.0
    # Citation ratio: how far below the best sentence a further one may score and still be cited.
    ratio_report = {}
    for ratio in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3):
        held = cited_n = right_n = 0
        for a in answerable:
            abstained, cited, _ = decide_offline(a, ratio, 1.1, abstain_t)
            if abstained:
                continue
            held += any(contains(c.text, a.answers) for c in cited)
            cited_n += len(cited)
            right_n += sum(contains(c.text, a.answers) for c in cited)
        ratio_report[ratio] = {
            "answer_in_cited": held / max(len(answerable), 1),
            "citation_precision": right_n / max(cited_n, 1),
            "cited_per_answer": cited_n / max(len(answerable), 1),
        }
    # Cite as much as helps, no more: the highest ratio (fewest citations) reaching 95% of the best recall.
    best_recall = max(v["answer_in_cited"] for v in ratio_report.values())
    ratio = max(r for r, v in ratio_report.items() if v["answer_in_cited"] >= CITED_SHARE_OF_BEST * best_recall)
    # Short answer: the lowest threshold whose shown answers are right at least 85% of the time.
    curve = []
    for t in np.round(np.arange(0.05, 1.0, 0.01), 2):
        shown = right = 0
        for a in answerable:
            abstained, _, short = decide_offline(a, ratio, float(t), abstain_t)
            if short is not None:
                shown += 1
                right += short_answer_right(short.text, a.answers)
        if shown:
            curve.append((float(t), right / shown, shown / len(answerable)))
    meeting = [t for t, prec, cov in curve if prec >= TARGET_PRECISION and round(cov * len(answerable)) >= MIN_SHOWN]
    short_t = min(meeting) if meeting else 0.99
    return Thresholds(abstain=round(abstain_t, 4), short_answer=short_t, cite_ratio=ratio), {
        "citation_ratios": ratio_report,
        "short_answer_curve": curve,
    }


def assign(items, probabilities) -> None:
    """Give each candidate, in order, its out-of-fold probability."""
    for item, p in zip(items, probabilities):
        item.probability = float(p)


def fit_sentences(asked: list[Asked], fold: dict[str, int], names=SENTENCE_FEATURES):
    """Stage 1: does this sentence hold the answer? Ranks each question's sentences by out-of-fold probability."""
    rows = [(a.qid, s.features, bool(y)) for a in asked for s, y in zip(a.sentences, a.labels)]
    c, oof, losses, x, y = out_of_fold(rows, fold, names)
    assign([s for a in asked for s in a.sentences], oof)
    for a in asked:
        order = np.argsort([-s.probability for s in a.sentences], kind="stable")
        a.sentences = [a.sentences[i] for i in order]
        a.labels = a.labels[order]
    stats = {
        "sentence_auc": auc(y, oof),
        "sentence_C": c,
        "sentence_log_loss": losses,
        "sentence_rows": len(rows),
        "positives": int(y.sum()),
    }
    return fit_logistic(x, y, c, names), stats


def fit_spans(asked: list[Asked], fold: dict[str, int], analyzer, names=SPAN_FEATURES, given: bool = False):
    """Stage 2: is this span the answer? In the sentences as ranked by their out-of-fold scores; the span
    reader's own spans when ``given``."""
    spans = SpanFeaturizer(analyzer)
    rows = []
    for a in asked:
        if not given:
            a.spans = spans.candidates(a.analysis, a.sentences, logit)
            a.span_labels = np.array(
                [a.answerable and short_answer_right(s.text, a.answers) for s in a.spans], dtype=bool
            )
        rows += [(a.qid, s.features, bool(lab)) for s, lab in zip(a.spans, a.span_labels)]
    c, oof, losses, x, y = out_of_fold(rows, fold, names)
    assign([s for a in asked for s in a.spans], oof)
    for a in asked:
        a.spans.sort(key=lambda s: (-s.probability, -s.sentence.probability, s.start))
    stats = {
        "span_auc": auc(y, oof),
        "span_C": c,
        "span_log_loss": losses,
        "span_rows": len(rows),
        "span_positives": int(y.sum()),
    }
    return fit_logistic(x, y, c, names), stats


def without_fitted_features(asked: list[Asked]) -> list[Asked]:
    """A copy of the span reader's candidates with the fitted reader's score taken out of their features (made
    constant): what the fitted reader is worth beside the model."""
    import copy

    from rag.answer.readers import span

    out = copy.deepcopy(asked)
    sentence_col = span.SENTENCE_FEATURES.index("fitted_logit")
    span_col = span.SPAN_FEATURES.index("sentence_fitted_logit")
    for a in out:
        for s in a.sentences:
            s.features = s.features.copy()
            s.features[sentence_col] = 0.0
        for s in a.spans:
            s.features = s.features.copy()
            s.features[span_col] = 0.0
    return out


def fit_all(retrieved: list[Retrieved], analyzer, reader=None, asked: list[Asked] | None = None):
    asked = asked if asked is not None else featurize(retrieved, analyzer, reader)
    fold = folds_of(asked)
    if reader is None:
        sentence_model, sentence_stats = fit_sentences(asked, fold)
        span_model, span_stats = fit_spans(asked, fold, analyzer)
    else:
        from rag.answer.readers import span

        sentence_model, sentence_stats = fit_sentences(asked, fold, span.SENTENCE_FEATURES)
        span_model, span_stats = fit_spans(asked, fold, analyzer, span.SPAN_FEATURES, given=True)
    thresholds, curves = choose_thresholds(asked)
    return (
        asked,
        sentence_model,
        span_model,
        thresholds,
        curves,
        {**evaluate(asked, thresholds), **sentence_stats, **span_stats},
    )


ABLATION_FIGURES = (
    "sentence_auc",
    "top_sentence_holds_answer",
    "answer_in_cited",
    "short_answer_coverage",
    "short_answer_precision",
    "top_span_right_when_supported",
    "swapped_abstained",
    "false_abstention",
)


def ablate_each(retrieved: list[Retrieved], analyzer, out: Path, names: list[str]) -> int:
    """Cross-validated figures with every rule, then without each one: a rule earns its place where taking it
    out makes them worse."""
    rows = []
    for rule in [None, *sorted(names)]:
        rules.disable_everywhere([rule] if rule else [])
        *_, report = fit_all(retrieved, analyzer)
        rows.append((rule or "(all rules)", [report[k] for k in ABLATION_FIGURES]))
        print(rows[-1], file=sys.stderr, flush=True)
    rules.disable_everywhere([])
    base = rows[0][1]
    lines = ["| without | " + " | ".join(ABLATION_FIGURES) + " |", "|---" * (len(ABLATION_FIGURES) + 1) + "|"]
    for name, values in rows:
        cells = [f"{v:.3f}" if name == "(all rules)" else f"{v:.3f} ({v - b:+.3f})" for v, b in zip(values, base)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main() -> int:
    if any(os.environ.get(k) != v for k, v in DETERMINISTIC.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **DETERMINISTIC})
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index-dir", required=True, help="an index holding the realtimeqa-news-scale corpus")
    ap.add_argument("--dataset", default=str(DATASET))
    ap.add_argument("--out", default=None, help="where to write the weights (default: do not write)")
    ap.add_argument("--ablate", action="append", default=[], help="switch a rule off (see rag/language/rules.py)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument(
        "--reader",
        choices=("fitted", "span"),
        default="fitted",
        help="span: calibrate the trained span reader (rag/answer/readers/span_reader/calibration.json), "
        "on the half of the queries its training never saw",
    )
    ap.add_argument("--sample", default=None, help="write a sample of 40 positive sentences here, to check labels")
    ap.add_argument(
        "--ablate-each",
        default=None,
        metavar="FILE",
        help="refit once without each rule in turn; write the cross-validated figures to FILE (markdown)",
    )
    ap.add_argument(
        "--drop-weak",
        action="store_true",
        help="with --reader span: leave out questions whose answer string is in the passages but never in a sentence "
        "sharing two words with the question (the filter the news training labels use)",
    )
    ap.add_argument("--rules", nargs="*", default=None, help="with --ablate-each: only these rules (default: all)")
    args = ap.parse_args()
    rules.disable_everywhere(args.ablate)
    dataset = Path(args.dataset)
    queries_file, corpus_file = dataset / "queries_unlabeled.jsonl", dataset / "corpus.jsonl"
    corpus = [json.loads(line) for line in corpus_file.read_text().splitlines()]
    queries = load_queries(queries_file, {d["id"]: d["text"] for d in corpus})
    reader = None
    if args.reader == "span":
        from train_reader import share_of

        queries = [q for q in queries if share_of(q["id"]) >= 0.5]  # the reader trained on the other half
    queries = queries[: args.limit]
    pipeline = Pipeline(Settings(_env_file=None, index_dir=Path(args.index_dir), reader="fitted"))
    pipeline.embedder.warm_up()
    analyzer = pipeline.parts.analyzer
    if args.reader == "span":
        from rag.wiring import span_reader

        reader = span_reader(pipeline.settings, analyzer)
        reader.model.load()
    print(f"{len(queries)} queries with the answer in their search documents", file=sys.stderr)
    retrieved = retrieve_all(pipeline, queries, name_pool(sorted(d["title"] or "" for d in corpus)))
    if args.ablate_each:
        return ablate_each(retrieved, analyzer, Path(args.ablate_each), sorted(rules.check(args.rules or rules.RULES)))
    if reader is not None:  # the same candidates, without the fitted reader's score: does it earn its place?
        candidates = featurize(retrieved, analyzer, reader)
        if args.drop_weak:
            weak = sum(a.weakly_supported for a in candidates)
            candidates = [a for a in candidates if not a.weakly_supported]
            print(
                f"{weak} questions whose answer string is never beside the question's words left out", file=sys.stderr
            )
        *_, alone = fit_all(retrieved, analyzer, reader, without_fitted_features(candidates))
        print(json.dumps({"without_the_fitted_reader": {k: alone[k] for k in ABLATION_FIGURES}}, indent=2))
        asked, sentence_model, span_model, thresholds, curves, report = fit_all(retrieved, analyzer, reader, candidates)
        report["without_the_fitted_reader"] = {k: alone[k] for k in ABLATION_FIGURES}
    else:
        asked, sentence_model, span_model, thresholds, curves, report = fit_all(retrieved, analyzer)
    print(json.dumps({k: v for k, v in report.items() if not isinstance(v, dict)}, indent=2))
    print(json.dumps({"thresholds": thresholds.__dict__, "ablated": args.ablate}, indent=2))
    if args.sample:
        write_sample(asked, Path(args.sample))
    if args.out:
        data = {
            "queries": _shown(queries_file),
            "queries_sha256": file_sha256(queries_file),
            "corpus_sha256": file_sha256(corpus_file),
            "queries_used": len(queries),
            "asked": len(asked),
        }
        if reader is not None:
            data["reader_weights_sha256"] = file_sha256(reader.model.adapter)
        write_weights(
            Path(args.out),
            sentence_model,
            span_model,
            thresholds,
            report,
            curves,
            data,
            " ".join(
                [
                    "eval/fit_scoring.py",
                    *(["--reader", "span"] if reader else []),
                    *(["--drop-weak"] if args.drop_weak else []),
                ]
            ),
        )
    return 0


def write_weights(
    out: Path,
    sentence_model,
    span_model,
    thresholds,
    report,
    curves,
    data: dict,
    fitted_by: str = "eval/fit_scoring.py",
) -> None:
    import sklearn

    meta = {
        "version": 1,
        "fitted_by": fitted_by,
        "data": data,
        "scikit_learn": sklearn.__version__,
        "cross_validated": {
            "folds": FOLDS,
            **report,
            "citation_ratios": curves["citation_ratios"],
            "short_answer_curve": curves["short_answer_curve"],
        },
    }
    out.write_text(json.dumps(ScoringModel(sentence_model, span_model, thresholds, meta).to_dict(), indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)


def evaluate(asked: list[Asked], t: Thresholds) -> dict:
    """Out-of-fold figures of the whole decision."""
    answerable = [a for a in asked if a.answerable]
    supported = [a for a in answerable if a.supported]
    unanswerable = [a for a in asked if not a.answerable]
    shown = right = held = abstained_answerable = abstained_supported = 0
    for a in answerable:
        abstained, cited, short = decide_offline(a, t.cite_ratio, t.short_answer, t.abstain)
        abstained_answerable += abstained
        abstained_supported += abstained and a.supported
        held += any(contains(c.text, a.answers) for c in cited)
        if short is not None:
            shown += 1
            right += short_answer_right(short.text, a.answers)
    swapped_abstained = sum(decide_offline(a, t.cite_ratio, t.short_answer, t.abstain)[0] for a in unanswerable)
    top_right = [short_answer_right(a.spans[0].text, a.answers) for a in supported if a.spans]
    return {
        "answerable": len(answerable),
        "supported": len(supported),
        "swapped": len(unanswerable),
        "top_sentence_holds_answer": float(np.mean([a.labels[0] for a in supported if len(a.labels)])),
        "answer_in_cited": held / max(len(answerable), 1),
        "short_answer_precision": right / max(shown, 1),
        "short_answer_coverage": shown / max(len(answerable), 1),
        "top_span_right_when_supported": float(np.mean(top_right)) if top_right else 0.0,
        "false_abstention": abstained_answerable / max(len(answerable), 1),
        "abstained_with_answer_in_passages": abstained_supported / max(len(supported), 1),
        "swapped_abstained": swapped_abstained / max(len(unanswerable), 1),
    }


def _shown(path: Path) -> str:
    """The path as the README names it: relative to the folder beside the checkout when it is there."""
    try:
        return str(path.resolve().relative_to(ROOT.parent))
    except ValueError:
        return str(path)


def write_sample(asked: list[Asked], path: Path) -> None:
    positives = [
        (a.qid, a.answers[0], s.text) for a in asked if a.variant == "dated" for s, y in zip(a.sentences, a.labels) if y
    ]
    sample = random.Random(SEED).sample(positives, min(40, len(positives)))
    path.write_text("".join(f"{qid}\t{ans}\t{text}\n" for qid, ans, text in sample))


if __name__ == "__main__":
    sys.exit(main())
