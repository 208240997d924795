"""A timeline of one ``grade`` run: when the grader and each job process did what (a tool, not a target).

    python benchmarks/timeline.py [grade arguments ...]        # e.g. --jobs 2 --fuzz 300 --seed 7 -k fuzz --engine ...

Runs ``grade`` in this process with a few of its functions wrapped so that each start and end is
written, with the process id, the wall time since start and the process's CPU time, to stderr at
exit as a table (one line per span), and prints per process the CPU seconds and the busy spans.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time

T0 = time.perf_counter()
LOG = tempfile.NamedTemporaryFile("a", prefix="timeline-", suffix=".log", delete=False)


def _note(what: str) -> None:
    line = f"{time.perf_counter() - T0:.3f} {os.getpid()} {time.process_time():.3f} {what}\n"
    fd = os.open(LOG.name, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _wrap(module, name: str, label=None) -> None:
    inner = getattr(module, name)

    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        tag = label(*args, **kwargs) if label else ""
        _note(f"+ {name} {tag}")
        try:
            return inner(*args, **kwargs)
        finally:
            _note(f"- {name} {tag}")

    setattr(module, name, wrapper)


def install() -> None:
    from harness import cli
    from harness.diagnosis import blame, fuzz
    from harness.running import grading, jobs, reference, shared

    _wrap(grading, "grade_plan")
    _wrap(grading, "_grade_one", lambda spec, *a, **k: os.path.basename(spec.rstrip("/")))
    _wrap(grading, "_observe")
    _wrap(reference, "resolve")
    _wrap(blame, "blame")
    _wrap(fuzz, "run")
    _wrap(fuzz, "preload")
    _wrap(fuzz, "_shared_corpus")
    _wrap(fuzz, "_corpus", lambda ref, forms, count, seed, *a, **k: f"{seed}:{count}")
    _wrap(fuzz, "_search", lambda strat, count, seed, fuzzer, record, *a, **k:
          f"{'record' if record is not None else 'shrink'} {seed}")
    _wrap(fuzz, "supported_forms")
    _wrap(jobs, "grade")
    _wrap(jobs, "_job_process")
    _wrap(jobs.SharedProxy, "_wait")
    _wrap(shared.ReferenceCache, "run", lambda self, ref, progs, *a, **k: str(len(progs)))
    _wrap(cli, "_reported")
    _wrap(cli, "_grade_started")


def show(path: str) -> None:
    rows = [line.split(" ", 3) for line in open(path).read().splitlines()]
    open_at: dict = {}
    spans = []
    cpu: dict = {}
    for t, pid, c, what in rows:
        sign, name = what[0], what[2:]
        cpu[pid] = max(cpu.get(pid, 0.0), float(c))
        if sign == "+":
            open_at.setdefault((pid, name), []).append((float(t), float(c)))
        elif sign == "-":
            t0, c0 = open_at[(pid, name)].pop()
            spans.append((t0, float(t), pid, float(c) - c0, name))
    spans.sort()
    pids = list(dict.fromkeys(p for _, _, p, _, _ in spans))
    for t0, t1, pid, dc, name in spans:
        if name.startswith("_wait") and t1 - t0 < 0.01:
            continue
        col = pids.index(pid)
        print(f"{t0:7.3f} {t1:7.3f} {t1 - t0:6.3f}s cpu {dc:6.3f}  {'    ' * col}[{pid}] {name}")
    print("last CPU reading per process:", {p: round(v, 2) for p, v in cpu.items()})


if __name__ == "__main__":
    if sys.argv[1:2] == ["--show"]:
        show(sys.argv[2])
        sys.exit(0)
    _note("+ main")
    install()
    from harness import cli

    try:
        code = cli.main(sys.argv[1:])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    _note("- main")
    sys.stdout.flush()
    print(f"timeline: {LOG.name}", file=sys.stderr)
    os._exit(code or 0)
