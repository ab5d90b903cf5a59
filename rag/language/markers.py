"""The `[n]` citation markers of an answer: one pattern, used by verification, the web app and the eval."""

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


def split(text: str) -> list[dict]:
    """Text -> [{"text": ..., "n": None | int}] so a page can link each marker."""
    parts, pos = [], 0
    for m in MARKER.finditer(text):
        if m.start() > pos:
            parts.append({"text": text[pos : m.start()], "n": None})
        parts.append({"text": m.group(0), "n": int(m.group(1))})
        pos = m.end()
    if pos < len(text):
        parts.append({"text": text[pos:], "n": None})
    return parts
