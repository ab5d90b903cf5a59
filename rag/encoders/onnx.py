"""What runs on ONNX Runtime: the question encoder without torch, and the int8 dot product of dense search.

The one module that imports onnxruntime, onnx and tokenizers.

The question encoder is the embedding model exported to ONNX. `rag.encoders.embedder` exports the model here once per
weights file and checks the export against the model itself; this module only reads such an export.

Why a second runtime for the same model, measured on this 2-core machine with all-MiniLM-L6-v2:
- importing sentence-transformers (with torch and transformers) takes 7 s of a server's start; onnxruntime and
  tokenizers take 0.06 s, so a server that only answers never imports torch;
- a question takes 5.6 ms here on one thread, against 9.8 ms through sentence-transformers in bfloat16 and 14.4 ms
  in float32, and ONNX Runtime releases the GIL while it computes, so other requests' Python runs meanwhile;
- its float32 vectors match the model's own float32 ones to a cosine of 0.9999999.
Ingest encodes with OpenVINO (rag.encoders.openvino): in bfloat16 it encodes 45-51 chunks/s here, against 21.5
with ONNX Runtime.

ONNX Runtime's official builds send usage events to Microsoft from Linux too (1.32 here), keeping a device id
and a queue of unsent events under ~/.cache/Microsoft; the only switch is an environment variable read when the
library loads, set below before anything imports it, unless the user set it. A test checks that nothing is
written under the home folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag.errors import ModelError

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

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
            raise ModelError(
                f"Could not open the exported encoder in {folder}: {e}. Delete that folder to export it again."
            ) from e
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


class Int8DotProduct:
    """Scores of one query against many int8 rows (each a unit vector quantised with its own scale), on one
    thread, with ONNX Runtime's integer matrix kernel; the GIL is released while it runs.

    The rows are a constant of the graph, so the kernel packs them once, at load, into its own layout (one copy,
    25 MB of heap at 64,570 rows): 1.0-2.0 ms a query on the bench index. Passed in as an input instead, they
    were packed again on every query: 4.2-4.8 ms. The float32 matrix-vector product on one BLAS thread takes
    8.4 ms, bound by memory. Scores are off by at most 0.0026 there."""

    ROWS_FILE = "rows.bin"  # the name the graph gives the rows' bytes, which are handed over from memory

    def __init__(self, columns: np.ndarray, scales: np.ndarray, constant_rows: bool = True) -> None:
        """``columns``: the codes transposed, (dimension, rows); a memory-mapped file is read where it is.
        ``scales``: one per row. ``constant_rows`` off, or an onnxruntime older than the in-memory external data
        of its Python API (late 2025), passes the rows in on every query instead."""
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        dimension, count = columns.shape
        self.scales = np.asarray(scales, dtype=np.float32)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # The query is the uint8 left-hand side with a zero point of 128: the u8 x s8 kernel is the fast one on
        # x86.
        query = helper.make_tensor_value_info("query", TensorProto.UINT8, [1, dimension])
        scores = helper.make_tensor_value_info("scores", TensorProto.INT32, [1, count])
        zero = numpy_helper.from_array(np.array(128, dtype=np.uint8), "zero")
        node = helper.make_node("MatMulInteger", ["query", "rows", "zero"], ["scores"])
        self._columns = np.ascontiguousarray(columns)
        self._rows = None
        if constant_rows and hasattr(options, "add_external_initializers_from_files_in_memory"):
            rows = TensorProto(
                name="rows", data_type=TensorProto.INT8, dims=[dimension, count], data_location=TensorProto.EXTERNAL
            )
            for key, value in (("location", self.ROWS_FILE), ("offset", "0"), ("length", str(self._columns.nbytes))):
                rows.external_data.add(key=key, value=value)
            data = self._columns.reshape(-1).view(np.uint8)
            options.add_external_initializers_from_files_in_memory([self.ROWS_FILE], [data], [data.nbytes])
            graph = helper.make_graph([node], "int8-dot", [query], [scores], initializer=[zero, rows])
        else:
            rows = helper.make_tensor_value_info("rows", TensorProto.INT8, [dimension, None])
            graph = helper.make_graph([node], "int8-dot", [query, rows], [scores], initializer=[zero])
            # The buffer the OrtValue reads: it must live as long as this object (a mapped file stays mapped).
            self._rows = ort.OrtValue.ortvalue_from_numpy(self._columns)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        self._session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        if self._rows is None:
            self._columns = None  # the session holds its packed copy

    def scores(self, vector: np.ndarray) -> np.ndarray:
        vector = np.asarray(vector, dtype=np.float32)
        step = max(float(np.abs(vector).max()), 1e-12) / 127.0
        query = (np.clip(np.rint(vector / step), -127, 127).astype(np.int16) + 128).astype(np.uint8)[None, :]
        feeds = {"query": query} if self._rows is None else {"query": query, "rows": self._rows}
        raw = self._session.run(None, feeds)[0][0]
        return raw.astype(np.float32) * self.scales * np.float32(step)


def quantize_columns(vectors: np.ndarray, block: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``vectors`` as int8 codes, transposed to (dimension, rows), and a float32 scale per row
    (row ~ codes * scale); a block of rows at a time, so a memory-mapped matrix is never read whole."""
    columns = np.empty((vectors.shape[1], len(vectors)), dtype=np.int8)
    scales = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), block):
        part = np.asarray(vectors[start : start + block], dtype=np.float32)
        step = np.maximum(np.abs(part).max(axis=1), 1e-12) / 127.0
        columns[:, start : start + block] = np.clip(np.rint(part / step[:, None]), -127, 127).T
        scales[start : start + block] = step
    return columns, scales
