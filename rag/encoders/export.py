"""The embedding model exported to ONNX: the one place an encoder needs torch, once per weights file.

An export is a folder in the encoder cache: the transformer as an ONNX graph of token outputs, its fast tokenizer,
a spec (pooling, normalisation, inputs) and the model's own float32 vectors for a few probe texts. It is made with
torch, checked against the model through the runtime that will serve it, and renamed into place whole, so a
process never reads half an export. Every process that opens it checks its compiled encoder against the probes'
vectors, so an export or a compile that drifted is never used.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag.errors import ModelError

log = logging.getLogger(__name__)

SPEC_FILE = "encoder.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
PROBES_FILE = "probes.npy"  # the model's own float32 vectors for PROBES
FORMAT = 2  # bump when the export's layout or meaning changes, so older exports are made anew
POOLINGS = ("mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")  # sentence-transformers' names

# Texts an export is checked on: plain, padded, cased and accented, symbols, one letter, and one past the
# model's token limit (truncation must agree).
PROBES = (
    "How much aid was announced?",
    "  Harris visits GUATEMALA; the U.S. pledged $310 million on May 31, 2023.  ",
    "São Paulo, Zürich and Kraków: “quotes”, dashes — and 東京, 🙂.",
    "a",
    " ".join(["The committee met again on Tuesday to discuss next year's budget for schools."] * 40),
)
MIN_COSINE = 0.9999  # the export in float32 against the model in float32
# A compile in bfloat16 against the model in float32: rounding stays far above this; a broken compile does not.
MIN_OPEN_COSINE = 0.999


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


def unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def default_cache_dir() -> Path:
    """Where exports live unless RAG_ENCODER_CACHE says otherwise: the user's cache, shared by every index."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-news" / "encoders"


def export_folder(cache_dir: Path, weights_sha256: str) -> Path:
    return cache_dir / f"{weights_sha256[:32]}-v{FORMAT}"


def read_export(folder: Path, weights_sha256: str) -> EncoderSpec | None:
    """The spec of the export in ``folder`` if it is whole and of these weights, else None."""
    spec = EncoderSpec.read(folder)
    whole = all((folder / name).is_file() for name in (MODEL_FILE, TOKENIZER_FILE, PROBES_FILE))
    return spec if spec is not None and spec.weights_sha256 == weights_sha256 and whole else None


def check_against_probes(folder: Path, vectors: np.ndarray, floor: float | None = None) -> float:
    """The lowest cosine of ``vectors`` (an encoder's, for PROBES) to the model's own; ModelError under ``floor``
    (MIN_OPEN_COSINE unless given)."""
    floor = MIN_OPEN_COSINE if floor is None else floor
    expected = np.load(folder / PROBES_FILE)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    lowest = float(np.min(np.sum(expected * vectors, axis=1)))
    if not lowest >= floor:
        raise ModelError(f"The compiled encoder disagrees with the model (lowest cosine {lowest:.6f} < {floor}).")
    return lowest


def export(model_path: Path, weights_sha256: str, folder: Path, open_encoder) -> EncoderSpec:
    """Export the model's transformer to ONNX in float32, check it against the model, and keep it in ``folder``.
    ``open_encoder(folder, spec)`` opens the export in float32 on the serving runtime, for the check. Takes a few
    seconds, once per weights file; a folder rename makes it atomic across processes."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        str(model_path), device="cpu", local_files_only=True, model_kwargs={"torch_dtype": torch.float32}
    )
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        raise ModelError(
            f"{model_path} has the modules {kinds}; only Transformer, Pooling and an optional Normalize are exported."
        )
    pooling = modules[1].pooling_mode
    if pooling not in POOLINGS:
        raise ModelError(f"{model_path} pools with {pooling!r}; the export knows {', '.join(POOLINGS)}.")
    if not getattr(model.tokenizer, "is_fast", False):
        raise ModelError(f"{model_path} has no fast tokenizer (tokenizer.json) to run without torch.")
    sample = model.preprocess(["an example"])
    inputs = tuple(k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample)
    extras = {k: v for k, v in sample.items() if not isinstance(v, torch.Tensor)}
    transformer = modules[0]

    class TokenOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors):
            return self.transformer({**extras, **dict(zip(inputs, tensors))})["token_embeddings"]

    folder.parent.mkdir(parents=True, exist_ok=True)
    work = folder.parent / f".export-{uuid.uuid4().hex}"
    work.mkdir()
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation notices are for torch's developers
            torch.onnx.export(
                TokenOutputs().eval(),
                tuple(sample[k] for k in inputs),
                str(work / MODEL_FILE),
                input_names=list(inputs),
                output_names=["token_embeddings"],
                opset_version=17,
                dynamic_axes={k: {0: "batch", 1: "tokens"} for k in (*inputs, "token_embeddings")},
                dynamo=False,
            )
        model.tokenizer.backend_tokenizer.save(str(work / TOKENIZER_FILE))
        expected = np.asarray(model.encode(list(PROBES), batch_size=1, convert_to_numpy=True), dtype=np.float32)
        np.save(work / PROBES_FILE, np.stack([unit(v) for v in expected]))
        spec = EncoderSpec(
            weights_sha256,
            pooling,
            kinds[2:] == ["Normalize"],
            int(model.max_seq_length),
            inputs,
            int(model.get_embedding_dimension()),
            0.0,
        )
        encoder = open_encoder(work, spec)
        for text in PROBES:
            theirs = model.tokenizer(text.strip(), truncation=True, max_length=spec.max_seq_length)["input_ids"]
            if list(theirs) != encoder.token_ids(text):
                raise ModelError(f"The exported tokenizer splits {text[:40]!r} differently from the model's.")
        got = encoder.encode_each(list(PROBES))
        lengths = np.linalg.norm(got, axis=1) / np.maximum(np.linalg.norm(expected, axis=1), 1e-12)
        if np.abs(lengths - 1).max() > 1e-3:
            raise ModelError("The ONNX export's vectors are not the model's length.")
        spec = EncoderSpec(**{**spec.__dict__, "min_cosine": round(check_against_probes(work, got, MIN_COSINE), 7)})
        del encoder
        spec.write(work)
        try:
            work.rename(folder)
        except OSError:  # the folder exists: another process's finished export (keep it), or a damaged one
            if read_export(folder, weights_sha256) is None:
                shutil.rmtree(folder, ignore_errors=True)
                work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for older in range(1, FORMAT):  # exports of these weights in an older layout are never read again
        shutil.rmtree(folder.parent / f"{weights_sha256[:32]}-v{older}", ignore_errors=True)
    log.info("Exported %s to ONNX in %s (cosine to the model >= %.7f).", model_path.name, folder, spec.min_cosine)
    return spec
