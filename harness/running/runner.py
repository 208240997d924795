"""Run programs in engine processes and collect observations (program -> observations).

``Session`` is the one way to do it: grading, the reference answers, blame,
fuzz, ``--check-cases`` and the pytest plugin all open one per engine.  Each
session owns a worker process; a case that runs over its timeout, or kills
its process, costs only that case: the worker is killed and a fresh one
carries on with the rest.
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness import wire as protocol
from harness.engine_side.guard import DEFAULT_FORBIDDEN
from harness.model import EngineStatus
from harness.running.budget import DEFAULT_RESTARTS, Budget, default_seconds
from harness.running.observation import Observation
from harness.sandbox import bwrap, cgroups, environment, reaper, uids

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
    submission_timeout: float | None = None  # seconds to run one submission's cases (None: derived, 0: no cap)
    max_restarts: int | None = DEFAULT_RESTARTS  # engine-process restarts per submission (None: no cap)


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
        extra = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        # none of grade's own variables (secrets) reach the engine process, in any sandbox mode
        env = environment.engine_env(os.environ, self.cwd, os.pathsep.join([HARNESS_ROOT] + extra))
        argv = [sys.executable, "-P", "-m", "harness.engine_side.worker", str(prog_r), str(obs_w)]
        if limits.sandbox == "bwrap":
            # an engine an installed plugin registers is the course's own: it sees what the reference sees
            trusted = limits.trusted or (not _is_path(spec) and spec in installed_engines())
            argv = bwrap.command(bwrap.View(
                harness_root=HARNESS_ROOT, workdir=self.cwd, spec=spec, trusted=trusted, hide=limits.hide,
                python_path=tuple(p for p in extra if p != HARNESS_ROOT), as_root=_is_root(),
                tmp_mb=limits.output_mb or 64), argv)
        # pids.max and a memory cap on the engine process and everything it starts, where cgroups can be made
        self.cgroup = cgroups.for_engine(cgroups.Caps(limits.processes, limits.memory_mb))
        if self.cgroup is not None:
            argv = self.cgroup.join_command(argv)  # joined before bwrap or the engine process starts
        try:
            self.proc = reaper.spawn(lambda: subprocess.Popen(
                argv, pass_fds=(prog_r, obs_w), stdin=subprocess.DEVNULL, stdout=self.output,
                stderr=self.output, cwd=self.cwd, env=env, start_new_session=True))
        except BaseException:
            for fd in (prog_r, obs_w, obs_r, self.prog_w):
                os.close(fd)
            self.output.close()
            shutil.rmtree(self.cwd, ignore_errors=True)
            if self.cgroup is not None:
                self.cgroup.close()
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
        if self.cgroup is not None and self.cgroup.out_of_memory():
            why += (f" (the out-of-memory killer: the engine process and what it started used more than "
                    f"their {self.cgroup.memory_mb} MB together, the cgroup's memory cap)")
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

    def alive(self) -> bool:
        """Whether the process is still running (not killed, not exited)."""
        return not self.killed and self.proc.poll() is None

    def output_full(self) -> bool:
        """Whether what the process printed reached its cap (``--max-output-mb``): its next prints fail."""
        cap = self.limits.output_mb
        return cap is not None and cap > 0 and not self.killed and \
            os.fstat(self.output.fileno()).st_size >= cap << 20

    def kill(self) -> None:
        """Kill the process with everything it started, and release everything (once)."""
        if self.killed:
            return
        self.killed = True
        # everything in its cgroup at once, detached processes included; then no walk of /proc is needed
        contained = self.cgroup is not None and cgroups.kill(self.cgroup)
        reaper.kill(self.proc, contained=contained)
        if self.cgroup is not None:  # killed orphans the grader adopted are reaped while it waits
            self.cgroup.close(reap=reaper.reap if contained else reaper.sweep)
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
    Hand each to ``Session(spec, limits, worker=...)``.
    """
    limits = with_hidden(limits, specs)
    early = {spec: Worker(spec, None, limits, greet=False) for spec in dict.fromkeys(specs[:max(1, jobs)])}
    reaper.become_subreaper()
    for worker in early.values():
        worker.greet()
    return early


