"""Job slots as grader processes: with ``--jobs N``, a batch is graded by N job processes.

The engines always run in engine processes of their own, but the grader's own work per submission
(judging, blame's bookkeeping and pictures, fuzz's Hypothesis searches and shrinking) is Python code
that threads would run under one interpreter lock.  So ``grading.grade_plan`` forks N job processes
(``os.fork``: they inherit the parsed cases and built programs) and keeps the scheduling: the longest
items first, an item to a slot as soon as it is free, the progress callback and the spool in the
parent.  A job process receives an item's index, grades it exactly as a thread would (``_grade_one``)
and sends its results back.

The batch's reference work stays shared: a job process's ``SharedProxy`` forwards every question to
the parent's ``ReferenceCache`` over a pipe, served by a thread per job process in the parent.
Reference programs run in the parent (its kept reference processes).  A named value (a fuzz corpus
part, a graph's shape) is claimed: the parent answers "compute it" to the first job process that asks
(which computes it, with its own closure, and sends the value or the failure back) and makes the
others wait for that answer.  A job process that ends while it owns a key fails that key: its
waiters get an error, never a hang.

Interrupts: SIGINT or SIGTERM to the grader stops the job processes with SIGTERM; each one is a
child subreaper that kills its engine processes (``reaper.stop_all``) when told to stop, when its
parent dies (``PR_SET_PDEATHSIG``) or when its pipe to the parent closes.  A job process that dies
(a harness bug, the memory killer) costs only the item it held: that item gets the "the harness could
not grade this submission" results, and a new job process takes its slot.

The frames on these pipes are pickles.  That is acceptable here because both ends are the grader
itself (the parent and the processes it forked); engine processes never see these pipes (they are
spawned with only their own two descriptors).  Frames are still bounded (``MAX_FRAME``).

``GRADE_JOB_PROCESSES=0`` in the environment keeps the threads (so does a system without ``os.fork``).
"""

from __future__ import annotations

import functools
import os
import pickle
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from harness.running.shared import ReferenceCache

#: Set to 0 to grade a batch's submissions in threads of one process instead.
ENV_SWITCH = "GRADE_JOB_PROCESSES"
MAX_FRAME = 512 << 20  # one submission's pickled results, or one reference value: far below this
STOP_WAIT = 10.0  # seconds a job process gets to stop its engine processes before it is killed
_PICKLE = pickle.HIGHEST_PROTOCOL
#: Held while a job process is forked and while a serving thread closes a pipe. A close is two steps (the
#: descriptor, then the connection's handle); a child forked between them would close the stale handle, by
#: then the descriptor of one of its own new pipes.
_fork_lock = threading.Lock()


def enabled(jobs: int, items: int) -> bool:
    """Whether ``items`` items graded ``jobs`` at a time go to job processes (else threads, or none)."""
    switch = os.environ.get(ENV_SWITCH, "1").strip().lower()
    return jobs > 1 and items > 1 and hasattr(os, "fork") and switch not in ("0", "no", "false", "off")


class NotForked(Exception):
    """Not one job process could be started (nothing was graded): grade in threads instead."""


class ParentGone(BaseException):
    """The grader that forked this job process is gone: stop (not an error of the submission)."""


def _portable(e: BaseException) -> Exception:
    """``e`` as an exception that crosses a pipe: itself when it pickles back, else its words.  An
    interrupt of one job process is not passed on as an interrupt to the others."""
    if isinstance(e, Exception):
        try:
            back = pickle.loads(pickle.dumps(e, _PICKLE))
            if isinstance(back, Exception):
                return back
        except Exception:  # e.g. an exception whose __init__ takes other arguments
            pass
    return RuntimeError(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)


# --- the job process's side ---------------------------------------------------------------------

