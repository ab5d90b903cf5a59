"""The `[n]` citation markers of an answer.

An answer is built as segments, each plain text or one marker (`compose`), so that a quote which itself holds
"[2]" (a footnote, say) is never taken for a citation: pages link the segments, not a pattern over the text. The
pattern below only reads an LLM's draft, whose markers are its claims of support, checked by verification.
"""

from __future__ import annotations

import re

MARKER = re.compile(r"\[(\d+)\]")
MARKER_WITH_SPACE = re.compile(r"\s*\[(\d+)\]")


def numbers(text: str) -> list[int]:
    """Every marker's number, in order: "A [1]. B [2][1]." -> [1, 2, 1]."""
    return [int(n) for n in MARKER.findall(text)]


def strip(text: str) -> str:
    """The text without its markers (and the spaces before them)."""
    return MARKER_WITH_SPACE.sub("", text)


def compose(pieces: list[tuple[str, int, str]]) -> tuple[str, list[dict]]:
    """Cited sentences -> the answer's text and its segments [{"text", "n": None | int}], whose texts join to it.

    Each piece is (body, n, tail): the marker [n] follows the body, before the tail (closing punctuation, or "").
    Pieces are separated by one space: "A [1]. B [2]"."""
    segments: list[dict] = []

    def plain(text: str) -> None:
        if not text:
            return
        if segments and segments[-1]["n"] is None:
            segments[-1]["text"] += text
        else:
            segments.append({"text": text, "n": None})

    for i, (body, n, tail) in enumerate(pieces):
        plain((" " if i else "") + body + " ")
        segments.append({"text": f"[{n}]", "n": n})
        plain(tail)
    return "".join(s["text"] for s in segments), segments


def plain_segments(text: str) -> list[dict]:
    """An answer with no citation: one plain segment."""
    return [{"text": text, "n": None}] if text else []