class Session:
    """One engine of a submission in its engine process: loaded once, fed batches of programs.

    The one way to run programs::

        with Session(spec, limits) as session:
            observations = session.run(programs, timeouts)

    ``select`` picks an engine by name when the submission registers several (None: the first);
    ``worker`` is a process ``prestart`` spawned for ``spec``.  A program that times out or
    kills the process costs only itself: a fresh process carries on with the rest.  A
    submission that fails to load gives every program a ``crashed`` observation saying why, and so
    does one whose process cannot be started again after a crash (``load_error`` says why).
    """

    def __init__(self, spec: str, limits: Limits, select: str | None = None, worker: Worker | None = None,
                 budget: Budget | None = None):
        self.spec, self.limits, self.select = spec, limits, select
        self.worker = worker
        self.budget = budget  # the submission's time and restarts, shared by its sessions (None: no cap)
        self.hello: dict | None = None
        self.load_error = ""

    def spawn(self) -> Session:
        """Start its engine process now without waiting for it to load (``start`` and ``run`` wait), so that
        it loads while the caller does something else; nothing if it has one or failed to load."""
        if self.worker is None and self.hello is None and not self.load_error:
            if self.budget is not None and self.budget.exhausted():
                return self  # ``start`` says why
            try:
                self.worker = Worker(self.spec, self.select, self._limits())
            except Exception:  # e.g. grading is stopping, or no more processes: ``start`` tries and says why
                self.worker = None
        return self

    def start(self) -> Session:
        """Load the engine now (``run`` does it on first use); sets ``load_error`` when it fails."""
        if self.hello is None and not self.load_error:
            if self.budget is not None and (why := self.budget.exhausted()):
                if self.worker is not None:
                    self.worker.kill()
                self.worker, self.load_error = None, f"not loaded: {why}"
                return self
            self.worker, hello = _start(self.spec, self.select, self._limits(), self.worker)
            if self.worker is None:
                spent = self.budget.exhausted() if self.budget is not None else ""
                self.load_error = f"not loaded: {spent}" if spent else hello
            else:
                self.hello = hello
        return self

    @property
    def engines(self) -> list[str]:
        """The names of the engines the submission registers, in its order (loading it first)."""
        hello = self.start().hello
        return list(hello["engines"]) if hello is not None else [self.name]

    @property
    def name(self) -> str:
        """This engine's name (loading it first): what it says, else the one selected, else the spec's file name."""
        hello = self.start().hello
        if hello is not None:
            return str(hello["engine"])
        if self.select is not None:
            return self.select
        return Path(self.spec).stem if os.sep in self.spec or self.spec.endswith(".py") else self.spec

    @property
    def origin(self) -> str:
        """Where the loaded engine was defined, e.g. 'student.ipynb, cell 7: class Value' ('' if unknown)."""
        hello = self.start().hello
        return str(hello.get("origin", "")) if hello is not None else ""

    @property
    def notes(self) -> list[str]:
        """What loading skipped or chose (cells, IPython syntax, the smoke probe's pick), one line each."""
        hello = self.start().hello
        return list(hello.get("notes", [])) if hello is not None else []

    def run(self, programs: list, timeouts: list) -> list[Observation]:
        """Observations of ``programs`` (each with its timeout), in order."""
        self.start()
        if self.load_error:
            return [Observation(p.id, EngineStatus.CRASHED, message=f"the submission failed to load: {self.load_error}")
                    for p in programs]
        observations: list = []
        pending = list(zip(programs, timeouts))
        while pending:
            spent = self.budget.exhausted() if self.budget is not None else ""
            if spent:  # the submission's time or restarts are used up: the rest is not run
                observations += [Observation(p.id, EngineStatus.TIMEOUT, message=f"not run: {spent}", not_run=True)
                                 for p, _ in pending]
                break
            if self.worker is None:  # the last one died: a fresh process for the rest
                self.worker, why = _start(self.spec, self.select, self._limits())
                spent = self.budget.exhausted() if self.budget is not None and self.worker is None else ""
                if spent:  # its import was cut short by the end of the budget
                    observations += [Observation(p.id, EngineStatus.TIMEOUT, message=f"not run: {spent}",
                                                 not_run=True) for p, _ in pending]
                    break
                if self.worker is None:  # e.g. grading was interrupted: later runs start nothing either
                    observations += [Observation(p.id, EngineStatus.CRASHED,
                                                 message=f"the engine failed to restart: {why}") for p, _ in pending]
                    self.load_error = why
                    break
            self.worker.send([p.to_wire() for p, _ in pending])
            for i, (program, timeout) in enumerate(pending):
                started = time.perf_counter()
                capped = self.budget.cap(timeout) if self.budget is not None else timeout
                obs, dead = _receive(self.worker, program, capped)
                if obs.status in (EngineStatus.TIMEOUT, EngineStatus.CRASHED):
                    obs.duration_s = time.perf_counter() - started
                if obs.status == EngineStatus.TIMEOUT and capped < timeout and self.budget is not None:
                    obs.message = f"cut short after {capped:g} s: {self.budget.exhausted() or 'its budget ended'}"
                observations.append(obs)
                if dead:
                    self.worker.kill()
                    self.worker = None
                    if self.budget is not None:
                        self.budget.restart()
                    pending = pending[i + 1:]
                    break
            else:
                pending = []
        return observations

    def _limits(self) -> Limits:
        """The limits of the next engine process: its import may not outlast the submission's budget."""
        if self.budget is None or self.budget.cap(self.limits.load_timeout) >= self.limits.load_timeout:
            return self.limits
        return replace(self.limits, load_timeout=self.budget.cap(self.limits.load_timeout))

    def hand_over(self) -> Session | None:
        """A new session, without a budget, that takes over this one's loaded engine process while it is
        alive and may still print (None if there is none: never loaded, failed to load, its last process
        died or timed out, or its prints reached their cap); this one is left without a process.  Blame
        runs in the process that graded the cases this way (``harness.running.grading``).  The new
        session selects this engine by name if it must restart."""
        worker, hello = self.worker, self.hello
        if worker is None or hello is None or not worker.alive() or worker.output_full():
            return None
        self.worker = None
        heir = Session(self.spec, self.limits, select=str(hello["engine"]), worker=worker)
        heir.hello = hello
        return heir

    def output_full(self) -> bool:
        """Whether the prints of its engine process reached their cap (``Worker.output_full``)."""
        return self.worker is not None and self.worker.output_full()

    def close(self) -> None:
        """Stop the engine process (a worker handed in but never started is stopped too)."""
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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


def load_notes(hello: dict) -> tuple[str, list]:
    """The origin and load notes of an untrusted ready hello, each capped (wire.MAX_NOTES, MAX_NOTE)."""
    origin = hello.get("origin")
    notes = hello.get("notes")
    notes = [protocol.clip(n, protocol.MAX_NOTE) for n in notes[:protocol.MAX_NOTES]
             if isinstance(n, str)] if isinstance(notes, list) else []
    return (protocol.clip(origin, protocol.MAX_NOTE) if isinstance(origin, str) else ""), notes


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


def budget_for(limits: Limits, timeouts: list, engines: int = 1) -> Budget:
    """A fresh budget for one submission whose cases have ``timeouts`` (harness.running.budget)."""
    seconds = limits.submission_timeout
    if seconds is None:
        seconds = default_seconds(limits.load_timeout, timeouts, engines)
    return Budget(seconds or None, limits.max_restarts)


def timeout_for(case_timeout: float | None, limits: Limits) -> float:
    """The case's own timeout, else the default."""
    return case_timeout if case_timeout is not None and math.isfinite(case_timeout) else limits.timeout