class SharedProxy:
    """The batch's ``ReferenceCache`` as a job process sees it: each call is answered by the parent's.

    ``run``, ``count``, ``value`` and ``values`` keep the cache's meaning; ``runs`` and ``computed``
    are the parent's counts.  ``kept`` holds this job process's own reference processes (a fuzz
    corpus part is recorded here, with the caller's closure).  One question is asked at a time (a
    lock); a thread that needs a value another thread of this job process is computing waits for it
    here, without holding the pipe (the other thread needs it to give its answer).
    """

    def __init__(self, conn: Connection, enabled: bool, keep: bool):
        from harness.running.shared import KeptSessions

        self.enabled = enabled
        self.kept = KeptSessions() if keep else None
        self._conn = conn
        self._lock = threading.Lock()
        self._mine: dict[object, Future] = {}  # keys a thread of this job process is computing
        self._known: dict[object, object] = {}  # values settled already: asked of the parent once

    def _ask(self, *request: Any) -> Any:
        with self._lock:
            return self._exchange(request)

    def _exchange(self, request: tuple) -> Any:
        data = pickle.dumps(request, _PICKLE)
        try:
            self._conn.send_bytes(data)
            kind, payload = pickle.loads(self._conn.recv_bytes(MAX_FRAME))
        except (EOFError, OSError) as e:
            raise ParentGone(f"the grader's pipe closed ({e or type(e).__name__})") from None
        if kind == "err":
            raise payload
        return payload

    def _claim(self, key: object) -> tuple[bool, Future | None]:
        """Whether this thread computes ``key``, with the future that this job process's other threads
        wait on meanwhile; if not, the future to wait on when a thread of this job process computes it
        (None: another job process does, and the parent says when it is done)."""
        with self._lock:
            if self._exchange(("claim", key)) != "own":
                return False, self._mine.get(key)
            mine: Future | None = None
            if self.enabled:
                mine = self._mine[key] = Future()
            return True, mine

    def _wait(self, key: object, local: Future | None) -> object:
        return local.result() if local is not None else self._ask("wait", key)

    @property
    def runs(self) -> int:
        return self._ask("stats")[0]

    @property
    def computed(self) -> int:
        return self._ask("stats")[1]

    def run(self, reference: str, programs: list, timeouts: list, limits: Any) -> list:
        return self._ask("run", reference, programs, timeouts, limits) if programs else []

    def count(self, runs: int) -> None:
        self._ask("count", runs)

    def value(self, key: object, compute: Callable[[], object]) -> object:
        if key in self._known:  # e.g. a graph's shape, asked for every case of every failing submission
            return self._known[key]
        own, local = self._claim(key)
        return self._keep(key, self._compute(key, compute, local) if own else self._wait(key, local))

    def _keep(self, key: object, value: object) -> object:
        if self.enabled:
            self._known[key] = value
        return value

    def values(self, keys: list, compute: Callable[[Any], object]) -> list:
        """As ``ReferenceCache.values``: the keys nobody computes yet first, then the others' answers."""
        got: dict = {key: self._known[key] for key in keys if key in self._known}
        others = []
        for key in keys:
            if key in got:
                continue
            own, local = self._claim(key)
            if own:
                got[key] = self._compute(key, functools.partial(compute, key), local)
            else:
                others.append((key, local))
        for key, local in others:
            got[key] = self._wait(key, local)
        return [self._keep(key, got[key]) for key in keys]

    def _compute(self, key: object, compute: Callable[[], object], mine: Future | None) -> object:
        try:
            value = compute()
        except BaseException as e:
            try:
                self._settle(key, mine, False, _portable(e))
            except ParentGone:
                pass
            raise
        self._settle(key, mine, True, value)
        return value

    def _settle(self, key: object, mine: Future | None, ok: bool, value: Any) -> None:
        """Tell the parent ``key``'s value (or failure), then this job process's threads waiting for it."""
        try:
            self._ask("settle", key, ok, value)
        finally:
            if mine is not None:
                with self._lock:
                    if self._mine.get(key) is mine:  # (after a failure, another thread may claim it anew)
                        del self._mine[key]
                if ok:
                    mine.set_result(value)
                else:
                    mine.set_exception(value)

    def close(self) -> None:
        if self.kept is not None:
            self.kept.close()


