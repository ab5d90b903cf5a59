"""How common a word stem is in general English: a prior for term weights when the index is small.

An index of one article says that "Guatemala" is as common as "the" (both are in every chunk), so
weights from its own document frequencies alone make a question about Guatemala look answered by any
sentence that shares its common words. Word frequencies from `wordfreq` (many sources, many genres)
stand in for the corpus statistics that a small index does not have.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable

# Rarer words are left out: a stem missing from the table counts as rare, which is what they are.
MIN_WORD_FREQUENCY = 1e-7
# Words in a chunk of the default size (about 1,000 characters), for turning a word's frequency in
# running text into the chance that a chunk contains it.
WORDS_PER_CHUNK = 170

_lock = threading.Lock()
_table: dict[str, float] | None = None


def stem_frequencies(stem_words: Callable[[list[str]], list[str]]) -> dict[str, float]:
    """Stem -> summed frequency of its English word forms ("announce", "announced", ... -> "announc").

    Built once per process (about half a second). Every caller stems with the same English Snowball
    stemmer, so one table serves them all."""
    global _table
    with _lock:
        if _table is None:
            import wordfreq

            freqs = wordfreq.get_frequency_dict("en")
            words = [w for w, f in freqs.items() if f >= MIN_WORD_FREQUENCY and w.isalnum()]
            table: dict[str, float] = defaultdict(float)
            for word, stem in zip(words, stem_words(words)):
                table[stem] += freqs[word]
            _table = dict(table)
            # wordfreq memoises its whole word list (about 45 MB of Python objects); the 61,638 stems are all
            # that is needed from it, about 7 MB.
            del freqs
            for cached in (wordfreq.get_frequency_dict, wordfreq.get_frequency_list):
                getattr(cached, "cache_clear", lambda: None)()
        return _table


def chunk_probability(frequency: float, words: int = WORDS_PER_CHUNK) -> float:
    """The chance that a chunk of ``words`` words holds a word of this frequency at least once."""
    return 1.0 - math.exp(-words * frequency)
