"""A reader around a user's own extractive-QA model (Hugging Face `AutoModelForQuestionAnswering`).

`RAG_READER_MODEL` names a local model folder; it is never downloaded, and its weights' sha256 is checked
when `RAG_READER_MODEL_SHA256` gives one. The model reads the same windows as the span reader, and its spans map back
to exact character offsets the same way (`span.py`); the score of "no answer" (the first token, as SQuAD 2.0
models are trained) feeds abstention. How good its answers are depends on the
model brought: this project ships none, and its thresholds are not fitted to it (the settings override them).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from rag.answer.question import QuestionAnalysis
from rag.answer.readers.span import batch, passage_sentences, score_sentences, windows
from rag.answer.reading import Evidence, Reading, SpanCandidate, Thresholds
from rag.encoders.worker import shared_worker, use_torch_threads
from rag.errors import ModelError
from rag.hashing import file_sha256

# Not fitted to any particular model: abstain when "no answer" is likelier than 80%, show a short answer the
# model gives at least even odds.
DEFAULT_THRESHOLDS = Thresholds(abstain=0.2, short_answer=0.5, cite_ratio=0.5)


class ExtractiveQAReader:
    name = "extractive-qa"
    thresholds = DEFAULT_THRESHOLDS

    def __init__(self, model_dir: str | Path, sha256: str | None = None, threads: int | None = None) -> None:
        self.model_dir = Path(model_dir).expanduser()
        self.sha256 = sha256
        self.threads = threads or os.cpu_count() or 1
        self._model = self._tokenizer = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._load()

    def _load(self):
        with self._lock:
            if self._model is None:
                if not self.model_dir.is_dir():
                    raise ModelError(
                        f"RAG_READER_MODEL '{self.model_dir}' is not a folder; give the path of a local "
                        "extractive-QA model (it is never downloaded)."
                    )
                if self.sha256:
                    self._verify()
                try:
                    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

                    self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
                    self._model = AutoModelForQuestionAnswering.from_pretrained(
                        str(self.model_dir), local_files_only=True
                    ).eval()
                except Exception as e:
                    raise ModelError(f"Could not load the reader model from {self.model_dir}: {e}") from e
                if not getattr(self._tokenizer, "is_fast", False):
                    raise ModelError(
                        f"The reader model at {self.model_dir} has no fast tokenizer, so its answers "
                        "cannot be mapped to exact offsets; use a model with a tokenizer.json."
                    )
        return self._model, self._tokenizer

    def _verify(self) -> None:
        weights = next(
            (self.model_dir / n for n in ("model.safetensors", "pytorch_model.bin") if (self.model_dir / n).exists()),
            None,
        )
        if weights is None:
            raise ModelError(f"No model.safetensors or pytorch_model.bin in {self.model_dir}.")
        found = file_sha256(weights)
        if found != self.sha256.lower():
            raise ModelError(
                f"The reader model weights {weights} have sha256 {found}, expected "
                f"{self.sha256} (RAG_READER_MODEL_SHA256)."
            )

    def read(self, question: QuestionAnalysis, evidence: Evidence) -> Reading:
        """The same windows, spans and offsets as the span reader's (`span.py`); the model's softmax over every
        span and every window's "no answer" stands in for a calibration."""
        sentences = passage_sentences(evidence)
        if not sentences:
            return Reading(reader=self.name)
        model, tokenizer = self._load()
        ws = windows(tokenizer.backend_tokenizer, question.text, evidence)
        starts, ends = shared_worker().run(self._logits, model, *batch(ws), self.threads)
        scores, total = score_sentences(ws, starts, ends, sentences, evidence.hits)
        nulls = np.logaddexp.reduce(starts[:, 0] + ends[:, 0])
        spans = []
        for k, c in enumerate(sentences):
            sc = scores.get(k)
            if sc is None:
                continue
            c.probability = float(np.exp(sc.mass - total))
            text = evidence.articles[c.article_id].text[sc.start : sc.end]
            if text.strip():
                spans.append(
                    SpanCandidate(c, sc.start, sc.end, text, "span", probability=float(np.exp(sc.best - total)))
                )
        ranked = sorted(sentences, key=lambda c: (-c.probability, c.passage, c.start))
        spans.sort(key=lambda s: (-s.probability, s.start))
        return Reading(ranked, spans, self.name, no_answer_probability=float(np.exp(nulls - total)))

    @staticmethod
    def _logits(model, ids, types, mask, threads: int):
        import torch

        use_torch_threads(threads)
        with torch.inference_mode():
            # Models without segment embeddings (RoBERTa's kind) take no token_type_ids.
            extra = {"token_type_ids": torch.as_tensor(types)} if model.config.type_vocab_size > 1 else {}
            out = model(input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask), **extra)
        return out.start_logits.float().numpy(), out.end_logits.float().numpy()
