"""A one-line progress display for large batches: done, total, elapsed and ETA on a terminal."""

from __future__ import annotations

import time
from typing import TextIO

#: Batches smaller than this show no progress line.
MIN_BATCH = 5


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Rewrites one line of ``stream`` after each graded submission."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (total - done) if done else 0.0
        line = f"graded {done}/{total} submissions, {_clock(elapsed)} elapsed, ETA {_clock(eta)}"
        self.stream.write(f"\r{line}\033[K" + ("\n" if done == total else ""))
        self.stream.flush()


def for_batch(total: int, stream: TextIO) -> Progress | None:
    """A progress line when ``stream`` is a terminal and the batch is large, else None."""
    return Progress(stream) if total >= MIN_BATCH and stream.isatty() else None
