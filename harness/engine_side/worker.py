"""The engine process: load a submission, run programs, send back observations.

Started by the grader as ``python -P -m harness.engine_side.worker IN_FD OUT_FD``.  It
speaks JSON frames on its own pipes (never stdout, which belongs to the
submission) and never sees an expected value: it only computes and reports.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import sys
import time

from harness import Unsupported
from harness import wire as protocol
from harness.engine_side import guard, privileges
from harness.engine_side.adapters import is_number, optional_float, to_float
from harness.engine_side.guard import DEFAULT_FORBIDDEN, PUBLIC_API, ImportPolicy
from harness.engine_side.locate import locate

_HARNESS_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def main(argv: list[str]) -> int:
    """Serve one engine until the grader closes the pipe."""
    fd_in, fd_out = int(argv[1]), int(argv[2])
    faulthandler.enable()  # a segfault leaves a Python traceback in the captured stderr
    from harness.engine_side.loading import LoadError, load  # while the grader prepares the hello

    hello = protocol.read_blocking(fd_in)
    memory_mb = hello.get("limits", {}).get("memory_mb")
    output_mb = hello.get("limits", {}).get("output_mb")
    _limit_memory(memory_mb)
    _limit_output(output_mb)
    _limit_cpu_and_processes(hello.get("limits", {}))
    policy = ImportPolicy(tuple(hello.get("forbid", DEFAULT_FORBIDDEN)), tuple(hello.get("allow", PUBLIC_API)))
    sys.dont_write_bytecode = True  # the harness's own modules are cached; no __pycache__ in a submission
    run_as = hello.get("user")  # a private uid or --user: give up root before any submission code runs
    trusted = bool(hello.get("trusted"))  # the reference engine: loaded as root, from files root alone reads

    def before_submission():
        if run_as and not trusted:
            _become(run_as, hello["spec"], LoadError)
        guard.install(policy)

    notes: list = []
    try:
        if hello.get("unreadable"):  # the grader could not read the submission (a corrupt notebook, ...)
            raise LoadError(str(hello["unreadable"]))
        engines, _trusted = load(hello["spec"], hello.get("installed"), guard=before_submission,
                                 notebook=hello.get("notebook"), mode=hello.get("notebook_mode", "defs"),
                                 notes=notes, notebooks=hello.get("notebooks"))
        notes[:0] = [str(n) for n in hello.get("notebook_notes", [])]
        if run_as and not _dropped:  # a trusted installed engine, loaded without the guard
            if trusted:
                _preload_plugins()
            _become(run_as, hello["spec"], LoadError)
    except LoadError as e:
        protocol.write(fd_out, {"ready": False, "error": protocol.clip(str(e), protocol.MAX_LOAD_ERROR)})
        return 0
    except BaseException as e:  # e.g. the submission's own register_engines raised
        d = describe(e)
        at = f" (at {d['where']})" if d["where"] else ""
        error = f"loading the engine raised {d['error_type']}{at}: {d['message']}"
        protocol.write(fd_out, {"ready": False, "error": protocol.clip(error, protocol.MAX_LOAD_ERROR)})
        return 0
    names = [protocol.clip(safe_str(getattr(e, "name", "engine")), protocol.MAX_NAME) for e in engines]
    select = hello.get("select")
    engine = engines[names.index(select)] if select in names else engines[0]
    origin = protocol.clip(safe_str(getattr(engine, "origin", "") or ""), protocol.MAX_NOTE)
    protocol.write(fd_out, {"ready": True, "engines": names[:protocol.MAX_ENGINES],
                            "engine": names[engines.index(engine)], "origin": origin,
                            "notes": [protocol.clip(n, protocol.MAX_NOTE) for n in _capped(notes)]})
    # The harness and the submission are loaded and stay: the collector walks only what the cases build,
    # and runs after 10,000 new objects instead of 700 (a 20,000-node micrograd chain builds and runs
    # backward() a third faster; the answers are the same).
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    while True:
        batch = protocol.read_blocking(fd_in)
        if batch is None:
            return 0
        for program in batch:
            obs = run(engine, program)
            if obs.get("error_type") == "MemoryError" and memory_mb:
                obs["message"] = f"the engine process is capped at {memory_mb} MB of address space (--memory-mb)"
            elif obs.get("error_type") == "OSError" and "[Errno 27]" in obs.get("message", "") and output_mb:
                obs["message"] = (f"the engine wrote more than {output_mb} MB (prints or files), the cap of an "
                                  "engine process (--max-output-mb): print less")
            protocol.write(fd_out, obs)


def _capped(notes: list) -> list:
    """At most wire.MAX_NOTES notes, the last saying how many were left out."""
    if len(notes) <= protocol.MAX_NOTES:
        return notes
    return notes[:protocol.MAX_NOTES - 1] + [f"... and {len(notes) - protocol.MAX_NOTES + 1} more"]


_dropped: list = []


def _preload_plugins() -> None:
    """Import the course's plugin modules (HARNESS_PLUGINS) while still root: the reference engine reads
    their ops later, and their folder may be root's alone."""
    import importlib

    from harness.engine_side import collector

    for name in collector.extra_plugin_names():
        try:
            importlib.import_module(name)
        except Exception:  # reported where the reference engine loads its plugins
            pass


