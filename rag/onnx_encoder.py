"""The question encoder without torch: the embedding model exported to ONNX and run by ONNX Runtime.

The one module that imports onnxruntime and tokenizers. `rag.embed` exports the model here once per weights file
and checks the export against the model itself; this module only reads such an export.

Why a second runtime for the same model, measured on this 2-core machine with all-MiniLM-L6-v2:
- importing sentence-transformers (with torch and transformers) takes 7 s of a server's start; onnxruntime and
  tokenizers take 0.06 s, so a server that only answers never imports torch;
- a question takes 5.6 ms here on one thread, against 9.8 ms through sentence-transformers in bfloat16 and 14.4 ms
  in float32, and ONNX Runtime releases the GIL while it computes, so other requests' Python runs meanwhile;
- its float32 vectors match the model's own float32 ones to a cosine of 0.9999999.
Ingest still encodes with torch: in bfloat16 it encodes 41 chunks/s here, against 21.5 with ONNX Runtime.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError

SPEC_FILE = "encoder.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
FORMAT = 1  # bump when the export's layout or meaning changes, so older exports are made anew
POOLINGS = ("mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")  # sentence-transformers' names


@dataclass(frozen=True)
class EncoderSpec:
    """What an export holds and how to turn its token outputs into the model's sentence vector."""

    weights_sha256: str  # the weights it was exported from: an export of other weights is never used
    pooling: str  # one of POOLINGS
    normalize: bool
    max_seq_length: int
    inputs: tuple[str, ...]  # the graph's inputs, in order: input_ids, attention_mask, maybe token_type_ids
    dimension: int
    min_cosine: float  # the lowest cosine to the model's own float32 vectors over the probe texts at export
    format: int = FORMAT

    def write(self, folder: Path) -> None:
        (folder / SPEC_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, folder: Path) -> EncoderSpec | None:
        try:
            raw = json.loads((folder / SPEC_FILE).read_text())
            spec = cls(**{**raw, "inputs": tuple(raw["inputs"])})
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return spec if spec.format == FORMAT and spec.pooling in POOLINGS else None


class OnnxEncoder:
    """One text at a time, never padded nor batched with another: a text's vector does not depend on what else
    is being encoded. Thread-safe (ONNX Runtime sessions are), but meant to run on the process's model worker."""

    def __init__(self, folder: Path, spec: EncoderSpec, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = folder
        self.spec = spec
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise for users
        try:
            self._session = ort.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])
            tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        except Exception as e:
            raise ModelError(f"Could not open the exported encoder in {folder}: {e}. Delete that folder to "
                             "export it again.") from e
        # The saved tokenizer pads to a fixed length for batches; one text needs neither padding nor more tokens
        # than the model reads.
        tokenizer.no_padding()
        tokenizer.enable_truncation(spec.max_seq_length)
        self._tokenizer = tokenizer

    @classmethod
    def open(cls, folder: Path, weights_sha256: str, threads: int = 1) -> OnnxEncoder | None:
        """The export in ``folder`` if it is complete and of these weights, else None."""
        spec = EncoderSpec.read(folder)
        if spec is None or spec.weights_sha256 != weights_sha256 or not (folder / MODEL_FILE).is_file():
            return None
        return cls(folder, spec, threads)

    def token_ids(self, text: str) -> list[int]:
        # sentence-transformers strips a text before tokenising it
        return self._tokenizer.encode(text.strip()).ids

    def encode(self, text: str) -> np.ndarray:
        ids = np.asarray([self.token_ids(text)], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        tokens = self._session.run(None, {name: feeds[name] for name in self.spec.inputs})[0][0]
        vector = pool(tokens.astype(np.float32), self.spec.pooling)
        if self.spec.normalize:
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return vector.astype(np.float32)

    def encode_each(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.encode(t) for t in texts])


def pool(tokens: np.ndarray, mode: str) -> np.ndarray:
    """A sentence vector from one text's token outputs (no padding), as sentence-transformers' Pooling does."""
    if mode == "mean":
        return tokens.mean(axis=0)
    if mode == "cls":
        return tokens[0]
    if mode == "max":
        return tokens.max(axis=0)
    if mode == "mean_sqrt_len_tokens":
        return tokens.sum(axis=0) / np.sqrt(len(tokens))
    if mode == "weightedmean":
        weights = np.arange(1, len(tokens) + 1, dtype=np.float32)
        return (tokens * weights[:, None]).sum(axis=0) / weights.sum()
    if mode == "lasttoken":
        return tokens[-1]
    raise ModelError(f"Pooling mode {mode!r} is not one this encoder knows ({', '.join(POOLINGS)}).")


def default_cache_dir() -> Path:
    """Where exports live unless RAG_ENCODER_CACHE says otherwise: the user's cache, shared by every index."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-news" / "encoders"


def export_folder(cache_dir: Path, weights_sha256: str) -> Path:
    return cache_dir / f"{weights_sha256[:32]}-v{FORMAT}"
