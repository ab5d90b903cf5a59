"""Settings: one typed field per setting, with a default and a help line.

Read from the environment (prefix ``RAG_``) and from a ``.env`` file in the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    index_dir: Path = Field(Path("index"), description="Where bundled articles and the persisted index live.")
    embedding_model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model name or local path; the default is the bundled all-MiniLM-L6-v2.",
    )
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Precision of the encoder and the span reader: auto uses bfloat16 where the CPU has native bf16 "
        "support, else float32.",
    )
    # 8, not sentence-transformers' 32: as fast on OpenVINO, and the encoder keeps buffers for the largest batch
    # it has run (about a quarter of the memory of 32).
    embed_batch_size: int = Field(8, ge=1, le=1024, description="Texts encoded per model call when ingesting.")
    encoder_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Threads an ingest encodes with; 0 means every core (it is their one "
        "user). A question always encodes on one.",
    )
    query_encoder: Literal["auto", "torch"] = Field(
        "auto",
        description="What encodes questions: auto runs the model exported to ONNX (made once per weights file, "
        "checked against the model) on OpenVINO, so a server that only answers never loads torch; torch uses "
        "the model itself.",
    )
    ingest_encoder: Literal["auto", "torch"] = Field(
        "auto",
        description="What encodes documents: auto runs that export on OpenVINO (checked against the model when "
        "opened), so an ingest never loads torch once the export exists; torch uses the model itself.",
    )
    ingest_encoder_idle: float = Field(
        120,
        ge=0,
        description="Seconds without a document to encode after which a process drops its OpenVINO ingest encoder "
        "(about 0.25 GB between ingests, which give back its buffers as they end; it opens again in "
        "about 0.6 s); 0 keeps it.",
    )
    encoder_cache: Path | None = Field(
        None,
        description="Folder for the ONNX export of the embedding model; unset uses "
        "$XDG_CACHE_HOME/rag-news/encoders (~/.cache/rag-news/encoders).",
    )
    chroma_url: str | None = Field(
        None, description="Use a Chroma server (http://host:port) instead of the embedded store."
    )
    collection: str = Field("news", description="Chroma collection name prefix.")
    chunk_size: int = Field(1000, ge=200, le=4000, description="Largest chunk, in characters of article text.")
    chunk_overlap: int = Field(1, ge=0, le=3, description="Sentences repeated at the start of the next chunk.")
    flat_search_limit: int = Field(
        500_000,
        ge=0,
        description="Up to this many chunks, dense search is exact, over a memory-mapped copy of the vectors "
        "(4 bytes x dimension each); above it, Chroma's approximate (HNSW) search.",
    )
    top_k: int = Field(5, ge=1, le=50, description="Passages given to the answerer.")
    max_per_article: int = Field(2, ge=1, le=20, description="Most passages taken from one article.")
    candidates: int = Field(60, ge=5, le=500, description="Candidates each retriever returns before fusion.")
    abstain_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Abstain when the best sentence's probability of holding the answer is below this; "
        "unset uses the threshold fitted by eval/fit_scoring.py.",
    )
    short_answer_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Show a short answer only from this probability that it is right; unset uses the fitted one "
        "(chosen for precision 0.85).",
    )
    reader: Literal["fitted", "span"] = Field(
        "span",
        description="What reads the passages: span, the extractive-QA model trained for this project and shipped "
        "with it (offline, run by OpenVINO; tens of milliseconds a question); fitted, the feature reader alone "
        "(no model, a few milliseconds, for a server that must answer many questions a second). "
        "docs/MEASUREMENTS.md sets the two side by side.",
    )
    reader_model: str | None = Field(
        None,
        description="A local Hugging Face extractive-QA model folder (AutoModelForQuestionAnswering) to read "
        "answers with instead of the fitted reader; never downloaded.",
    )
    reader_model_sha256: str | None = Field(
        None, description="The sha256 of the reader model's weights file, checked before it is loaded."
    )
    max_question_chars: int = Field(2000, ge=10, description="Longest question accepted.")
    max_file_bytes: int = Field(20_000_000, ge=1000, description="Largest input file ingested (and uploaded).")
    fetch_allow_private: bool = Field(
        False,
        description="Fetch URLs on loopback, private and link-local addresses too (your own network); off, they are "
        "refused, so that a URL given to the server cannot reach inside it.",
    )
    fetch_timeout: float = Field(20.0, gt=0, le=600, description="Seconds to wait for a web server to answer.")
    fetch_max_bytes: int = Field(5_000_000, ge=10_000, description="Largest page or feed fetched.")
    fetch_host_delay: float = Field(1.0, ge=0, description="Seconds between two requests to one web host at least.")
    refresh_feeds: float = Field(
        0,
        ge=0,
        description="Seconds between feed refreshes inside `rag serve` (`--refresh-feeds 30m` sets it); 0: none.",
    )
    max_request_bytes: int = Field(
        262_144, ge=4096, description="Largest HTTP request body other than an upload, e.g. a question with history."
    )
    question_threads: int = Field(
        4,
        ge=1,
        le=256,
        description="Questions one server process answers at once; the rest wait their turn, holding no thread. "
        "More only adds contention for the GIL.",
    )
    reader_process: bool | None = Field(
        None,
        description="Read the evidence for answers in a child process, so that a server's Python runs on two "
        "cores at once. Unset: on in the web app when the machine has two cores or more, off for "
        "the CLI and the eval, which answer one question at a time.",
    )
    api_docs: bool = Field(False, description="Serve the interactive API docs at /api/docs.")
    rate_limit: int = Field(
        120,
        ge=0,
        description="Questions a minute one client address may ask (bursts of a sixth of that); 0 turns the limit off.",
    )
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible chat-completions base URL, e.g. http://127.0.0.1:11434/v1."
    )
    llm_model: str | None = Field(None, description="Model name sent to the LLM server.")
    llm_api_key: str | None = Field(None, description="API key for the LLM server, where it needs one.")
    llm_timeout: float = Field(30.0, gt=0, description="Seconds to wait for the LLM before falling back to extractive.")
    lock_timeout: float = Field(
        600.0, ge=0, description="Seconds a writer (ingest, delete) waits for another process's write to finish."
    )
    store_timeout: float = Field(
        30.0, gt=0, description="Seconds to wait for a Chroma server's reply before answering 503."
    )
    api_token: str | None = Field(None, description="Bearer token required by write endpoints; unset disables them.")

    @property
    def chroma_dir(self) -> Path:
        return self.index_dir / "chroma"

    @property
    def lexical_dir(self) -> Path:
        return self.index_dir / "lexical"
