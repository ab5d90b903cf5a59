"""One model of a question request, used by the CLI, the web app and the eval: every bad field is a 4xx that
names the field and says what to send instead."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, field_validator

from rag.errors import BadInput

MAX_K = 50
MAX_HISTORY = 20


class AskRequest(BaseModel):
    """`{"question", "k"?, "since"?, "until"?, "as_of"?, "history"?}`; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    question: StrictStr = Field(description="The question, in words.")
    k: Annotated[StrictInt, Field(ge=1, le=MAX_K)] | None = Field(None, description=f"Passages to read, 1 to {MAX_K}.")
    since: date | None = Field(None, description="Only articles published on or after this day, YYYY-MM-DD.")
    until: date | None = Field(None, description="Only articles published on or before this day, YYYY-MM-DD.")
    as_of: date | None = Field(None, description="The time of asking, YYYY-MM-DD: nothing later, recent first.")
    history: list[StrictStr | dict[str, Any]] = Field(
        default_factory=list, max_length=MAX_HISTORY, description="Earlier questions of the conversation, oldest first."
    )

    @field_validator("question")
    @classmethod
    def _valid_text(cls, v: str) -> str:
        return _valid_unicode(v, "question")

    @field_validator("history")
    @classmethod
    def _valid_history(cls, turns: list) -> list:
        out = []
        for turn in turns:
            text = turn.get("question") if isinstance(turn, dict) else turn
            if not isinstance(text, str):
                raise ValueError("each turn must be a question string or an object with a 'question' string")
            out.append(_valid_unicode(text, "history"))
        return out

    @field_validator("since", "until", "as_of", mode="before")
    @classmethod
    def _iso_day(cls, v: Any) -> Any:
        if v in (None, ""):
            return None
        if isinstance(v, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v.strip()):
            raise ValueError(f"{v!r} is not a date; use YYYY-MM-DD, e.g. 2023-05-31")
        return v

    @classmethod
    def parse(cls, **fields: Any) -> AskRequest:
        """Validate, turning pydantic's errors into one BadInput that names every bad field."""
        try:
            return cls.model_validate({k: v for k, v in fields.items() if v is not None})
        except ValidationError as e:
            raise BadInput(describe(e.errors())) from None

    def check(self, max_question_chars: int) -> AskRequest:
        """The checks that depend on settings, and between fields. Returns the request with a tidy question."""
        question = _tidy(self.question)
        if not question:
            raise BadInput("The question is empty; type a question about the articles.")
        if len(question) > max_question_chars:
            raise BadInput(
                f"The question is {len(question):,} characters long; the limit is {max_question_chars:,}. Shorten it."
            )
        if self.since and self.until and self.since > self.until:
            raise BadInput(f"since {self.since} is after until {self.until}; swap them.")
        history = [h for h in (_tidy(t) for t in self.history) if h]
        for h in history:
            if len(h) > max_question_chars:
                raise BadInput(f"A history turn is {len(h):,} characters long; the limit is {max_question_chars:,}.")
        return self.model_copy(update={"question": question, "history": history})


def describe(errors: list[dict]) -> str:
    """pydantic errors -> "k=0: Input should be greater than or equal to 1; ...": the field and bad value first."""
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body",)) or "body"
        message = e.get("msg", "invalid").removeprefix("Value error, ")
        if where == "question" and e.get("type") == "missing":
            message = "The question is empty; type a question about the articles"
        given = e.get("input")
        shown = f"={given!r}" if isinstance(given, int | float | str | bool) and len(repr(given)) <= 40 else ""
        parts.append(f"{where}{shown}: {message}")
    return "Bad request: " + "; ".join(parts) + "."


def _valid_unicode(text: str, name: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"{name} holds invalid Unicode (a lone surrogate at position {e.start}); send UTF-8 text"
        ) from None
    return text


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
