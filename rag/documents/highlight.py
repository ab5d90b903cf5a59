"""Character ranges to highlight in an article: parsing `?hl=START-END` and splitting text around them."""

from __future__ import annotations

import re

from rag.errors import BadInput

MAX_RANGES = 20


def parse_ranges(values: list[str], length: int) -> list[tuple[int, int]]:
    """["10-20", "5-8"] -> merged, sorted ranges within [0, length]. Bad values raise BadInput."""
    if len(values) > MAX_RANGES:
        raise BadInput(f"{len(values)} highlight ranges given; at most {MAX_RANGES} are allowed.")
    ranges = []
    for v in values:
        m = re.fullmatch(r"\s*(\d{1,9})-(\d{1,9})\s*", v or "")
        if not m:
            raise BadInput(f"hl={v!r} is not a range; use hl=START-END with character offsets, e.g. hl=120-245.")
        a, b = int(m[1]), int(m[2])
        if a >= b or b > length:
            raise BadInput(f"hl={v} is outside the article (it has {length} characters) or empty.")
        ranges.append((a, b))
    merged: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def segments(text: str, ranges: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """The text cut into (piece, highlighted) pairs, in order; joined they give back the text."""
    out, pos = [], 0
    for a, b in ranges:
        if a > pos:
            out.append((text[pos:a], False))
        out.append((text[a:b], True))
        pos = b
    if pos < len(text):
        out.append((text[pos:], False))
    return out