def _become(run_as: dict, spec: str, error) -> None:
    """Run as ``run_as`` from now on (once); ``error`` if the drop failed or the submission is unreadable."""
    spec = spec.partition("::")[0]  # DIR::module[:Class]: the folder must be readable
    if not _dropped:
        try:
            privileges.drop(run_as)
        except privileges.DropFailed as e:
            raise error(f"--user: {e}") from None
        _dropped.append(run_as)
    if os.path.exists(spec) or os.sep in spec:
        where = privileges.unreadable(spec)
        if where:
            name = run_as.get("name", run_as.get("uid"))
            fix = (f"chmod a+rx {where}" if os.path.abspath(spec).startswith(where.rstrip(os.sep) + os.sep)
                   else f"chmod -R a+rX {os.path.abspath(spec)}")
            raise error(f"the submission is not readable by user {name} (grade --user {name}): "
                        f"{where} is not readable; fix it with: {fix}")


def _limit_memory(megabytes) -> None:
    if megabytes:
        import resource

        cap = int(megabytes) << 20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _limit_cpu_and_processes(limits: dict) -> None:
    """CPU seconds for the whole process (far above the timeouts) and, under a private uid, processes."""
    import resource

    cpu = limits.get("cpu_s")
    if cpu:
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 5))
    procs = limits.get("processes")
    if procs:  # counted per uid: meaningful only when the uid is this engine process's own
        resource.setrlimit(resource.RLIMIT_NPROC, (int(procs), int(procs)))


def _limit_output(megabytes) -> None:
    """Cap what the engine process writes (its captured prints included), so it cannot fill the disk."""
    if megabytes:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails (EFBIG) instead of killing
        cap = int(megabytes) << 20
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))


def run(engine, program: dict) -> dict:
    """Run one program; the observation says what the engine computed or raised."""
    obs: dict = {"id": program["id"]}
    phase = "building the graph"
    start = time.perf_counter()
    if program.get("trace"):
        engine = _Recorder(engine, int(program["trace"]))
    try:
        env = {name: engine.leaf(value) for name, value in program["inputs"]}
        _steps(engine, program["steps"], env)
        out = _evaluate(engine, program["output"], env)
        if program["backward"]:
            if is_number(out):
                out = engine.leaf(out)
            phase = "backward()"
            for _ in range(program["backward"]):
                engine.backward(out)
        phase = "reading results"
        obs["value"] = to_float(out) if is_number(out) else to_float(engine.value(out))
        obs["grads"] = {n: None if is_number(env[n]) else optional_float(engine.grad(env[n]))
                        for n in program["grads"]}
        if program["structure"]:
            obs.update(_structure(engine, out))
        if isinstance(engine, _Recorder):
            obs["trace"] = engine.read()
        obs["status"] = "ok"
    except (Unsupported, NotImplementedError) as e:
        obs.update(status="unsupported", message=protocol.clip(safe_str(e) or type(e).__name__, protocol.MAX_TEXT))
    except BaseException as e:  # the engine's failure is an observation, not the worker's
        obs.update(status="error", phase=phase, **describe(e))
    obs["duration_s"] = time.perf_counter() - start
    if program.get("locate"):
        obs["located"] = _try(lambda: locate(engine, str(program["locate"])))
    return obs


