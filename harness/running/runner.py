"""Run programs in engine processes and collect observations (program -> observations).

Each engine gets its own worker process.  A case that runs over its timeout,
or kills its process, costs only that case: the worker is killed and a fresh
one carries on with the rest.
"""

from __future__ import annotations

import functools
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness import wire as protocol
from harness.engine_side.guard import DEFAULT_FORBIDDEN
from harness.model import EngineStatus
from harness.running.observation import Observation
from harness.sandbox import bwrap, reaper, uids

if TYPE_CHECKING:
    from harness.running.program import Program
    from harness.sandbox.privileges import RunAs

HARNESS_ROOT = str(Path(__file__).resolve().parent.parent.parent)
_STDLIB = tuple({sysconfig.get_paths()[k] + os.sep for k in ("stdlib", "platstdlib")})
_FAULT_FRAME = re.compile(r'File "([^"\n]{1,300})", line (\d{1,7}) in (\w{1,100})')


@dataclass(frozen=True)
class Limits:
    """Resource limits and the import policy of an engine process."""

    timeout: float = 10.0          # seconds per case unless the case sets its own
    load_timeout: float = 20.0     # seconds to import the submission
    memory_mb: int | None = 2048   # address-space cap; None for no cap
    output_mb: int | None = 64     # cap on what the engine process writes (prints, files); None for no cap
    forbidden_imports: tuple = DEFAULT_FORBIDDEN  # modules an untrusted submission may not import
    user: RunAs | None = None      # --user: engine processes drop root to this user before loading
    sandbox: str = "none"          # bwrap | uid | none (``--sandbox``, resolved by harness.sandbox.modes)
    sandbox_warning: str = ""      # why --sandbox auto fell back to none, for the report
    trusted: bool = False          # the reference engine: its own sandbox, which shows reference_engine
    hide: tuple = ()               # every graded submission: none is ever visible in another's sandbox
    cpu_s: int | None = 600        # RLIMIT_CPU of an engine process (all its cases), far above the timeouts
    processes: int | None = 64     # RLIMIT_NPROC when the engine process has a uid of its own
    notebook_mode: str = "defs"    # --notebook-mode: run a notebook's definitions only, or all of it


def hello_fields(hello) -> tuple[list[str], str, str]:
    """(engine names, the engine loaded, the load error) of an untrusted hello, each capped.

    A hello that is not ready has no engines and a load error; a ready one names at least its engine.
    """
    if not isinstance(hello, dict):
        return [], "", "the engine process sent a malformed reply while loading (not an object)"
    if hello.get("ready") is not True:
        error = hello.get("error")
        error = error if isinstance(error, str) and error else "the engine could not be loaded"
        return [], "", protocol.clip(error, protocol.MAX_LOAD_ERROR)
    raw = hello.get("engines")
    raw = raw[:protocol.MAX_ENGINES] if isinstance(raw, list) else []
    names = [protocol.clip(n, protocol.MAX_NAME) for n in raw if isinstance(n, str)]
    engine = hello.get("engine")
    engine = protocol.clip(engine, protocol.MAX_NAME) if isinstance(engine, str) else (names or ["engine"])[0]
    return names or [engine], engine, ""


@dataclass
class EngineRun:
    """Observations of one engine, in program order."""

    name: str
    source: str
    observations: list
    load_error: str = ""
    ignored: list = field(default_factory=list)  # engines the submission registers that were not graded
    origin: str = ""               # where the graded engine was defined, e.g. "student.ipynb, cell 7: class Value"
    notes: list = field(default_factory=list)  # what the load skipped or chose, one line each


