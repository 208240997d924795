"""Reference work shared by every submission of a batch: computed once, used by all.

The answers of the reference engine depend only on what it is asked, never on the
submission being graded: the traced reference run of a failing case, the reference
side of an op probe (keyed by op and operand values, through the probe's program),
and the fuzz corpus of a seed.  ``ReferenceCache`` keeps them for one batch
(``grading.grade_plan`` makes one and passes it to blame and fuzz).  Its source is
always the reference engine in its own process, through the runner; a submission's
answers never enter it.

It is thread-safe: when two submissions ask for the same program at the same time,
one runs it and the other waits for that answer.  ``runs`` counts the reference
programs actually run (with sharing off, every request runs).  Sharing is on
unless ``Feedback.share`` is False or the environment sets ``GRADE_SHARE_REFERENCE=0``.
With ``keep``, the reference processes are kept for the batch (``KeptSessions``) instead
of one started per question; ``close`` stops them.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from harness.model import EngineStatus
from harness.running.observation import Observation
from harness.running.reference import trusted
from harness.running.runner import Limits, Session

#: Set to 0 to compute reference work per submission (the identity test compares both ways).
ENV_SWITCH = "GRADE_SHARE_REFERENCE"


def sharing_enabled(requested: bool = True) -> bool:
    """Whether a batch shares its reference work: ``requested`` and not turned off in the environment."""
    return requested and os.environ.get(ENV_SWITCH, "1").strip() not in ("0", "no", "false", "off")


def run_programs(spec: str, select: str | None, programs: list, timeouts: list, limits: Limits) -> list:
    """Observations of ``programs`` from one engine process of ``spec``."""
    with Session(spec, limits, select) as session:
        return session.run(programs, timeouts)


class KeptSessions:
    """Reference engine processes kept for a batch: a run borrows an idle one (or starts one) and gives
    it back, so that the batch does not start a process per question.  A process is retired after
    MAX_BORROWS runs (far from its CPU limit); ``close`` stops them all."""

    MAX_BORROWS = 50

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple, list[Session]] = {}
        self._live: dict[Session, int] = {}   # every session started and not closed -> times borrowed

    @contextmanager
    def borrow(self, spec: str, limits: Limits) -> Iterator[Session]:
        """An engine process of ``spec`` (under ``limits``) that no one else uses until it is given back."""
        key = (spec, limits)
        with self._lock:
            idle = self._idle.get(key)
            session = idle.pop() if idle else Session(spec, limits)
            self._live[session] = self._live.get(session, 0) + 1
        kept = False
        try:
            yield session
            kept = not session.load_error
        finally:
            with self._lock:
                kept = kept and session in self._live and self._live[session] < self.MAX_BORROWS
                if kept:
                    self._idle.setdefault(key, []).append(session)
                else:
                    self._live.pop(session, None)
            if not kept:
                session.close()

    def close(self) -> None:
        """Stop every kept process (one still borrowed is stopped too, and not kept when given back)."""
        with self._lock:
            sessions, self._live, self._idle = list(self._live), {}, {}
        for session in sessions:
            session.close()


def _key(reference: str, program, timeout: float) -> str:
    """What the reference engine is asked, without the program's id (probe ids differ per submission)."""
    return json.dumps([reference, {**program.to_wire(), "id": ""}, timeout], sort_keys=True)