class _Recorder:
    """Wraps an engine to keep the first ``cap`` nodes it creates, in creation order."""

    def __init__(self, engine, cap: int):
        self.engine, self.cap, self.created = engine, cap, 0
        self.nodes: list = []

    def _keep(self, node):
        self.created += 1
        if len(self.nodes) < self.cap:
            self.nodes.append(node)
        return node

    def leaf(self, value):
        return self._keep(self.engine.leaf(value))

    def apply(self, op, *operands):
        return self._keep(self.engine.apply(op, *operands))

    def backward(self, node):
        self.engine.backward(node)

    def value(self, node):
        return self.engine.value(node)

    def grad(self, node):
        return self.engine.grad(node)

    def __getattr__(self, name):  # the engine's optional members (args, local_derivatives)
        return getattr(self.engine, name)

    def read(self) -> dict:
        """Every kept node's value, grad and local derivatives (None where unreadable)."""
        locals_fn = getattr(self.engine, "local_derivatives", None)
        values, grads, local = [], [], []
        for node in self.nodes:  # each lambda runs at once, inside _try
            values.append(_try(lambda n=node: to_float(n) if is_number(n) else to_float(self.engine.value(n))))
            grads.append(None if is_number(node) else _try(lambda n=node: optional_float(self.engine.grad(n))))
            local.append(None if is_number(node) or not callable(locals_fn) else
                         _try(lambda n=node: [to_float(d) for d in locals_fn(n)]))
        return {"created": self.created, "values": values, "grads": grads, "locals": local}


def _try(read):
    try:
        return read()
    except Exception:
        return None


def _steps(engine, steps: list, env: dict) -> None:
    for step in steps:
        if step[0] == "set":
            env[step[1]] = _evaluate(engine, step[2], env)
        else:
            for _ in range(step[1]):
                _steps(engine, step[2], env)


def _evaluate(engine, code: list, env: dict):
    stack: list = []
    apply = engine.apply
    for ins in code:
        kind = ins[0]
        if kind == "name":
            stack.append(env[ins[1]])
        elif kind == "const":
            stack.append(ins[1])
        else:
            n = ins[2]
            operands = stack[-n:]
            del stack[-n:]
            stack.append(apply(ins[1], *operands))
    return stack[0]


def _structure(engine, out) -> dict:
    args_fn = getattr(engine, "args", None)
    locals_fn = getattr(engine, "local_derivatives", None)
    if not callable(args_fn) or not callable(locals_fn):
        return {"structure": None}
    return {"structure": {"args": [to_float(a) for a in args_fn(out)],
                          "local_derivatives": [to_float(d) for d in locals_fn(out)]}}


def describe(e: BaseException) -> dict:
    """Type, message and the submission's own line where ``e`` was raised."""
    import traceback

    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith(_HARNESS_DIR)]
    where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
    message = safe_str(e) if not isinstance(e, SystemExit) else f"sys.exit({safe_str(e.code, repr)}) was called"
    return {"error_type": protocol.clip(type(e).__name__, protocol.MAX_NAME),
            "message": protocol.clip(message, 500), "where": protocol.clip(where, protocol.MAX_TEXT)}


def safe_str(obj, to_text=str) -> str:
    """``str(obj)`` (or ``to_text``) for a submission's object, whose ``__str__`` may raise or return anything."""
    try:
        text = to_text(obj)
    except Exception as e:
        return f"<unprintable {type(obj).__name__}: its {to_text.__name__}() raised {type(e).__name__}>"
    return text if type(text) is str else f"<unprintable {type(obj).__name__}>"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