def _job_process(parent: int, items: Connection, proxy: SharedProxy, grade: Callable[[int, Any], Any],
                 mask: set) -> int:
    """The loop of a job process: an item's index in, its results (or why it failed) out."""
    from harness.sandbox import reaper

    stopping = threading.Event()

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stopping.set()
        # The engine processes die now, from another thread: even when the interrupt below is lost (raised
        # inside a gc callback, which only prints it), grading has nothing left to run and ends at once.
        threading.Thread(target=reaper.stop_all, daemon=True).start()
        raise KeyboardInterrupt

    def unraisable(what, default=sys.unraisablehook):
        if not isinstance(what.exc_value, KeyboardInterrupt):  # grade says it was interrupted, once
            default(what)

    try:
        sys.unraisablehook = unraisable
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        reaper._prctl(reaper.PR_SET_PDEATHSIG, signal.SIGTERM)  # the grader dies: stop too
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # signals that came during the fork land now
        if os.getppid() != parent:  # it died before PR_SET_PDEATHSIG
            return 1
        reaper.become_subreaper()  # what an engine process leaves behind is ours to kill
        while not stopping.is_set():
            try:
                i = int(items.recv_bytes(32))
            except (EOFError, OSError):  # the grader is done (or gone)
                return 0
            try:
                reply = pickle.dumps(("done", i, grade(i, proxy)), _PICKLE)
            except Exception as e:  # a harness bug outside _grade_one: only this item
                reply = pickle.dumps(("failed", i, f"{type(e).__name__}: {e}"), _PICKLE)
            if stopping.is_set():  # told to stop while grading: what it made is not a result
                return 1
            if len(reply) > MAX_FRAME:
                reply = pickle.dumps(("failed", i, f"its results are too large ({len(reply)} bytes)"), _PICKLE)
            try:
                items.send_bytes(reply)
            except OSError:
                return 1
        return 1
    except (KeyboardInterrupt, ParentGone):
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            proxy.close()
        finally:
            reaper.stop_all()


# --- the parent's side --------------------------------------------------------------------------

def _serve(conn: Connection, cache: ReferenceCache) -> None:
    """Answer one job process's questions about the batch's reference work, until its pipe closes.
    The keys it claimed and did not settle then fail, so that nobody waits for them forever."""
    owned: dict[object, Future] = {}    # keys this job process computes
    waiting: dict[object, Future] = {}  # keys it claimed while another computes them
    try:
        while True:
            try:
                request = pickle.loads(conn.recv_bytes(MAX_FRAME))
            except (EOFError, OSError):
                return
            try:
                reply: tuple = ("ok", _answer(request, cache, owned, waiting))
            except BaseException as e:
                reply = ("err", _portable(e))
            try:
                conn.send_bytes(pickle.dumps(reply, _PICKLE))
            except OSError:
                return
    finally:
        for key, fut in owned.items():
            cache._settle(key, fut, error=RuntimeError(
                "the job process computing this reference work ended before it finished"))
        with _fork_lock:  # not while a job process is forked (see _fork_lock)
            conn.close()


def _answer(request: tuple, cache: ReferenceCache, owned: dict, waiting: dict) -> object:
    what, *args = request
    if what == "run":
        return cache.run(*args)
    if what == "count":
        cache.count(*args)
        return None
    if what == "stats":
        return cache.runs, cache.computed
    if what == "claim":
        (key,) = args
        fut, owner = cache._claim(key)
        (owned if owner else waiting)[key] = fut
        return "own" if owner else "wait"
    if what == "wait":  # (kept: another thread of the same job process may wait for it too)
        return waiting[args[0]].result()
    if what == "settle":
        key, ok, value = args
        cache._settle(key, owned.pop(key), *((value, None) if ok else (None, value)))
        return None
    raise ValueError(f"unknown request {what!r}")


