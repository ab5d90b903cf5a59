"""Which files an ingest reads, and the article id each one gets.

An article's id is a readable slug of its path relative to the folder that was ingested, plus a short hash
of that path, so `a/index.html` and `b/index.html`, or `记事1` and `記事1`, never share one. The absolute
path is kept as the article's origin: a file whose id is already held by a file elsewhere is refused, not
written over. A JSON record's own id is kept as it is when it is a plain name; records are updated by id.

Walking a folder never follows a link out of it, never opens a FIFO or a device, and reports every entry
it passes over, with the reason.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.types import Skipped

RECORD_ORIGIN = "record"  # records are keyed by their own id: any file may update one
URL_ORIGIN = "url"  # web articles are keyed by their canonical URL: any fetch of it may update them
_PLAIN_ID = re.compile(r"[\w.-]{1,128}")
_SLUG_MAX = 60


@dataclass(frozen=True)
class Source:
    path: Path  # the file to read
    key: str  # its path relative to the ingested folder, with "/" separators: what its id is made from
    origin: str  # the absolute path: which file holds the id

    @property
    def article_id(self) -> str:
        return file_article_id(self.key)


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def _digest(s: str, n: int = 10) -> str:
    return hashlib.sha256(_nfc(s).encode("utf-8")).hexdigest()[:n]


def slug(text: str) -> str:
    """Letters, digits, '.', '_' and '-' of any script; other runs become one '-'."""
    s = re.sub(r"[^\w.-]+", "-", _nfc(text)).strip("-.")
    return s[:_SLUG_MAX].rstrip("-.") or "article"


def file_article_id(key: str) -> str:
    """`2022/report.txt` -> `2022-report-<10 hex>`: readable, and distinct for distinct paths."""
    stem = key.rsplit(".", 1)[0] if "." in key.rsplit("/", 1)[-1] else key
    return f"{slug(stem.replace('/', '-'))}-{_digest(key)}"


def record_article_id(record_id: str) -> str:
    """A record's own id, kept as it is when it is a plain name (so evaluation labels still match), else a
    slug of it plus a hash of the original."""
    rid = str(record_id)
    if _PLAIN_ID.fullmatch(rid) and _nfc(rid) == rid and not rid.startswith("."):
        return rid
    return f"{slug(rid)}-{_digest(rid)}"


def iter_sources(paths: Iterable[str | Path], exclude: Iterable[Path] = ()) -> Iterator[Source | Skipped]:
    """Files to read under each path, sorted, and a Skipped entry for everything passed over.

    A path named directly is read even when it is a link (the user asked for it). Inside a folder, hidden
    entries are passed over quietly, as version-control and editor files are; links are followed only to
    files inside the same folder. Folders in ``exclude`` (the index itself) are never read."""
    excluded = {p.resolve() for p in exclude}
    for given in paths:
        p = Path(given)
        if not os.path.lexists(p):
            yield Skipped(str(p), "no such file or folder")
        elif p.is_dir():
            yield from _walk(p, excluded)
        else:
            yield _checked(p, p.resolve().parent if p.is_symlink() else p.parent, named=True)


def _walk(root: Path, excluded: set[Path]) -> Iterator[Source | Skipped]:
    problems: list[Skipped] = []

    def unreadable(err: OSError) -> None:
        problems.append(Skipped(err.filename or str(root), f"cannot read folder: {err.strerror or err}"))

    real_root = root.resolve()
    if real_root in excluded:
        yield Skipped(str(root), "the index folder itself; not ingested")
        return
    for folder, dirs, files in os.walk(root, onerror=unreadable):
        yield from problems
        problems.clear()
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in list(dirs):
            if (Path(folder) / d).resolve() in excluded:
                dirs.remove(d)
                yield Skipped(os.path.join(folder, d), "the index folder itself; not ingested")
                continue
            if os.path.islink(os.path.join(folder, d)):
                dirs.remove(d)
                yield Skipped(os.path.join(folder, d), "link to a folder; not followed (ingest its target directly)")
        for name in sorted(files):
            if not name.startswith("."):
                yield _checked(Path(folder) / name, real_root, root=root)
    yield from problems


def _checked(path: Path, real_root: Path, root: Path | None = None, named: bool = False) -> Source | Skipped:
    name = str(path)
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return Skipped(name, "broken link: its target does not exist")
        if not named and not target.is_relative_to(real_root):
            return Skipped(name, f"link to {target}, outside the ingested folder; not followed")
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return Skipped(name, f"cannot read: {e.strerror or e}")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or special file"
        return Skipped(name, f"not a regular file ({kind})")
    rel = path.name if named or root is None else path.relative_to(root).as_posix()
    origin = str(path.parent.resolve() / path.name)
    return Source(path=path, key=_nfc(rel), origin=origin)
