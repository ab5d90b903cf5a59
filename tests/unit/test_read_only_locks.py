"""The locks of a process that may not write the index folder: taken shared on the existing lock files, so a
writer elsewhere is still waited for, and writes are refused with a clear error."""

import pytest

from rag.errors import IndexBusy, ReadOnlyIndex
from rag.index.locks import IndexLocks


class ReadOnlyLocks(IndexLocks):
    read_only = True  # as os.access says on a read-only mount; as root, permissions alone cannot show it


def test_a_read_only_reader_waits_for_a_writer_elsewhere_and_never_writes(tmp_path):
    writer = IndexLocks(tmp_path)
    with writer.writer():
        pass  # the lock files now exist, as in any index that was written
    reader = ReadOnlyLocks(tmp_path, store_timeout=0.2)

    with writer.store(), pytest.raises(IndexBusy, match="stayed busy for 0.2 s"), reader.store():
        pass
    with reader.store(), ReadOnlyLocks(tmp_path).store():
        pass  # shared: readers do not wait for each other

    assert not reader.writer_is_running()
    with writer.writer():
        assert reader.writer_is_running()
    with pytest.raises(ReadOnlyIndex, match="read-only for this process"), reader.writer():
        pass


def test_a_read_only_index_without_lock_files_is_read_without_locks(tmp_path):
    reader = ReadOnlyLocks(tmp_path)
    with reader.store():
        assert not reader.writer_is_running()
    assert list(tmp_path.iterdir()) == []
