"""Which parts of the passages the span model reads: the fitted reader's best sentences with their neighbours."""

from rag.answer.readers.span import sentence_ranges
from rag.answer.reading import SentenceCandidate
from rag.types import Chunk, Hit

TEXT = "One. Two two. Three three three. Four. Five five. Six six six. Seven."


def candidates():
    chunk_a = Chunk("a:0", "a", 0, 0, 38, TEXT[:38], "A")  # sentences 1-4
    chunk_b = Chunk("a:1", "a", 1, 38, len(TEXT), TEXT[38:], "A")  # sentences 5-7
    out, at = [], 0
    for sentence in ["One.", "Two two.", "Three three three.", "Four.", "Five five.", "Six six six.", "Seven."]:
        start = TEXT.index(sentence, at)
        at = start + len(sentence)
        passage, chunk = (1, chunk_a) if start < 38 else (2, chunk_b)
        out.append(SentenceCandidate(passage, Hit(chunk, 1.0), start, at, sentence))
    return out


def test_a_sentence_is_read_with_its_neighbours_inside_its_passage():
    s = candidates()
    assert sentence_ranges(s, [s[1]]) == [(0, s[0].start, s[2].end)]
    assert sentence_ranges(s, [s[3]]) == [(0, s[2].start, s[3].end)], "no neighbour from the next passage"
    assert sentence_ranges(s, [s[4]]) == [(1, s[4].start, s[5].end)]


def test_ranges_that_meet_are_merged_and_passages_stay_apart():
    s = candidates()
    assert sentence_ranges(s, [s[0], s[2], s[6]]) == [(0, s[0].start, s[3].end), (1, s[5].start, s[6].end)]
    for p, a, b in sentence_ranges(s, s):
        chunk = s[0].hit.chunk if p == 0 else s[4].hit.chunk
        assert chunk.start <= a < b <= chunk.end
