"""What runs on OpenVINO: the ingest encoder, the same ONNX export the questions use (rag.encoders.onnx), in batches.

The one module that imports openvino.

Why a third runtime, measured on this 2-core machine (avx512_bf16, no AMX) with all-MiniLM-L6-v2 over the chunk
texts of 100 articles (699 texts), from a loaded model:
- bfloat16: 45-51 chunks/s, against 38-40 with sentence-transformers in bfloat16; its vectors are nearer the
  model's float32 ones (lowest cosine 0.99997, against 0.99990);
- float32, on CPUs without bfloat16: 28 chunks/s, against 19;
- loading it takes about 1 s and 320 MB, against 7 s and 500 MB for torch with sentence-transformers, so an ingest
  (and a server's first upload) never imports torch once the export exists;
- int8 (post-training quantisation) was not worth it: 59 chunks/s, at a lowest cosine of 0.98.
It releases the GIL while it computes, so a server's other threads run meanwhile.

Importing openvino imports its model converter, which sends a usage event to Google Analytics (and writes a client
id under ~/intel) unless a consent file says no. This module makes that telemetry package unimportable first, so
the converter uses its own no-op stub: nothing leaves the machine, nothing is written. Were a later openvino to
need the package, its import would fail here, and documents would be encoded with torch instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.encoders.onnx import MODEL_FILE, TOKENIZER_FILE, EncoderSpec
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


class OpenVinoEncoder:
    """Texts in batches, each batch of texts of like length padded to a multiple of ``pad_multiple`` tokens (the
    padding is masked, so it does not change a vector). Not thread-safe: meant to run on the model worker."""

    def __init__(
        self, folder: Path, spec: EncoderSpec, threads: int, bfloat16: bool, batch_size: int = 8, pad_multiple: int = 32
    ) -> None:
        from tokenizers import Tokenizer

        try:
            ov = _openvino()
        except Exception as e:  # a missing wheel, a shared library the platform lacks, or the telemetry block
            raise ModelError(f"OpenVINO cannot be imported here ({type(e).__name__}: {e}).") from e
        self.spec = spec
        self.precision = "bf16" if bfloat16 else "f32"
        self.batch_size = batch_size
        self.pad_multiple = pad_multiple
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": self.precision,
            "PERFORMANCE_HINT": "LATENCY",
        }
        try:
            core = ov.Core()
            self._model = core.compile_model(core.read_model(str(folder / MODEL_FILE)), "CPU", config)
            tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        except Exception as e:
            raise ModelError(f"OpenVINO could not compile the exported encoder in {folder}: {e}") from e
        self._request = self._model.create_infer_request()
        self._output = self._model.output(0)
        tokenizer.no_padding()  # padded here, per batch
        tokenizer.enable_truncation(spec.max_seq_length)
        self._tokenizer = tokenizer

    def release_buffers(self) -> None:
        """Free the intermediate tensors the compiled model keeps for the largest batch it has run (about 80 MB
        after three articles' chunks); the next batch allocates them again, as fast, with the same outputs. Never
        during an inference, which OpenVINO refuses: on the model worker, like every call here."""
        self._model.release_memory()

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
