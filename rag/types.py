"""The data passed between stages. Frozen dataclasses, standard library only."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Article:
    """One news article. `text` is the stored body that every offset indexes."""

    id: str
    title: str
    text: str
    source: str | None = None
    url: str | None = None
    published: str | None = None  # ISO date, YYYY-MM-DD
    content_hash: str = ""
    # The story it belongs to: the id of the story's first article (rag.index.stories); None before it is placed.
    story: str | None = None
    # Its MinHash signature (rag.index.stories), kept so a near-copy of it is found later. Internal.
    signature: str = field(default="", repr=False, compare=False)
    # Where it came from (an absolute path, "record", "api", "upload:NAME"): an id held by one origin is not
    # overwritten from another. Internal: a server path is never shown to API clients.
    origin: str = field(default="", repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("origin")
        d.pop("signature")
        return d


@dataclass(frozen=True)
class Chunk:
    """A window of an article. `article_text[start:end] == text` always holds."""

    id: str
    article_id: str
    ordinal: int
    start: int
    end: int
    text: str
    title: str = ""
    published: str | None = None

    def embedding_text(self) -> str:
        """What the encoder sees: the title gives short passages their topic."""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score."""

    chunk: Chunk
    score: float


@dataclass(frozen=True)
class Citation:
    n: int
    article_id: str
    title: str
    url: str | None
    published: str | None
    chunk_id: str
    start: int
    end: int
    quote: str
    source: str | None = None
    # For a "when" question: the quote's relative dates resolved against the article's date, each
    # {"text": "Sunday", "start", "end" (offsets in the quote), "date": "2023-05-28"}.
    dates: tuple[dict[str, Any], ...] = ()
    # The other articles of the cited article's story (rag.index.stories), oldest first, each
    # {"article_id", "title", "source", "url", "published"}.
    also_reported_by: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Passage:
    n: int
    article_id: str
    chunk_id: str
    score: float
    text: str
    title: str = ""
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    short_answer: str | None
    abstained: bool
    citations: list[Citation]
    passages: list[Passage]
    backend: str = "extractive"
    timings_ms: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0  # the probability that the best cited sentence holds the answer
    short_answer_confidence: float | None = None  # the probability that short_answer is right
    # LLM backend only: every drafted sentence with its verdict, the extractive answer computed beside it,
    # and a notice when the LLM could not be used.
    sentences: list[dict] | None = None
    extractive: dict | None = None
    notice: str | None = None
    verification: dict | None = None
    # `answer` as it was built: plain text and citation markers, [{"text", "n": None | int}]; only these are
    # citations, whatever brackets a quote holds.
    segments: list[dict] = field(default_factory=list)
    # Where other reports of the cited story give another value for the asked quantity (rag.answer.agreement):
    # [{"quantity", "values": [{"value", "n", "source", "published"}], "kind": "conflict" | "update"}].
    sources_differ: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Skipped:
    """An input that was not ingested, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Warned:
    """An input that was ingested, with a caveat the user should know (an unreadable date, ...)."""

    path: str
    reason: str


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    articles: list[str] = field(default_factory=list)  # ids added or updated, in order
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[Warned] = field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "articles": list(self.articles),
            "skipped": [asdict(s) for s in self.skipped],
            "warnings": [asdict(w) for w in self.warnings],
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
        }
