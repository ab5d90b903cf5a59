"""The span reader: the bundled all-MiniLM-L6-v2 fine-tuned here for extractive question answering.

`eval/train_reader.py` trains it (SQuADShifts, then news) and writes `span_reader/reader.safetensors`: the weight
changes as a low-rank adapter, and the QA head, over the bundled model whose sha256 is verified. The first use on a
machine merges the adapter into the model once, exports it to ONNX with torch, checks the export's logits against
torch's, and keeps it in the encoder cache; from then on it runs on OpenVINO, without torch, on the model worker,
in bfloat16 where the CPU has it (about twice as fast; the calibration is fitted on what it computes there).

Reading: the question and each passage go through the model as one batch of windows (at most MAX_TOKENS tokens,
overlapping by STRIDE where a passage is longer). Every sentence of the passages gets its best span (start and end
tokens inside it, at most MAX_ANSWER_TOKENS apart), mapped back to exact article offsets through the tokenizer's.
What the scores are worth is fitted on news questions the reader was not trained on (`eval/fit_scoring.py
--reader span` writes `span_reader/calibration.json`): logistic models over the model's scores and the fitted
reader's sentence score turn them into calibrated probabilities for sentences and short answers.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import threading
import uuid
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag.answer.question import QuestionAnalysis
from rag.answer.readers.fitted import FittedReader
from rag.answer.reading import Evidence, Reading, SentenceCandidate, SpanCandidate
from rag.answer.scoring import ScoringModel, logit
from rag.encoders.openvino import OnnxRunner, read_tokenizer
from rag.encoders.worker import shared_worker
from rag.errors import ModelError
from rag.hashing import file_sha256

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).with_name("span_reader")
ADAPTER = SHIPPED / "reader.safetensors"
CALIBRATION = SHIPPED / "calibration.json"
MAX_TOKENS = 384  # a window: the question and as much of a passage as fits
STRIDE = 128  # tokens two windows of one passage share
MAX_QUESTION_TOKENS = 64
MAX_ANSWER_TOKENS = 30
PAD_TOKENS = 32  # a batch of windows is padded to a multiple of this many tokens (masked: logits are unchanged)
WINDOW_SENTENCES = 4  # the fitted reader's best sentences the model reads, each with its neighbours
EXPORT_FORMAT = 2  # bump when the export's layout or meaning changes
MAX_LOGIT_GAP = 1e-3  # the export's logits may differ from torch's by this much at most
# A compile in bfloat16 against torch in float32 on the probe windows: rounding moves a logit by about 0.1 (0.15 at
# most, over the windows of 60 news questions); a broken compile moves it by far more.
MAX_OPEN_LOGIT_GAP = 0.5
PROBES_FILE = "probes.npz"  # the probe windows and torch's logits for them, kept with the export
_TOKENIZING = threading.Lock()
_OPENING = threading.Lock()
_OPENED: dict[tuple[Path, bool], tuple] = {}  # (export folder, bfloat16) -> (compiled model, tokenizer), once each

SENTENCE_FEATURES = ("fitted_logit", "qa_margin", "qa_share", "qa_rank")
SPAN_FEATURES = ("qa_margin", "qa_log_probability", "sentence_fitted_logit", "tokens", "qa_top")


@dataclass(frozen=True)
class ExportSpec:
    key: str  # sha256 of the base weights and of the adapter: an export of other weights is never used
    inputs: tuple[str, ...]
    max_logit_gap: float  # measured against torch when exported
    format: int = EXPORT_FORMAT


def reader_key(base_sha256: str, adapter: Path) -> str:
    return f"{base_sha256[:16]}{file_sha256(adapter)[:16]}"


class QAModel:
    """The span model's start and end logits for batches of token windows, on OpenVINO; exported on first use.
    Thread-safe; its calls run on the process's model worker."""

    def __init__(
        self,
        base_dir: Path,
        base_sha256: str,
        cache_dir: Path,
        adapter: Path = ADAPTER,
        threads: int = 2,
        bfloat16: bool = False,
    ) -> None:
        self.base_dir, self.base_sha256, self.adapter = base_dir, base_sha256, adapter
        self.cache_dir, self.threads, self.bfloat16 = cache_dir, threads, bfloat16
        self._runner = self._tokenizer = None
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        return self.cache_dir / f"reader-{reader_key(self.base_sha256, self.adapter)}-v{EXPORT_FORMAT}"

    def load(self):
        """The compiled model and the tokenizer, exported first if need be. One per export in a process:
        pipelines that read with the same weights (an eval's scratch indexes, tests) share them."""
        with self._lock:
            if self._runner is None:
                if not self.adapter.is_file():
                    raise ModelError(f"The span reader's weights {self.adapter} are missing; reinstall the package.")
                folder = self.folder
                with _OPENING:
                    if (folder, self.bfloat16) not in _OPENED:
                        if self._read_spec(folder) is None:
                            self._export(folder)
                        _OPENED[folder, self.bfloat16] = self._open(folder)
                    self._runner, self._tokenizer = _OPENED[folder, self.bfloat16]
        return self._runner, self._tokenizer

    def _read_spec(self, folder: Path) -> ExportSpec | None:
        try:
            raw = json.loads((folder / "reader.json").read_text())
            spec = ExportSpec(**{**raw, "inputs": tuple(raw["inputs"])})
        except (OSError, ValueError, TypeError, KeyError):
            return None
        ok = spec.format == EXPORT_FORMAT and spec.key == reader_key(self.base_sha256, self.adapter)
        files = ("model.onnx", "tokenizer.json", PROBES_FILE)
        return spec if ok and all((folder / f).is_file() for f in files) else None

    def _open(self, folder: Path):
        """The export compiled in this process's precision, checked on the probe windows against torch's logits."""
        try:
            runner = OnnxRunner(folder / "model.onnx", self.threads, self.bfloat16)
            with np.load(folder / PROBES_FILE) as probes:
                start, end = runner.run({k: probes[k] for k in ("input_ids", "attention_mask", "token_type_ids")})
                mask = probes["attention_mask"].astype(bool)
                gap = float(max(np.abs(start - probes["start"])[mask].max(), np.abs(end - probes["end"])[mask].max()))
            if not gap <= MAX_OPEN_LOGIT_GAP:
                raise ModelError(f"the compiled span reader's logits differ from the model's by {gap:.3f}")
            return runner, read_tokenizer(folder / "tokenizer.json")
        except (ModelError, OSError, KeyError, ValueError) as e:
            raise ModelError(f"{e}. Delete {folder} to export the span reader again.") from e

    def _export(self, folder: Path) -> None:
        """Merge the adapter into the base model, export it to ONNX in float32, check its logits against torch's,
        and keep it in ``folder``. A few seconds, once per weights."""
        import torch

        found = file_sha256(self.base_dir / "model.safetensors")
        if found != self.base_sha256:
            raise ModelError(
                f"The base model's weights in {self.base_dir} have sha256 {found}, not {self.base_sha256}."
            )
        model, tokenizer = merged_model(self.base_dir, self.adapter)
        inputs = ("input_ids", "attention_mask", "token_type_ids")
        sample = tokenizer(
            ["How much aid was announced?"], ["Harris announced aid of $310 million on Monday."], return_tensors="pt"
        )

        class Logits(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask, token_type_ids):
                out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                return out.start_logits, out.end_logits

        folder.parent.mkdir(parents=True, exist_ok=True)
        work = folder.parent / f".export-{uuid.uuid4().hex}"
        work.mkdir()
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    Logits().eval(),
                    tuple(sample[k] for k in inputs),
                    str(work / "model.onnx"),
                    input_names=list(inputs),
                    output_names=["start_logits", "end_logits"],
                    opset_version=17,
                    dynamo=False,
                    dynamic_axes={k: {0: "batch", 1: "tokens"} for k in (*inputs, "start_logits", "end_logits")},
                )
            tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
            gap = _export_gap(model, tokenizer, work / "model.onnx", work / PROBES_FILE)
            if gap > MAX_LOGIT_GAP:
                raise ModelError(f"The span reader's ONNX export differs from the model by {gap:.2e} in a logit.")
            spec = ExportSpec(reader_key(self.base_sha256, self.adapter), inputs, round(gap, 8))
            (work / "reader.json").write_text(json.dumps(asdict(spec), indent=2) + "\n")
            try:
                work.rename(folder)
            except OSError:  # another process's finished export, or a damaged one
                if self._read_spec(folder) is None:
                    shutil.rmtree(folder, ignore_errors=True)
                    work.rename(folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("Exported the span reader to ONNX in %s (largest logit gap to torch %.2e).", folder, gap)

    def logits(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        runner, _ = self.load()
        return shared_worker().run(self._run, runner, ids, types, mask)

    @staticmethod
    def _run(runner, ids, types, mask):
        start, end = runner.run({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return start, end

    @property
    def tokenizer(self):
        return self.load()[1]


def merged_model(base_dir: Path, adapter: Path):
    """The base model as a BERT QA model with the adapter merged in (torch): for export and for the tests."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the QA head is absent from the base: the adapter brings it
    model = AutoModelForQuestionAnswering.from_pretrained(
        str(base_dir), local_files_only=True, torch_dtype=torch.float32
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    state = model.state_dict()
    with safe_open(str(adapter), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k).float() for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    if meta.get("kind") == "lora":
        scale = float(meta["scale"])
        for key in [k for k in tensors if k.endswith(":A")]:
            name = key[:-2]
            if name not in state:
                raise ModelError(f"The span reader's adapter names {name}, which the base model does not have.")
            state[name] += scale * (tensors[name + ":B"] @ tensors[key])
        tensors = {k: v for k, v in tensors.items() if ":" not in k}
    missing = [k for k in tensors if k not in state]
    if missing or "qa_outputs.weight" not in tensors:
        raise ModelError(f"The span reader's weights do not fit the base model (unknown: {missing[:3]}).")
    for k, v in tensors.items():
        state[k] = v
    model.load_state_dict(state)
    return model, tokenizer


def _export_gap(model, tokenizer, onnx_path: Path, probes_path: Path) -> float:
    """The largest difference between the export's logits and torch's, over probe windows of several lengths;
    the windows and torch's logits are kept in ``probes_path``, to check each compile of the export against."""
    import torch

    probes = [
        ("How much aid was announced?", "Harris announced additional aid of $310 million for the region."),
        ("Who won?", "The match ended 3-1. " * 40),
        ("When?", "Tuesday, March 4, 2025 — the bill passed."),
    ]
    enc = tokenizer([q for q, _ in probes], [p for _, p in probes], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc)
    feeds = {k: enc[k].numpy() for k in ("input_ids", "attention_mask", "token_type_ids")}
    np.savez(probes_path, **feeds, start=out.start_logits.numpy(), end=out.end_logits.numpy())
    start, end = OnnxRunner(onnx_path, 1).run(feeds)
    mask = enc["attention_mask"].numpy().astype(bool)
    return float(
        max(np.abs(start - out.start_logits.numpy())[mask].max(), np.abs(end - out.end_logits.numpy())[mask].max())
    )


@dataclass
class Window:
    passage: int  # index into evidence.hits
    ids: list[int]
    types: list[int]
    context: np.ndarray  # positions of the passage's tokens
    starts: np.ndarray  # their article offsets
    ends: np.ndarray


def windows(
    tokenizer, question: str, evidence: Evidence, ranges: list[tuple[int, int, int]] | None = None
) -> list[Window]:
    """The question beside each passage, cut into windows of at most MAX_TOKENS tokens; with ``ranges``
    ((passage index, article start, article end), each inside its passage), beside those parts only."""
    if ranges is None:
        ranges = [(p, hit.chunk.start, hit.chunk.end) for p, hit in enumerate(evidence.hits)]
    out = []
    # Truncation is a setting of the tokenizer object, shared by the threads that answer: one at a time.
    with _TOKENIZING:
        try:
            tokenizer.no_truncation()
            q = tokenizer.encode(question, add_special_tokens=False)
            if len(q.ids) > MAX_QUESTION_TOKENS:
                question = question[: q.offsets[MAX_QUESTION_TOKENS - 1][1]]
            tokenizer.enable_truncation(MAX_TOKENS, stride=STRIDE, strategy="only_second")
            encodings = []
            for p, a, b in ranges:
                chunk = evidence.hits[p].chunk
                encodings.append(tokenizer.encode(question, chunk.text[a - chunk.start : b - chunk.start]))
        finally:
            tokenizer.no_truncation()
    for (p, a, _), first in zip(ranges, encodings):
        for enc in [first, *first.overflowing]:
            seq = np.array([-1 if s is None else s for s in enc.sequence_ids])
            context = np.flatnonzero(seq == 1)
            offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)[context]
            out.append(Window(p, enc.ids, enc.type_ids, context, offsets[:, 0] + a, offsets[:, 1] + a))
    return out


def sentence_ranges(sentences: list[SentenceCandidate], chosen: list[SentenceCandidate]) -> list[tuple[int, int, int]]:
    """Each chosen sentence with the sentence before and after it in its passage, as (passage index, article start,
    article end); ranges that meet in one passage are merged."""
    by_passage: dict[int, list[SentenceCandidate]] = {}
    for c in sentences:
        by_passage.setdefault(c.passage, []).append(c)
    spans: dict[int, list[tuple[int, int]]] = {}
    for c in chosen:
        row = sorted(by_passage[c.passage], key=lambda s: s.start)
        i = next(i for i, s in enumerate(row) if s is c)
        first, last = row[max(i - 1, 0)], row[min(i + 1, len(row) - 1)]
        chunk = c.hit.chunk
        spans.setdefault(c.passage, []).append((max(first.start, chunk.start), min(last.end, chunk.end)))
    out = []
    for passage, parts in sorted(spans.items()):
        merged: list[list[int]] = []
        for a, b in sorted(parts):
            if merged and a <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out += [(passage - 1, a, b) for a, b in merged]
    return out


def batch(ws: list[Window]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Padded to a multiple of PAD_TOKENS: the runtime keeps compiled kernels for each input shape it meets, and
    # unpadded windows made nearly every question a new shape, growing the process by hundreds of megabytes.
    n = -(-max(len(w.ids) for w in ws) // PAD_TOKENS) * PAD_TOKENS
    ids = np.zeros((len(ws), n), dtype=np.int64)
    types = np.zeros((len(ws), n), dtype=np.int64)
    mask = np.zeros((len(ws), n), dtype=np.int64)
    for r, w in enumerate(ws):
        ids[r, : len(w.ids)], types[r, : len(w.ids)], mask[r, : len(w.ids)] = w.ids, w.types, 1
    return ids, types, mask


@dataclass
class SentenceScore:
    best: float = -math.inf  # the best span's start + end logit
    null: float = 0.0  # the no-answer score of the window that span is in
    start: int = 0  # its article offsets
    end: int = 0
    tokens: int = 0
    mass: float = -math.inf  # log of the summed exp(score) of every span inside the sentence


def score_sentences(
    ws: list[Window], start_logits: np.ndarray, end_logits: np.ndarray, sentences: list[SentenceCandidate], hits
) -> tuple[dict[int, SentenceScore], float]:
    """Each sentence's best span (by index into ``sentences``) and the log of the total mass of every span and
    every window's no-answer score (the softmax's denominator)."""
    by_article: dict[str, tuple[list[int], list[int], list[int], list[int]]] = {}
    for k, c in enumerate(sentences):
        by_article.setdefault(c.article_id, ([], [], [], []))
        by_article[c.article_id][0].append(c.start)
        by_article[c.article_id][1].append(c.end)
        by_article[c.article_id][2].append(k)
        by_article[c.article_id][3].append(c.start + c.content_start)
    arrays = {}
    for a, (s, e, k, said) in by_article.items():
        order = np.argsort(s, kind="stable")
        arrays[a] = tuple(np.asarray(v)[order] for v in (s, e, k, said))
    scores: dict[int, SentenceScore] = {}
    total = -math.inf
    offsets = np.arange(MAX_ANSWER_TOKENS)
    for r, w in enumerate(ws):
        s_log, e_log = start_logits[r], end_logits[r]
        null = float(s_log[0] + e_log[0])
        total = np.logaddexp(total, null)
        found = arrays.get(hits[w.passage].chunk.article_id)
        if found is None or not len(w.context):
            continue
        starts, ends, keys, said = found
        # each token's sentence: the last sentence starting at or before it, if the token ends inside it and is
        # past its dateline (a dateline is never an answer: rule "dateline")
        pos = np.searchsorted(starts, w.starts, side="right") - 1
        at = np.maximum(pos, 0)
        inside = (pos >= 0) & (w.ends <= ends[at]) & (w.starts >= said[at])
        sent = np.where(inside, pos, -1)
        n = len(w.context)
        j = np.arange(n)[:, None] + offsets[None, :]
        valid = j < n
        jc = np.minimum(j, n - 1)
        valid &= (sent[:, None] == sent[jc]) & (sent[:, None] >= 0)
        pair = s_log[w.context][:, None] + e_log[w.context][jc]
        pair = np.where(valid, pair, -np.inf)
        for s in np.unique(sent[sent >= 0]):
            rows = sent == s
            block = pair[rows]
            flat = int(np.argmax(block))
            i_row, k = divmod(flat, MAX_ANSWER_TOKENS)
            best = float(block.flat[flat])
            if not math.isfinite(best):
                continue
            mass = float(np.logaddexp.reduce(block[np.isfinite(block)]))
            total = np.logaddexp(total, mass)
            i = int(np.flatnonzero(rows)[i_row])
            key = int(keys[s])
            entry = scores.setdefault(key, SentenceScore())
            entry.mass = float(np.logaddexp(entry.mass, mass))
            if best > entry.best:
                entry.best, entry.null = best, null
                entry.start, entry.end, entry.tokens = int(w.starts[i]), int(w.ends[i + k]), k + 1
    return scores, float(total)


def passage_sentences(evidence: Evidence) -> list[SentenceCandidate]:
    """Every stored sentence of the passages, once, in passage order."""
    out, seen = [], set()
    for p, hit in enumerate(evidence.hits):
        stored = evidence.sentences.get(hit.chunk.id)
        article = evidence.articles.get(hit.chunk.article_id)
        if stored is None or article is None:
            continue
        for a, b in zip(stored.starts.tolist(), stored.ends.tolist()):
            if (article.id, a) not in seen:
                seen.add((article.id, a))
                out.append(SentenceCandidate(p + 1, hit, a, b, article.text[a:b]))
    return out


class SpanReader:
    """Sentences and short answers ranked by the trained span model, calibrated on news (`calibration.json`)."""

    name = "span"

    def __init__(self, model: QAModel, fitted: FittedReader, calibration: Path = CALIBRATION) -> None:
        self.model = model
        self.fitted = fitted
        self.calibration = calibration
        self._scoring: ScoringModel | None = None

    @property
    def scoring(self) -> ScoringModel:
        if self._scoring is None:
            self._scoring = ScoringModel.load(self.calibration, SENTENCE_FEATURES, SPAN_FEATURES)
        return self._scoring

    @property
    def thresholds(self):
        return self.scoring.thresholds

    def warm_up(self) -> None:
        self.fitted.warm_up()
        _ = self.scoring
        self.model.load()

    def read(self, question: QuestionAnalysis, evidence: Evidence) -> Reading:
        sentences, spans = self.candidates(question, evidence)
        if sentences:
            for c, p in zip(sentences, self.scoring.sentence.probabilities(np.stack([c.features for c in sentences]))):
                c.probability = float(p)
            sentences.sort(key=lambda c: (-c.probability, c.passage, c.start))
        if spans:
            for s, p in zip(spans, self.scoring.span.probabilities(np.stack([s.features for s in spans]))):
                s.probability = float(p)
            spans.sort(key=lambda s: (-s.probability, -s.sentence.probability, s.start))
        return Reading(sentences, spans, self.name)

    def candidates(
        self, question: QuestionAnalysis, evidence: Evidence
    ) -> tuple[list[SentenceCandidate], list[SpanCandidate]]:
        """Every sentence of the passages, and the best span in each, with their features, unscored."""
        sentences = self.fitted.rank_sentences(question, evidence)
        if not sentences:
            return [], []
        # The model reads the sentences the fitted reader ranks best, each with its neighbours, not whole passages:
        # a few hundred tokens instead of five passages' worth.
        chosen = sorted(sentences, key=lambda c: -c.probability)[:WINDOW_SENTENCES]
        ws = windows(self.model.tokenizer, question.text, evidence, sentence_ranges(sentences, chosen))
        if not ws:
            return [], []
        start_logits, end_logits = self.model.logits(*batch(ws))
        scores, total = score_sentences(ws, start_logits, end_logits, sentences, evidence.hits)
        ranked = sorted(scores, key=lambda k: -scores[k].best)
        rank = {k: r for r, k in enumerate(ranked)}
        spans = []
        for k, c in enumerate(sentences):
            fitted = logit(c.probability)
            sc = scores.get(k)
            if sc is None:
                c.features = np.array([fitted, -30.0, -30.0, 30.0])
                continue
            c.features = np.array([fitted, sc.best - sc.null, max(sc.mass - total, -30.0), min(rank[k], 30)])
            article = evidence.articles[c.article_id]
            text = article.text[sc.start : sc.end]
            if text.strip():
                spans.append(
                    SpanCandidate(
                        c,
                        sc.start,
                        sc.end,
                        text,
                        "span",
                        features=np.array(
                            [sc.best - sc.null, max(sc.best - total, -30.0), fitted, sc.tokens, float(rank[k] == 0)]
                        ),
                    )
                )
        return sentences, spans
