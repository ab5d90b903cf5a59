"""The one runtime every model in a served process runs on: OpenVINO, over ONNX exports.

The one module that imports openvino and tokenizers. It runs the embedding model's export (rag.encoders.export)
for questions, one text on one thread, and for an ingest's documents, in batches on every core; and it compiles
the span reader's export (rag.answer.readers.span). Against ONNX Runtime on the same export, it encodes documents
about twice as fast in bfloat16 (on CPUs that have it) and questions as fast, and against torch it loads in a
second without importing torch. It releases the GIL while it computes, so a server's other threads run meanwhile.

Importing openvino imports its model converter, which sends a usage event to Google Analytics (and writes a client
id under ~/intel) unless a consent file says no. This module makes that telemetry package unimportable first, so
the converter uses its own no-op stub: nothing leaves the machine, nothing is written. Were a later openvino to
need the package, its import would fail here, and the model would run on torch instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.encoders.export import MODEL_FILE, TOKENIZER_FILE, EncoderSpec, pool
from rag.errors import ModelError


@dataclass(frozen=True)
class TokenPass:
    """One text through the model: its token ids, each token's output and its character span in the text (a
    special token's span is empty), unpadded."""

    ids: list[int]
    outputs: np.ndarray  # (tokens, dimension) float32
    starts: np.ndarray  # character offsets into the text as given (leading blanks included)
    ends: np.ndarray


def _openvino():
    """The openvino package, imported without its telemetry (see the module's docstring)."""
    sys.modules.setdefault("openvino_telemetry", None)  # None: `import openvino_telemetry` raises ImportError
    import openvino

    return openvino


def compile_onnx(path: Path, threads: int, bfloat16: bool):
    """An ONNX file compiled for this CPU on ``threads`` threads, in bfloat16 or float32; ModelError if it cannot
    be."""
    try:
        ov = _openvino()
    except Exception as e:  # a missing wheel, a shared library the platform lacks, or the telemetry block
        raise ModelError(f"OpenVINO cannot be imported here ({type(e).__name__}: {e}).") from e
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "bf16" if bfloat16 else "f32",
        "PERFORMANCE_HINT": "LATENCY",
    }
    try:
        core = ov.Core()
        return core.compile_model(core.read_model(str(path)), "CPU", config)
    except Exception as e:
        raise ModelError(f"OpenVINO could not compile {path}: {e}") from e


class OnnxRunner:
    """Any ONNX graph compiled for this CPU: `run(feeds)` gives its outputs, in order, as float32 arrays. Not
    thread-safe: meant to run on the model worker."""

    def __init__(self, path: Path, threads: int, bfloat16: bool = False) -> None:
        self._model = compile_onnx(path, threads, bfloat16)
        self._request = self._model.create_infer_request()

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self._request.infer(feeds)
        return [np.asarray(result[output], dtype=np.float32) for output in self._model.outputs]


def read_tokenizer(path: Path):
    """A fast tokenizer saved as tokenizer.json, with neither padding nor truncation."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as e:
        raise ModelError(f"Could not read the tokenizer {path}: {e}") from e
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


class OpenVinoEncoder:
    """Texts in batches, each batch of texts of like length padded to a multiple of ``pad_multiple`` tokens (the
    padding is masked, so it does not change a vector), or one text at a time, unpadded. Not thread-safe: meant
    to run on the model worker."""

    def __init__(
        self, folder: Path, spec: EncoderSpec, threads: int, bfloat16: bool, batch_size: int = 8, pad_multiple: int = 32
    ) -> None:
        self.spec = spec
        self.precision = "bf16" if bfloat16 else "f32"
        self.batch_size = batch_size
        self.pad_multiple = pad_multiple
        self._model = compile_onnx(folder / MODEL_FILE, threads, bfloat16)
        tokenizer = read_tokenizer(folder / TOKENIZER_FILE)
        self._request = self._model.create_infer_request()
        self._output = self._model.output(0)
        tokenizer.enable_truncation(spec.max_seq_length)  # padded here, per batch
        self._tokenizer = tokenizer

    def release_buffers(self) -> None:
        """Free the intermediate tensors the compiled model keeps for the largest batch it has run (about 80 MB
        after three articles' chunks); the next batch allocates them again, as fast, with the same outputs. Never
        during an inference, which OpenVINO refuses: on the model worker, like every call here."""
        self._model.release_memory()

    def token_ids(self, text: str) -> list[int]:
        # sentence-transformers strips a text before tokenising it
        return self._tokenizer.encode(text.strip()).ids

    def encode(self, text: str) -> np.ndarray:
        """One text's vector, as the model gives it (normalised if the model normalises), never padded nor batched
        with another: it does not depend on what else is asked."""
        ids = np.asarray([self.token_ids(text)], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        tokens = self._request.infer({name: feeds[name] for name in self.spec.inputs})[self._output][0]
        vector = pool(np.asarray(tokens, dtype=np.float32), self.spec.pooling)
        if self.spec.normalize:
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return vector.astype(np.float32)

    def encode_each(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.encode(t) for t in texts])

    def token_passes(self, texts: Sequence[str]) -> list[TokenPass]:
        """Each text's token outputs, in the order given. Texts are batched longest first."""
        # sentence-transformers strips a text before tokenising it; offsets are given back in the text as passed.
        stripped = [t.strip() for t in texts]
        shifts = [len(t) - len(t.lstrip()) for t in texts]
        encodings = self._tokenizer.encode_batch(stripped)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        passes: list[TokenPass | None] = [None] * len(texts)
        for first in range(0, len(order), self.batch_size):
            rows = order[first : first + self.batch_size]
            longest = max(len(encodings[i].ids) for i in rows)
            width = -(-longest // self.pad_multiple) * self.pad_multiple
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for k, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[k, :n] = encodings[i].ids
                mask[k, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            outputs = self._request.infer({name: feeds[name] for name in self.spec.inputs})[self._output]
            for k, i in enumerate(rows):
                enc = encodings[i]
                n = len(enc.ids)
                offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
                starts = np.where(offsets[:, 1] > offsets[:, 0], offsets[:, 0] + shifts[i], -1)
                passes[i] = TokenPass(
                    list(enc.ids), np.array(outputs[k, :n], dtype=np.float32), starts, offsets[:, 1] + shifts[i]
                )
        return passes  # type: ignore[return-value]
