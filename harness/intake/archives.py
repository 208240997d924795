"""Unpack a zip or tar archive safely, grader-side, into a private folder; nothing in it is ever run.

- no path traversal: absolute names, drive letters and ``..`` refuse the archive;
- no links: symbolic and hard links, devices and FIFOs are left out;
- caps on the number of entries, the bytes written (counted while writing, not
  taken from the archive's own claims) and the compression ratio, so an
  archive bomb stops early and is named as one;
- files are written 0644 and folders 0755 (readable by an unprivileged engine
  process, runnable by nobody), never over an existing file.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.errors import HarnessError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_CHUNK = 1 << 16
_JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db")


class ArchiveError(HarnessError):
    """An archive that cannot be unpacked safely; the message names it and says why."""


@dataclass(frozen=True)
class Caps:
    """How much one archive may unpack to."""

    total_bytes: int = 256 << 20
    entries: int = 5000
    ratio: int = 100               # bytes written per byte of archive, beyond the first MB
    slack_bytes: int = 1 << 20     # below this much, any ratio is fine (small text files compress well)


def is_archive(path: Path) -> bool:
    """Whether ``path`` names a zip or tar archive (by its name)."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: Path) -> str:
    """The name without its archive suffix: 'hw1.tar.gz' -> 'hw1'."""
    lower = path.name.lower()
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def safe_name(name: str, archive: str) -> PurePosixPath | None:
    """The member's relative path, None for junk (__MACOSX, .DS_Store); ArchiveError if it points outside."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise ArchiveError(f"{archive}: refused: the entry {name!r} has an absolute path")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"{archive}: refused: the entry {name!r} points outside the archive (..)")
    if not parts or clean.startswith(_JUNK[0]) or parts[-1] in _JUNK[1:]:
        return None
    return PurePosixPath(*parts)


class _Budget:
    def __init__(self, archive: Path, caps: Caps):
        self.name, self.caps = archive.name, caps
        self.size = max(1, archive.stat().st_size)
        self.written = 0
        self.entries = 0

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.caps.entries:
            raise ArchiveError(f"{self.name}: refused: more than {self.caps.entries} entries")

    def spend(self, n: int) -> None:
        self.written += n
        if self.written > self.caps.total_bytes:
            raise ArchiveError(f"{self.name}: refused as an archive bomb: it unpacks to more than "
                               f"{self.caps.total_bytes >> 20} MB")
        if self.written > self.caps.slack_bytes and self.written > self.caps.ratio * self.size:
            raise ArchiveError(f"{self.name}: refused as an archive bomb: more than {self.caps.ratio} times "
                               f"its own size ({self.size} bytes) once unpacked")


def _write(dest: Path, rel: PurePosixPath, stream, budget: _Budget) -> None:
    target = dest.joinpath(*rel.parts)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    if target.parent.resolve() != dest.resolve() and dest.resolve() not in target.parent.resolve().parents:
        raise ArchiveError(f"{budget.name}: refused: the entry {rel} points outside the archive")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError:
        return  # a duplicate entry: the first one stays
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(_CHUNK):
            budget.spend(len(chunk))
            out.write(chunk)


def extract(archive: Path, dest: Path, caps: Caps = Caps()) -> None:
    """Unpack ``archive`` into the folder ``dest`` (created), under ``caps``; ArchiveError if it is unsafe."""
    dest.mkdir(parents=True, exist_ok=True, mode=0o755)
    budget = _Budget(archive, caps)
    try:
        if archive.name.lower().endswith(".zip") or zipfile.is_zipfile(archive):
            _extract_zip(archive, dest, budget)
        else:
            _extract_tar(archive, dest, budget)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError, RuntimeError,
            NotImplementedError) as e:
        raise ArchiveError(f"{archive.name}: not an archive that can be unpacked "
                           f"({type(e).__name__}: {str(e)[:150] or 'corrupt'})") from None


def _extract_zip(archive: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            budget.entry()
            rel = safe_name(info.filename, archive.name)
            mode = info.external_attr >> 16
            if rel is None or stat.S_ISLNK(mode):
                continue
            if info.is_dir():
                dest.joinpath(*rel.parts).mkdir(parents=True, exist_ok=True, mode=0o755)
                continue
            if info.file_size > budget.caps.slack_bytes and info.file_size > budget.caps.ratio * max(
                    1, info.compress_size):
                raise ArchiveError(f"{archive.name}: refused as an archive bomb: {info.filename} claims "
                                   f"{info.file_size} bytes from {info.compress_size}")
            with zf.open(info) as stream:
                _write(dest, rel, stream, budget)


def _extract_tar(archive: Path, dest: Path, budget: _Budget) -> None:
    with tarfile.open(archive, mode="r:*") as tf:
        while (member := tf.next()) is not None:
            budget.entry()
            rel = safe_name(member.name, archive.name)
            if rel is None:
                continue
            if member.isdir():
                dest.joinpath(*rel.parts).mkdir(parents=True, exist_ok=True, mode=0o755)
            elif member.isreg():
                stream = tf.extractfile(member)
                if stream is not None:
                    _write(dest, rel, stream, budget)
            # symbolic and hard links, devices and FIFOs are left out