class _Slot:
    """A job process, seen from the parent: its pid, its pipes, the thread that serves it."""

    def __init__(self, pid: int, items: Connection, serve: Connection):
        self.pid, self.items, self.serve = pid, items, serve
        self.item: int | None = None
        self.status: int | None = None
        self.server: threading.Thread | None = None

    def start_serving(self, cache: ReferenceCache) -> None:
        self.server = threading.Thread(target=_serve, args=(self.serve, cache), daemon=True,
                                       name=f"job-process-{self.pid}")
        self.server.start()

    def give(self, i: int) -> None:
        self.item = i
        try:
            self.items.send_bytes(str(i).encode())
        except OSError:
            pass  # it died: its pipe says so to the next wait()

    def end(self, signum: int | None = None, wait: float = STOP_WAIT) -> str:
        """Close its pipe (and send it ``signum``), wait for it (kill it when it takes longer than
        ``wait`` seconds); how it ended, in words."""
        from harness.sandbox import reaper

        self.items.close()
        if signum is not None:
            _signal(self.pid, signum)
        deadline = time.monotonic() + wait
        try:
            while self.status is None:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.status = status
                elif time.monotonic() > deadline:
                    _signal(self.pid, signal.SIGKILL)
                    self.status = os.waitpid(self.pid, 0)[1]
                else:
                    time.sleep(0.005)
        except ChildProcessError:  # reaped by someone else: how it ended is not known
            self.status = -1
        reaper.helper_gone(self.pid)
        if self.status == -1:
            return "ended"
        code = os.waitstatus_to_exitcode(self.status)
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with code {code}"


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _start(grade: Callable[[int, Any], Any], cache: ReferenceCache, slots: list[_Slot]) -> _Slot:
    """Fork a job process for a new slot, and add it to ``slots`` (before an interrupt can land)."""
    from multiprocessing.connection import Pipe

    from harness.sandbox import cgroups, reaper, uids

    items, items_child = Pipe()
    serve, serve_child = Pipe()
    parent = os.getpid()
    for stream in (sys.stdout, sys.stderr):  # nothing buffered here is written twice
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    # No signal lands between the fork and the child's own handlers (the child would run the
    # parent's code); they stay pending until each side unblocks them.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        # The serving threads may be starting reference processes or closing a pipe: hold the locks they take.
        try:
            pid = reaper.fork_helper(hold=(cgroups._lock, uids._lock, _fork_lock))
        except BaseException:
            for conn in (items, items_child, serve, serve_child):
                conn.close()
            raise
        if pid == 0:  # the job process: never returns
            code = 1
            try:
                for conn in (items, serve, *(c for s in slots for c in (s.items, s.serve))):
                    conn.close()
                proxy = SharedProxy(serve_child, cache.enabled, cache.kept is not None)
                code = _job_process(parent, items_child, proxy, grade, mask)
            finally:
                os._exit(code)
        items_child.close()
        serve_child.close()
        slots.append(_Slot(pid, items, serve))
    finally:
        if os.getpid() == parent:  # a signal that came meanwhile lands here, with the slot known
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    slots[-1].start_serving(cache)  # its thread (and the processes it starts) with signals unblocked
    return slots[-1]


def grade(grade: Callable[[int, Any], Any], keep: Callable[[Any], list], failed: Callable[[int, str], list],
          results: list, jobs: int, progress: Callable[[int, int], None] | None, order: list[int],
          cache: ReferenceCache) -> None:
    """results[i] = keep(grade(i, shared)) for every i of ``order``, in ``jobs`` job processes.

    The items start in ``order``; a slot takes the next one as soon as it is free.  An item whose
    job process ended without its results gets ``keep(failed(i, why))``, and the slot a new process.
    """
    from multiprocessing.connection import wait

    todo = deque(order)
    slots: list[_Slot] = []
    gone: list[_Slot] = []  # job processes that died: their threads are joined at the end
    done = 0
    try:
        while todo and len(slots) < jobs:
            try:
                slot = _start(grade, cache, slots)
            except OSError as e:  # e.g. no more processes: fewer slots, or none (the caller uses threads)
                if not slots:
                    raise NotForked(f"no job process could be started: {e}") from e
                break
            slot.give(todo.popleft())
        while busy := {s.items: s for s in slots if s.item is not None}:
            for conn in wait(list(busy)):
                slot = busy[conn]  # type: ignore[index]
                i = slot.item
                assert i is not None
                try:
                    kind, j, payload = pickle.loads(slot.items.recv_bytes(MAX_FRAME))
                    if j != i:
                        raise ValueError(f"results for item {j}, not {i}")
                except (EOFError, OSError, ValueError, pickle.UnpicklingError) as e:
                    kind, payload = "ended", f"its job process {slot.end(signal.SIGTERM)}"
                    if not isinstance(e, EOFError):
                        payload += f" ({type(e).__name__}: {e})"
                    slots.remove(slot)
                    gone.append(slot)
                    _sweep()
                results[i] = keep(payload if kind == "done" else failed(i, payload))
                slot.item = None
                done += 1
                if progress is not None:
                    progress(done, len(results))
                if todo and slot not in slots:  # a new job process takes the slot of the dead one
                    try:
                        slot = _start(grade, cache, slots)
                    except OSError:  # no more processes now: the other slots go on
                        if not slots:
                            raise
                        continue
                if todo:
                    slot.give(todo.popleft())
    except BaseException:  # interrupted: every job process stops its engine processes now
        from harness.sandbox import reaper

        for slot in slots:
            _signal(slot.pid, signal.SIGTERM)
        reaper.stop_all()  # and the reference processes they may be waiting for
        raise
    finally:
        for slot in slots:
            slot.end()
        for slot in slots + gone:  # each one's pipe is closed now: its thread ends
            if slot.server is not None:
                slot.server.join(STOP_WAIT)


def _sweep() -> None:
    """Kill what a dead job process left running (its engine processes are the grader's orphans now)."""
    from harness.sandbox import reaper

    reaper.sweep()
