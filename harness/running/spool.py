"""The spool: each graded submission's whole result goes to disk as it finishes; its summary stays in memory.

A batch of any size then holds in memory only the results being graded or rendered and a small
``EngineSummary`` per engine; the report is assembled by reading the results back one at a time
(``Spooled``, a ``harness.model.LazyEngines``).  The results live in one unnamed temporary file
(``O_TMPFILE`` where the system has it) made in a private folder (mode 0700) that is removed at once:
nothing is left on disk however ``grade`` ends, even when killed.  Each record is the pickle of a result
that this process made, with an HMAC under a key that never leaves this process, checked when it is read.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import os
import pickle
import shutil
import tempfile
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from harness.model import EngineResult, EngineSummary, LazyEngines

_DIGEST = 32  # bytes of an HMAC-SHA256


@dataclass(frozen=True, slots=True)
class Entry:
    """Where one engine's result is in the spool, and its summary; where its report piece is, if one was
    made as it was graded (``Spool.ready``)."""

    offset: int
    size: int
    summary: EngineSummary
    piece: tuple[int, int] | None = None  # (offset, size)


@dataclass
class Graded:
    """One submission's results made ready for the spool where they were graded (``Spool.ready``):
    prepared, with each engine's report piece, compressed (None: none made)."""

    results: list[EngineResult]
    pieces: list[bytes | None]


class Spool:
    """An append-only store of engine results (thread-safe), usable as a context manager.

    ``prepare`` is applied to each result before it is stored (and summarised).  ``piece``, when set,
    makes an engine's piece of the report (e.g. its entry in the JSON report, ``kind`` "json") where the
    engine was graded: in a batch's job process, in parallel, rather than in ``grade`` once the batch is
    done.  The report uses a piece only if it is of its own kind and the result was not stored again
    since (``Spooled.piece``).
    """

    def __init__(self, prepare: Callable[[EngineResult], None] | None = None,
                 piece: Callable[[EngineResult], str] | None = None, kind: str = ""):
        self.prepare = prepare
        self.piece, self.kind = piece, kind
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per distinct list of case ids
        folder = tempfile.mkdtemp(prefix="grade-spool-")  # 0700
        try:
            self._file: IO[bytes] | None = tempfile.TemporaryFile(dir=folder)  # already without a name
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        atexit.register(self.close)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Free the file (its space returns to the disk); the spool cannot be read after that."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        atexit.unregister(self.close)

    def ready(self, results: Sequence[EngineResult]) -> Graded:
        """``results`` prepared, with their report pieces: called where they were graded (in a job process,
        ``harness.running.jobs``), so that ``put`` and the report only copy them."""
        for e in results:
            if self.prepare is not None:
                self.prepare(e)
        pieces = [zlib.compress(self.piece(e).encode(), 1) if self.piece is not None else None for e in results]
        return Graded(list(results), pieces)

    def put(self, results: Sequence[EngineResult] | Graded) -> list[Entry]:
        """Store ``results`` (one submission's engines, or what ``ready`` made of them); where each one is,
        with its summary."""
        if isinstance(results, Graded):
            return [self._store(e, piece=p) for e, p in zip(results.results, results.pieces, strict=True)]
        return [self._store(e, prepare=True) for e in results]

    def engines(self, entries: Sequence[Entry]) -> Spooled:
        """The results at ``entries``, in that order, as a sequence that loads each one when read."""
        return Spooled(self, list(entries))

    def _store(self, e: EngineResult, prepare: bool = False, piece: bytes | None = None) -> Entry:
        if prepare and self.prepare is not None:
            self.prepare(e)
        data = zlib.compress(pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL), 1)
        record = self._sealed(data)
        extra = self._sealed(piece) if piece is not None else b""
        ids = tuple(c.id for c in e.cases)
        with self._lock:
            if self._file is None:
                raise ValueError("the spool is closed")
            ids = self._ids.setdefault(ids, ids)
            offset = self._file.seek(0, os.SEEK_END)
            self._file.write(record + extra)
        where = (offset + len(record), len(extra)) if extra else None
        return Entry(offset, len(record), EngineSummary.of(e, ids), where)

    def _sealed(self, data: bytes) -> bytes:
        return hmac.digest(self._key, data, hashlib.sha256) + data

    def _read(self, offset: int, size: int) -> bytes:
        """The data of the record at ``offset``, checked."""
        with self._lock:
            if self._file is None:
                raise ValueError("the spool is closed")
            self._file.flush()
            self._file.seek(offset)
            record = self._file.read(size)
        digest, data = record[:_DIGEST], record[_DIGEST:]
        if len(record) != size or not hmac.compare_digest(digest, hmac.digest(self._key, data, hashlib.sha256)):
            raise ValueError("a spooled result was changed on disk")
        return zlib.decompress(data)

    def load_piece(self, entry: Entry, kind: str) -> str | None:
        """The report piece of kind ``kind`` stored with ``entry``'s result, if any."""
        if entry.piece is None or kind != self.kind:
            return None
        return self._read(*entry.piece).decode()

    def load(self, entry: Entry) -> EngineResult:
        """The result stored at ``entry`` (a new object at each call)."""
        e = pickle.loads(self._read(entry.offset, entry.size))
        if not isinstance(e, EngineResult):
            raise ValueError("a spooled record is not an engine result")
        return e


class Spooled(LazyEngines):
    """Results in a spool, in order; ``spooled[i] = result`` stores a changed one again (same summary)."""


    def __init__(self, spool: Spool, entries: list[Entry]):
        self.spool, self.entries = spool, entries

    @property
    def summaries(self) -> list[EngineSummary]:
        return [e.summary for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, index: int) -> EngineResult:
        return self.spool.load(self.entries[index])

    def piece(self, index: int, kind: str) -> str | None:
        return self.spool.load_piece(self.entries[index], kind)

    def __setitem__(self, index: int, result: EngineResult) -> None:
        self.entries[index] = self.spool._store(result)  # (without a piece: the one made before may differ)

