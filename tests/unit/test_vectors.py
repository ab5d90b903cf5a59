"""Stored sentence vectors: int8 with a scale, packed into a metadata field. Pure logic."""

import numpy as np

from rag.encoders.vectors import SentenceVectors
from rag.index.snapshot import SentenceTable


def test_pack_and_unpack_keep_offsets_and_cosines():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    spans = [(0, 10), (11, 40), (41, 45), (46, 90), (91, 100)]
    packed = SentenceVectors.quantize(spans, v).pack()
    back = SentenceVectors.unpack(packed, 384)
    assert list(zip(back.starts.tolist(), back.ends.tolist())) == spans
    q = rng.normal(size=384).astype(np.float32)
    q /= np.linalg.norm(q)
    assert np.abs(back.vectors() @ q - v @ q).max() < 0.005
    assert len(packed) < 5 * 384 * 1.4 + 100  # about 400 bytes a sentence


def test_a_table_finds_each_chunks_sentences():
    a = SentenceVectors.quantize([(0, 5), (6, 9)], np.eye(2, 4, dtype=np.float32))
    b = SentenceVectors.quantize([(3, 8)], np.ones((1, 4), dtype=np.float32) / 2)
    table = SentenceTable.build([a, None, b], 4)
    assert table.of(0).starts.tolist() == [0, 6] and len(table.of(1)) == 0 and table.of(2).ends.tolist() == [8]
