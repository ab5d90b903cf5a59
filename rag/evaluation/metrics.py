"""How answers are scored: SQuAD-style exact match and F1, containment, multiple choice, and whether a short
answer is right. Pure functions; the fitting script labels its data with the same ones the eval reports with."""

from __future__ import annotations

import re
import string
from collections import Counter


def normalize_answer(s: str) -> str:
    """Lower case, drop punctuation (curly quotes too) and articles, collapse white space."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation) | set("“”‘’«»–—"))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def exact_match(pred: str | None, golds: list[str]) -> float:
    p = normalize_answer(pred or "")
    return float(any(p == normalize_answer(g) for g in golds)) if p else 0.0


def token_f1(pred: str | None, golds: list[str]) -> float:
    p = normalize_answer(pred or "").split()
    best = 0.0
    for g in golds:
        gt = normalize_answer(g).split()
        common = Counter(p) & Counter(gt)
        same = sum(common.values())
        if same:
            prec, rec = same / len(p), same / len(gt)
            best = max(best, 2 * prec * rec / (prec + rec))
    return best


def contains(text: str | None, golds: list[str]) -> bool:
    t = f" {normalize_answer(text or '')} "
    return any(normalize_answer(g) and f" {normalize_answer(g)} " in t for g in golds)


def best_choice(answer_text: str, choices: list[str]) -> int | None:
    """The choice the answer supports best: contained whole first, else most shared tokens."""
    if not answer_text:
        return None
    scored = []
    for i, ch in enumerate(choices):
        whole = contains(answer_text, [ch])
        overlap = token_f1(answer_text, [ch]) if not whole else 1.0
        recall = _token_recall(ch, answer_text)
        scored.append((whole, recall, overlap, -i))
    best = max(scored)
    return -best[3] if (best[0] or best[1] > 0) else None


def _token_recall(choice: str, text: str) -> float:
    c = normalize_answer(choice).split()
    t = set(normalize_answer(text).split())
    return sum(1 for w in c if w in t) / len(c) if c else 0.0


def percentile(values: list[float], q: float) -> float:
    """The value at quantile ``q`` (nearest rank, no interpolation); 0.0 for no values."""
    if not values:
        return 0.0
    v = sorted(values)
    i = min(len(v) - 1, max(0, round(q * (len(v) - 1))))
    return v[i]


def short_answer_right(pred: str | None, golds: list[str]) -> bool:
    """Whether a short answer says what a gold answer says, judged strictly, since it is shown in bold:
    the same words once normalised; or the whole gold answer inside it with at most two words more ("$310
    million for the region" for "$310 million"); or most of the gold answer (two thirds of its words, "Squid
    Game" for "the Squid Game series"). Numbers and their scale words must agree: "2" is not "2 million"."""
    p = normalize_answer(pred or "")
    if not p:
        return False
    for g in map(normalize_answer, golds):
        if not g:
            continue
        if p == g:
            return True
        if _numbers(p) != _numbers(g):
            continue
        pw, gw = p.split(), g.split()
        if f" {g} " in f" {p} " and len(pw) <= len(gw) + 2:
            return True
        if f" {p} " in f" {g} " and 3 * len(pw) >= 2 * len(gw):
            return True
    return False


_SCALE_WORDS = {"thousand", "million", "billion", "trillion", "percent", "%"}


def _numbers(text: str) -> list[str]:
    return [w for w in text.split() if any(ch.isdigit() for ch in w) or w in _SCALE_WORDS]