class ReferenceCache:
    """One batch's reference answers: program -> observation, and named values (fuzz corpora)."""

    def __init__(self, enabled: bool = True, keep: bool = False):
        self.enabled = enabled
        self.kept = KeptSessions() if keep else None  # reference processes kept for the batch (close() them)
        self.runs = 0          # reference programs run
        self.computed = 0      # values computed (fuzz corpora, or their parts)
        self._lock = threading.Lock()
        self._answers: dict[str, Future] = {}
        self._values: dict[object, Future] = {}

    def run(self, reference: str, programs: list, timeouts: list, limits: Limits) -> list[Observation]:
        """The reference engine's observations of ``programs``, in order (each under its own id);
        the ones not known yet are run in one reference process (trusted limits)."""
        if not programs:
            return []
        keys = [_key(reference, p, t) for p, t in zip(programs, timeouts)]
        mine: dict[str, Future] = {}
        futures: list[Future] = []
        with self._lock:
            for k in keys:
                fut = self._answers.get(k) if self.enabled else None
                if fut is None:
                    fut = mine.get(k)
                if fut is None:
                    fut = mine[k] = Future()
                    if self.enabled:
                        self._answers[k] = fut
                futures.append(fut)
            self.runs += len(mine)
        if mine:
            todo = [(p, t) for p, t, k in zip(programs, timeouts, keys) if k in mine]
            todo = list({_key(reference, p, t): (p, t) for p, t in todo}.values())
            try:
                if self.kept is None:
                    got = run_programs(reference, None, [p for p, _ in todo], [t for _, t in todo], trusted(limits))
                else:
                    with self.kept.borrow(reference, trusted(limits)) as session:
                        got = session.run([p for p, _ in todo], [t for _, t in todo])
            except BaseException as e:
                with self._lock:
                    for k, fut in mine.items():
                        self._answers.pop(k, None)
                        fut.set_exception(e)
                raise
            with self._lock:
                for (p, t), obs in zip(todo, got):
                    k = _key(reference, p, t)
                    if obs.status == EngineStatus.CRASHED:  # the process died: not an answer to keep
                        self._answers.pop(k, None)
                    mine[k].set_result(obs)
        return [replace(f.result(), id=p.id) for f, p in zip(futures, programs)]

    def close(self) -> None:
        """Stop the reference processes kept for the batch (a later run starts new ones)."""
        if self.kept is not None:
            self.kept.close()

    def count(self, runs: int) -> None:
        """Count ``runs`` reference programs run outside ``run`` (a fuzz corpus's own reference process)."""
        with self._lock:
            self.runs += runs

    def value(self, key: object, compute: Callable[[], object]) -> object:
        """``compute()``'s result, computed once per ``key`` (others asking meanwhile wait for it)."""
        fut, owner = self._claim(key)
        if owner:
            self._compute(key, fut, compute)
        return fut.result()

    def values(self, keys: list, compute: Callable[[Any], object]) -> list:
        """``compute(key)`` for each key, each computed once: the ones nobody computes yet first, one
        by one, so that every thread asking for the same keys helps compute them; then it waits for
        the others."""
        futures: dict = {}
        for key in keys:
            fut, owner = self._claim(key)
            futures[key] = fut
            if owner:
                self._compute(key, fut, functools.partial(compute, key))
        return [futures[key].result() for key in keys]

    def _claim(self, key: object) -> tuple[Future, bool]:
        """The future of ``key``'s value, and whether the caller is to compute it (and then ``_settle`` it).

        A job process (``harness.running.jobs``) claims through its channel to the parent's cache."""
        with self._lock:
            fut = self._values.get(key) if self.enabled else None
            if fut is not None:
                return fut, False
            fut = Future()
            if self.enabled:
                self._values[key] = fut
            self.computed += 1
            return fut, True

    def _compute(self, key: object, fut: Future, compute: Callable[[], object]) -> None:
        try:
            value = compute()
        except BaseException as e:
            self._settle(key, fut, error=e)
            raise
        self._settle(key, fut, value)

    def _settle(self, key: object, fut: Future, value: object = None, error: BaseException | None = None) -> None:
        """Give a claimed key its value, or its failure: then the key is forgotten (a later claim computes
        it again) and whoever waits for this future gets the error."""
        if fut.done():  # settled already (a job process's failure, reported twice)
            return
        if error is None:
            fut.set_result(value)
            return
        with self._lock:
            if self._values.get(key) is fut:
                self._values.pop(key)
        fut.set_exception(error)
