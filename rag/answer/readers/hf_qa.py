"""A reader around a user's own extractive-QA model (Hugging Face `AutoModelForQuestionAnswering`).

`RAG_READER_MODEL` names a local model folder; it is never downloaded, and its weights' sha256 is checked
when `RAG_READER_MODEL_SHA256` gives one. The model scores every start and end token of each passage; token
spans map back to exact character offsets through the tokenizer's offset mapping, and the score of "no answer"
(the first token, as SQuAD 2.0 models are trained) feeds abstention. How good its answers are depends on the
model brought: this project ships none, and its thresholds are not fitted to it (the settings override them).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ...errors import ModelError
from ...hashing import file_sha256
from ...worker import shared_worker, use_torch_threads
from ..question import QuestionAnalysis
from ..reading import Evidence, Reading, SentenceCandidate, SpanCandidate, Thresholds

MAX_ANSWER_TOKENS = 30
TOP_STARTS = 20
# Not fitted to any particular model: abstain when "no answer" is likelier than 80%, show a short answer the
# model gives at least even odds.
DEFAULT_THRESHOLDS = Thresholds(abstain=0.2, short_answer=0.5, cite_ratio=0.5)


class ExtractiveQAReader:
    name = "extractive-qa"
    thresholds = DEFAULT_THRESHOLDS

    def __init__(self, model_dir: str | Path, sha256: str | None = None, max_length: int = 384, stride: int = 128,
                 threads: int | None = None) -> None:
        self.model_dir = Path(model_dir).expanduser()
        self.sha256 = sha256
        self.max_length = max_length
        self.stride = stride
        self.threads = threads or os.cpu_count() or 1
        self._model = self._tokenizer = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._load()

    def _load(self):
        with self._lock:
            if self._model is None:
                if not self.model_dir.is_dir():
                    raise ModelError(f"RAG_READER_MODEL '{self.model_dir}' is not a folder; give the path of a local "
                                     "extractive-QA model (it is never downloaded).")
                if self.sha256:
                    self._verify()
                try:
                    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

                    self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
                    self._model = AutoModelForQuestionAnswering.from_pretrained(
                        str(self.model_dir), local_files_only=True).eval()
                except Exception as e:
                    raise ModelError(f"Could not load the reader model from {self.model_dir}: {e}") from e
                if not getattr(self._tokenizer, "is_fast", False):
                    raise ModelError(f"The reader model at {self.model_dir} has no fast tokenizer, so its answers "
                                     "cannot be mapped to exact offsets; use a model with a tokenizer.json.")
        return self._model, self._tokenizer

    def _verify(self) -> None:
        weights = next((self.model_dir / n for n in ("model.safetensors", "pytorch_model.bin")
                        if (self.model_dir / n).exists()), None)
        if weights is None:
            raise ModelError(f"No model.safetensors or pytorch_model.bin in {self.model_dir}.")
        found = file_sha256(weights)
        if found != self.sha256.lower():
            raise ModelError(f"The reader model weights {weights} have sha256 {found}, expected "
                             f"{self.sha256} (RAG_READER_MODEL_SHA256).")

    def read(self, question: QuestionAnalysis, evidence: Evidence) -> Reading:
        if not evidence.hits:
            return Reading(reader=self.name)
        model, tokenizer = self._load()
        texts = [h.chunk.text for h in evidence.hits]
        enc = tokenizer([question.text] * len(texts), texts, truncation="only_second", max_length=self.max_length,
                        stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                        padding=True, return_tensors="np")
        starts, ends = shared_worker().run(self._logits, model, enc, self.threads)
        found: list[tuple[float, int, int, int]] = []  # (score, passage index, char start, char end)
        nulls = []
        for w in range(len(enc["input_ids"])):
            p = int(enc["overflow_to_sample_mapping"][w])
            seq = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            nulls.append(float(starts[w, 0] + ends[w, 0]))
            context = [i for i, s in enumerate(seq) if s == 1]
            if not context:
                continue
            best_starts = sorted(context, key=lambda i: -starts[w, i])[:TOP_STARTS]
            for i in best_starts:
                for j in range(i, min(i + MAX_ANSWER_TOKENS, context[-1] + 1)):
                    if seq[j] == 1:
                        found.append((float(starts[w, i] + ends[w, j]), p, int(offsets[i][0]), int(offsets[j][1])))
        return self._reading(evidence, found, nulls)

    @staticmethod
    def _logits(model, enc, threads: int):
        import torch

        use_torch_threads(threads)
        with torch.inference_mode():
            out = model(input_ids=torch.as_tensor(enc["input_ids"]),
                        attention_mask=torch.as_tensor(enc["attention_mask"]),
                        **({"token_type_ids": torch.as_tensor(enc["token_type_ids"])} if "token_type_ids" in enc else {}))
        return out.start_logits.float().numpy(), out.end_logits.float().numpy()

    def _reading(self, evidence: Evidence, found, nulls) -> Reading:
        scores = np.array([s for s, *_ in found] + nulls, dtype=np.float64)
        z = np.exp(scores - scores.max())
        z /= z.sum()
        no_answer = float(z[len(found):].sum())
        spans: dict[tuple[int, int, int], float] = {}
        for (_, p, a, b), prob in zip(found, z[:len(found)]):
            if b > a:
                key = (p, a, b)
                spans[key] = spans.get(key, 0.0) + float(prob)
        sentences: dict[tuple[str, int], SentenceCandidate] = {}
        out_spans = []
        for (p, a, b), prob in sorted(spans.items(), key=lambda kv: -kv[1])[:50]:
            hit = evidence.hits[p]
            sentence = self._sentence_of(evidence, p, hit.chunk.start + a, hit.chunk.start + b)
            if sentence is None:
                continue
            key = (sentence.article_id, sentence.start)
            sentence = sentences.setdefault(key, sentence)
            sentence.probability = max(sentence.probability, prob)
            text = hit.chunk.text[a:b]
            out_spans.append(SpanCandidate(sentence, hit.chunk.start + a, hit.chunk.start + b, text, "span",
                                           probability=prob))
        ranked = sorted(sentences.values(), key=lambda c: (-c.probability, c.passage, c.start))
        return Reading(ranked, out_spans, self.name, no_answer_probability=no_answer)

    @staticmethod
    def _sentence_of(evidence: Evidence, p: int, start: int, end: int) -> SentenceCandidate | None:
        """The stored sentence of passage ``p`` that holds the span (article offsets)."""
        hit = evidence.hits[p]
        stored = evidence.sentences.get(hit.chunk.id)
        article = evidence.articles.get(hit.chunk.article_id)
        if stored is None or article is None:
            return None
        for a, b in zip(stored.starts.tolist(), stored.ends.tolist()):
            if a <= start and end <= b:
                return SentenceCandidate(p + 1, hit, a, b, article.text[a:b])
        return None