class Worker:
    """One engine process with its two pipes."""

    def __init__(self, spec: str, select: str | None, limits: Limits, greet: bool = True):
        self.spec, self.select, self.limits, self.killed = spec, select, limits, False
        self.lease: uids.Lease | None = None
        self.run_as: RunAs | uids.Lease | None = limits.user
        if limits.sandbox in ("uid", "bwrap") and limits.user is None and _is_root():
            # a uid of its own, never root; in bwrap its pid namespace takes its processes with it
            self.lease = uids.lease(reference=limits.trusted, sweep=limits.sandbox != "bwrap")
            self.run_as = self.lease
        prog_r, self.prog_w = os.pipe()
        obs_r, obs_w = os.pipe()
        self.output = tempfile.TemporaryFile()  # what the engine prints goes here, never to the report
        self.cwd = tempfile.mkdtemp(prefix="grade-worker-")
        if self.run_as is not None and limits.sandbox != "bwrap":  # its home, writable once it drops root
            os.chown(self.cwd, self.run_as.uid, self.run_as.gid)
        env = dict(os.environ, PYTHONFAULTHANDLER="1")
        extra = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([HARNESS_ROOT] + extra)
        argv = [sys.executable, "-P", "-m", "harness.engine_side.worker", str(prog_r), str(obs_w)]
        if limits.sandbox == "bwrap":
            # an engine an installed plugin registers is the course's own: it sees what the reference sees
            trusted = limits.trusted or (not _is_path(spec) and spec in installed_engines())
            argv = bwrap.command(bwrap.View(
                harness_root=HARNESS_ROOT, workdir=self.cwd, spec=spec, trusted=trusted, hide=limits.hide,
                python_path=tuple(p for p in extra if p != HARNESS_ROOT), as_root=_is_root(),
                tmp_mb=limits.output_mb or 64), argv)
        try:
            self.proc = reaper.spawn(lambda: subprocess.Popen(
                argv, pass_fds=(prog_r, obs_w), stdin=subprocess.DEVNULL, stdout=self.output,
                stderr=self.output, cwd=self.cwd, env=env, start_new_session=True))
        except BaseException:
            for fd in (prog_r, obs_w, obs_r, self.prog_w):
                os.close(fd)
            self.output.close()
            shutil.rmtree(self.cwd, ignore_errors=True)
            if self.lease is not None:
                uids.release(self.lease)
            raise
        os.close(prog_r)
        os.close(obs_w)
        self.reader = protocol.FrameReader(obs_r)
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.writer: threading.Thread | None = None
        if greet:
            self.greet()

    def greet(self) -> None:
        """Tell the engine process what to load, and under which limits."""
        # Only a spec that is not a path can name an installed engine: a path needs no plugin scan.
        from harness.intake.notebook import submission_fields

        installed = [] if _is_path(self.spec) else list(installed_engines())
        limits = self.limits
        self.send({"spec": self.spec, "select": self.select,
                   "limits": {"memory_mb": limits.memory_mb, "output_mb": limits.output_mb, "cpu_s": limits.cpu_s,
                              "processes": limits.processes if self.run_as is not None else None},
                   "installed": installed, "forbid": list(limits.forbidden_imports), "trusted": limits.trusted,
                   **submission_fields(self.spec, limits.notebook_mode),
                   "user": None if self.run_as is None else  # in bwrap the interpreter stays readable: no preload
                   dict(self.run_as.to_wire(), preload=limits.sandbox != "bwrap")})

    def send(self, obj) -> None:
        """Write in the background (one writer thread), so a worker that never reads cannot block the grader."""
        if self.writer is None:
            self.writer = threading.Thread(target=self._write_all, daemon=True)
            self.writer.start()
        self.outbox.put(obj)

    def _write_all(self) -> None:
        while (obj := self.outbox.get()) is not None:
            try:
                protocol.write(self.prog_w, obj)
            except OSError:
                return  # the worker is gone; reading its reply reports why

    def receive(self, timeout: float, limit: int = protocol.MAX_FRAME):
        """The next frame from the engine process, of at most ``limit`` bytes."""
        return self.reader.read(timeout, limit)

    def death(self) -> str:
        """Why the process ended, in words."""
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the engine process closed its pipe and stopped answering"
        if self.limits.sandbox == "bwrap" and 128 < code <= 128 + 64:
            code = 128 - code  # bwrap exits with 128 + the signal that killed the engine process
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = f"the engine process was killed by {name}"
            if name == "SIGSEGV":
                why += " (a segmentation fault, e.g. from ctypes or a C extension)"
        else:
            why = f"the engine process exited with code {code} (os._exit or a fatal error)"
        frame = self._fault_frame()
        return why + (f" at {frame}" if frame else "")

    def _fault_frame(self) -> str:
        """The submission's line from faulthandler's dump, if any (only a file:line, never raw output)."""
        self.output.seek(0, os.SEEK_END)
        size = self.output.tell()
        self.output.seek(max(0, size - 65536))
        tail = self.output.read().decode("utf-8", "replace")
        frames = _FAULT_FRAME.findall(tail[tail.rfind("Fatal Python error"):] if
                                      "Fatal Python error" in tail else "")
        outside = [f for f in frames if not f[0].startswith(HARNESS_ROOT + os.sep + "harness")]
        # the submission's own line is more useful than the library function it called (ctypes)
        own = [f for f in outside if not f[0].startswith(_STDLIB)] or outside
        return f"{Path(own[0][0]).name}:{own[0][1]} in {own[0][2]}" if own else ""

    def kill(self) -> None:
        """Kill the process with everything it started, and release everything (once)."""
        if self.killed:
            return
        self.killed = True
        reaper.kill(self.proc)
        if self.writer is not None:  # let it fail on the dead pipe before its fd can be reused
            self.outbox.put(None)
            self.writer.join(timeout=5)
        for fd in (self.prog_w, self.reader.fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.output.close()
        shutil.rmtree(self.cwd, ignore_errors=True)
        if self.lease is not None:  # nothing left running as its uid before another process gets it
            uids.release(self.lease)


def _is_path(spec: str) -> bool:
    """Whether ``spec`` names a file or folder (as the engine process's loader decides)."""
    return spec.endswith(".py") or os.path.exists(spec) or "/" in spec or "\\" in spec


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def with_hidden(limits: Limits, specs) -> Limits:
    """``limits`` that keep every one of ``specs`` (submissions' paths) out of the others' sandboxes."""
    paths = tuple(sorted({os.path.abspath(s) for s in specs if os.path.exists(s)} | set(limits.hide)))
    return limits if paths == limits.hide else replace(limits, hide=paths)


@functools.cache
def installed_engines() -> tuple:
    """Names of the engines that installed plugins register: only these are trusted."""
    from harness import plugins

    return tuple(str(getattr(e, "name", "")) for e in plugins.engines(plugins.installed_manager()))


def prestart(specs: list[str], limits: Limits, jobs: int = 1) -> dict:
    """Spawn the engine processes of the first ``jobs`` specs now, so they start while the cases are parsed.

    The grader becomes a subreaper between their spawn and their hello, before any submission code runs.
    """
    limits = with_hidden(limits, specs)
    early = {spec: Worker(spec, None, limits, greet=False) for spec in dict.fromkeys(specs[:max(1, jobs)])}
    reaper.become_subreaper()
    for worker in early.values():
        worker.greet()
    return early


def _start(spec: str, select: str | None, limits: Limits, worker: Worker | None = None):
    """A ready worker and its hello, or (None, why it failed to load); ``worker`` if already spawned."""
    if worker is None:
        try:
            worker = Worker(spec, select, limits)
        except reaper.Stopping as e:
            return None, str(e)
    try:
        hello = worker.receive(limits.load_timeout, protocol.MAX_HELLO)
    except TimeoutError:
        worker.kill()
        return None, (f"loading the engine did not finish within {limits.load_timeout:g} s "
                      "(an import that hangs or does heavy work at import time?)")
    except EOFError:
        why = worker.death()
        worker.kill()
        return None, f"{why} while loading the engine"
    except protocol.ProtocolError as e:
        worker.kill()
        return None, f"the engine process sent a malformed reply while loading ({e})"
    names, engine, error = hello_fields(hello)
    if error:
        worker.kill()
        return None, error
    origin, notes = load_notes(hello)
    return worker, {"ready": True, "engines": names, "engine": engine, "origin": origin, "notes": notes}


def run_engine(spec: str, programs: list, timeouts: list, limits: Limits,
               worker: Worker | None = None, engines: tuple = ()) -> list:
    """Run every program against one engine of ``spec``: the first it registers, or each engine named in
    ``engines`` (``worker``: spawned early for it).  Each run lists the registered engines left ungraded."""
    worker, hello = _start(spec, None, limits, worker)
    if worker is None:
        name = Path(spec).stem if os.sep in spec or spec.endswith(".py") else spec
        failed = [Observation(p.id, EngineStatus.CRASHED, message=f"the submission failed to load: {hello}")
                  for p in programs]
        return [EngineRun(name, spec, failed, load_error=hello)]
    names = hello["engines"]
    wanted = list(dict.fromkeys(engines)) or [hello["engine"]]
    ignored = list(names)  # every registration but the first one of each graded name
    for name in wanted:
        if name in ignored:
            ignored.remove(name)
    runs = []
    for name in wanted:
        if name not in names:
            known = list(dict.fromkeys(names))
            why = (f"the submission registers no engine named {name!r} (--engine-name); it registers "
                   f"{', '.join(repr(n) for n in known[:10])}{', ...' if len(known) > 10 else ''}")
            runs.append(EngineRun(name, spec, [Observation(p.id, EngineStatus.CRASHED, message=why) for p in programs],
                                  load_error=why))
            continue
        if name == hello["engine"] and worker is not None:
            w, h, worker = worker, hello, None  # the engine the first process loaded
        else:
            w, h = _start(spec, name, limits)
        obs = (_run_all(w, spec, name, programs, timeouts, limits) if w is not None else
               [Observation(p.id, EngineStatus.CRASHED, message=f"the submission failed to load: {h}") for p in programs])
        runs.append(EngineRun(name, spec, obs, ignored=ignored, origin=h["origin"] if w is not None else "",
                              notes=h["notes"] if w is not None else []))
    if worker is not None:
        worker.kill()
    return runs


def load_notes(hello: dict) -> tuple[str, list]:
    """The origin and load notes of an untrusted ready hello, each capped (wire.MAX_NOTES, MAX_NOTE)."""
    origin = hello.get("origin")
    notes = hello.get("notes")
    notes = [protocol.clip(n, protocol.MAX_NOTE) for n in notes[:protocol.MAX_NOTES]
             if isinstance(n, str)] if isinstance(notes, list) else []
    return (protocol.clip(origin, protocol.MAX_NOTE) if isinstance(origin, str) else ""), notes


def _run_all(worker, spec, select, programs, timeouts, limits) -> list:
    observations, worker = _run_batch(worker, spec, select, programs, timeouts, limits)
    if worker is not None:
        worker.kill()
    return observations


def _run_batch(worker, spec, select, programs, timeouts, limits):
    """(observations, the worker still alive or None), restarting the worker after each death."""
    observations: list = []
    pending = list(zip(programs, timeouts))
    while pending:
        if worker is None:
            worker, why = _start(spec, select, limits)
            if worker is None:
                observations += [Observation(p.id, EngineStatus.CRASHED, message=f"the engine failed to restart: {why}")
                                 for p, _ in pending]
                break
        worker.send([p.to_wire() for p, _ in pending])
        for i, (program, timeout) in enumerate(pending):
            started = time.perf_counter()
            obs, dead = _receive(worker, program, timeout)
            if obs.status in ("timeout", "crashed"):
                obs.duration_s = time.perf_counter() - started
            observations.append(obs)
            if dead:
                worker.kill()
                worker = None
                pending = pending[i + 1:]
                break
        else:
            pending = []
    return observations, worker


def run_programs(spec: str, select: str | None, programs: list, timeouts: list, limits: Limits) -> list:
    """Observations of one engine of ``spec`` (the first when ``select`` is None), in program order."""
    with Session(spec, select, limits) as session:
        return session.run(programs, timeouts)


class Session:
    """One engine's process, kept alive between batches (and restarted after a timeout or crash)."""

    def __init__(self, spec: str, select: str | None, limits: Limits):
        self.spec, self.select, self.limits = spec, select, limits
        self.worker = None
        self.load_error = ""

    def run(self, programs: list, timeouts: list) -> list:
        """Observations of ``programs``, in order."""
        if self.worker is None and not self.load_error:
            self.worker, hello = _start(self.spec, self.select, self.limits)
            if self.worker is None:
                self.load_error = hello
        if self.load_error:
            return [Observation(p.id, EngineStatus.CRASHED, message=f"the submission failed to load: {self.load_error}")
                    for p in programs]
        observations, self.worker = _run_batch(self.worker, self.spec, self.select, programs, timeouts,
                                               self.limits)
        return observations

    def close(self) -> None:
        """Stop the engine process."""
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _receive(worker: Worker, program: Program, timeout: float):
    """(observation, whether the worker must be replaced)."""
    try:
        reply = worker.receive(timeout, protocol.reply_limit(program.grads, program.structure, program.trace))
    except TimeoutError:
        return Observation(program.id, EngineStatus.TIMEOUT, message=f"no answer within {timeout:g} s"), True
    except EOFError:
        return Observation(program.id, EngineStatus.CRASHED, message=worker.death()), True
    except protocol.ProtocolError as e:
        return Observation(program.id, EngineStatus.CRASHED, message=f"the engine process broke the protocol ({e})"), True
    obs = Observation.from_wire(reply, program)
    return obs, obs.status == "crashed"


def timeout_for(case_timeout: float | None, limits: Limits) -> float:
    """The case's own timeout, else the default."""
    return case_timeout if case_timeout is not None and math.isfinite(case_timeout) else limits.timeout
