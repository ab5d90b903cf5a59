"""Builds the parts of a Pipeline from Settings: the only place that picks concrete classes.

Constructors are cheap; whatever is heavy (the encoder, a reader's model, the index) loads on first use or in
`Pipeline.warm_up()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.readers.fitted import FittedReader
from rag.answer.readers.process import InFlight, ReaderProcess
from rag.answer.reading import Reader
from rag.config import Settings
from rag.documents.ingester import Ingester
from rag.encoders.embedder import Embedder
from rag.index.index import Index
from rag.index.lexical import Analyzer

ANALYZER_CACHE = 4096  # texts: a question analyses about 350 (sentences, phrases, words), many more than once


@dataclass
class Parts:
    embedder: Embedder
    index: Index
    ingester: Ingester
    analyzer: Analyzer  # answering's (the snapshot keeps its own, for BM25)
    reader: Reader
    in_flight: InFlight  # questions being answered now; the pipeline counts, a reader process asks
    answerer: object  # an Answerer: ExtractiveAnswerer, or LLMAnswerer when an LLM is configured
    extractive: ExtractiveAnswerer


def build_parts(settings: Settings, embedder: Embedder | None = None) -> Parts:
    s = settings
    embedder = embedder or Embedder(
        s.embedding_model,
        dtype=s.embedding_dtype,
        batch_size=s.embed_batch_size,
        threads=s.encoder_threads or None,
        query_encoder=s.query_encoder,
        cache_dir=s.encoder_cache,
        ingest_encoder=s.ingest_encoder,
        ingest_idle_seconds=s.ingest_encoder_idle,
    )

    def manifest() -> dict:
        return {
            "model_id": embedder.model_id,
            "weights_hash": embedder.weights_hash,
            "dimension": embedder.dimension,
            "chunk_size": s.chunk_size,
            "chunk_overlap": s.chunk_overlap,
        }

    index = Index(s, manifest)
    analyzer = Analyzer(cache=ANALYZER_CACHE)
    in_flight = InFlight()
    reader = _reader(s, analyzer, in_flight)
    extractive = ExtractiveAnswerer(reader, {"abstain": s.abstain_threshold, "short_answer": s.short_answer_threshold})
    answerer: object = extractive
    if s.llm_base_url and s.llm_model:
        from rag.answer.llm import ChatCompletionsLLM, LLMAnswerer

        client = ChatCompletionsLLM(s.llm_base_url, s.llm_model, s.llm_api_key, timeout=s.llm_timeout)
        answerer = LLMAnswerer(client, extractive, analyzer)
    return Parts(embedder, index, Ingester(s, index, embedder), analyzer, reader, in_flight, answerer, extractive)


def _reader(s: Settings, analyzer: Analyzer, in_flight: InFlight) -> Reader:
    if s.reader_model:
        from rag.answer.readers.hf_qa import ExtractiveQAReader

        return ExtractiveQAReader(s.reader_model, sha256=s.reader_model_sha256)
    if s.reader == "span":
        return span_reader(s, analyzer)
    if s.reader_process:
        return ReaderProcess(fitted_reader, FittedReader(analyzer), busy=in_flight.others)
    return FittedReader(analyzer)


def span_reader(s: Settings, analyzer: Analyzer) -> Reader:
    """The trained span reader, on the bundled model whatever the embedding model is."""
    from rag.answer.readers.span import QAModel, SpanReader
    from rag.encoders.embedder import BUNDLED_SHA256, bundled_model_path, cpu_has_bf16
    from rag.encoders.export import default_cache_dir

    model = QAModel(
        bundled_model_path(),
        BUNDLED_SHA256,
        s.encoder_cache or default_cache_dir(),
        threads=s.encoder_threads or os.cpu_count() or 1,
        bfloat16=s.embedding_dtype == "bfloat16" or (s.embedding_dtype == "auto" and cpu_has_bf16()),
    )
    return SpanReader(model, FittedReader(analyzer))


def fitted_reader() -> FittedReader:
    """The default reader with an analyser of its own: what a reader process builds in its child."""
    return FittedReader(Analyzer(cache=ANALYZER_CACHE))
