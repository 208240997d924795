"""A pre-started ``grade`` for the end-to-end tests: one process per test worker that has imported the
harness once and forks a child for each ``grade`` run.

The suite runs ``grade`` several hundred times; starting Python and importing the harness again each time
was a large part of it.  A child of this process is ``python -m harness.cli ARGS`` in every way a test
can see: ``harness.cli`` runs as ``__main__`` in a fresh fork, with the test's arguments, working
folder, environment and exit code, its stdout and stderr captured, its own engine processes and its own
exit (atexit handlers included).  What it cannot be is a process started with another environment: the
modules were imported under the environment this process started with, so ``run_grade`` starts a real
process whenever the environment differs (``env=`` or a changed ``os.environ``), or when this process is
busy with another run (tests that run grade concurrently).

Protocol, one JSON line each way: ``{"args", "cwd", "env", "out", "err"}`` in; ``{"pid"}`` once the child
is forked, then ``{"status"}`` (``os.waitpid``'s) when it has ended.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def serve() -> None:
    """The zygote's loop: fork a ``grade`` per request line on stdin."""
    _warm()
    del sys.modules["harness.cli"]  # as under ``python -m harness.cli``: only __main__ is that module
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)  # never returns
        replies.write(json.dumps({"pid": pid}).encode() + b"\n")
        replies.flush()
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"status": status}).encode() + b"\n")
        replies.flush()


def _warm() -> None:
    """Do once what every ``grade`` run does first, so that a forked run starts where a run in a
    long-lived process would: import the modules a run imports when it needs them (grading, the case
    parser, blame, fuzz, the report formats, the sandbox, nbformat, Hypothesis), parse the built-in
    suites (the case loader keeps them by file contents, so a run re-reads the files and gets the same
    suites), and find the installed plugins (kept per ``sys.path``, so a run from another folder looks
    again)."""
    import importlib
    import pkgutil

    import harness
    import harness.cli  # noqa: F401 - the child runs it again as __main__

    skip = ("harness.batch.pytest_plugin", "harness.engine_side.worker")  # imports pytest; runs in engines
    for module in pkgutil.walk_packages(harness.__path__, "harness."):
        if module.name not in skip:
            importlib.import_module(module.name)
    from harness import plugins
    from harness.cases import loader
    from harness.errors import HarnessError
    from harness.intake import notebook

    loader.load_suites()
    import hypothesis.errors
    import hypothesis.strategies  # noqa: F401 - what --fuzz imports: more than half a second
    notebook.read_cells("examples/student_notebook.ipynb")  # nbformat and its validator: a third of a second
    first, sys.path[0] = sys.path[0], os.getcwd()  # as in a child run from this folder (the repository's root)
    try:
        plugins.installed_manager()
    except HarnessError:  # a broken plugin: each run reports it, as grade does
        pass
    finally:
        sys.path[0] = first
    import gc

    # What is loaded now is never collected: a child's collections no longer walk (and so copy) the
    # hundreds of thousands of objects it inherits. Half of a small run's CPU (measured: 460 -> 220 ms).
    gc.freeze()


def _child(request: dict) -> None:
    import runpy

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["out"], os.O_WRONLY | os.O_TRUNC)
    err = os.open(request["err"], os.O_WRONLY | os.O_TRUNC)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.path[0] = os.getcwd()  # what ``-m`` puts first
    sys.argv = ["-m", *request["args"]]
    try:
        runpy.run_module("harness.cli", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        _exit(e.code)
    except BaseException:  # as the interpreter does with an uncaught exception
        import traceback

        traceback.print_exc()
        _exit(1)
    _exit(0)


def _exit(code) -> None:
    """End the child as the interpreter ends a process, in every way a test can see: wait for its non-daemon
    threads, run its atexit handlers, turn the exit code as ``SystemExit`` does, flush stdout and stderr.
    What it skips is tearing down the modules and objects it inherited from this zygote: with Hypothesis,
    nbformat and the whole harness imported, that took about 0.2 s of CPU per run (the pages each
    collection touches are copied on write), several times what a short run itself costs."""
    import atexit
    import threading

    threading._shutdown()  # the interpreter's own first step: the threads' exit hooks, then join them
    atexit._run_exitfuncs()
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message goes to stderr, the status is 1
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = 120  # as the interpreter does when it cannot flush stdout
    os._exit(status & 0xFF)


if __name__ == "__main__":
    try:
        serve()
    except SystemExit as e:  # the zygote itself ending (a child leaves through _exit)
        sys.stdout.flush()
        raise SystemExit(e.code) from None
