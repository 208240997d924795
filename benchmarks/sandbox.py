"""Target: the sandbox's cost: start-up per engine process, and a batch of 50 submissions with and without it.

Start-up: engine processes of a correct submission are spawned and greeted until their hello, in
turn under ``--sandbox none`` and under each sandbox this machine provides (bwrap; uid as root); the
cost is the median difference per process.  Batch: ``grade --submissions`` of 50 submission folders
(``-k notebook:: --no-blame``), with the sandbox ``auto`` picks against ``--sandbox none``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from batches import make_batch
from common import ROOT, Row, clean_env, median, median_ratio, side_by_side

sys.path.insert(0, str(ROOT))

SOURCE = ROOT / "tests" / "engines" / "micrograd_full.py"  # copied into a folder of its own, as a student's
BATCH = 50
STARTS = 10


def modes() -> list[str]:
    """The sandboxes this machine provides."""
    from harness.sandbox import bwrap
    from harness.sandbox import modes as chooser

    found = [] if bwrap.probe(chooser.is_root()) else ["bwrap"]
    return found + (["uid"] if chooser.is_root() else [])


def start_once(mode: str, spec: Path) -> float:
    """Seconds from spawning an engine process to its hello."""
    from harness.running.runner import Limits, Worker

    start = time.perf_counter()
    worker = Worker(str(spec), None, Limits(sandbox=mode))
    try:
        hello = worker.receive(30)
        assert isinstance(hello, dict) and hello.get("ready"), hello
        return time.perf_counter() - start
    finally:
        worker.kill()


def startup(sandboxes: list[str]) -> list[Row]:
    import shutil

    times: dict = {m: [] for m in ["none", *sandboxes]}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "student" / "engine.py"
        spec.parent.mkdir()
        shutil.copy(SOURCE, spec)
        for path in (Path(tmp), spec.parent, spec):
            path.chmod(0o755 if path.is_dir() else 0o644)
        for m in times:  # warm the caches
            start_once(m, spec)
        for _ in range(STARTS):
            for m in times:
                times[m].append(start_once(m, spec))
    rows = []
    for m in sandboxes:
        cost = statistics.median(a - b for a, b in zip(times[m], times["none"])) * 1000
        rows.append(Row(f"**Sandbox start-up** ({m}): extra time from spawning an engine process to its hello",
                        cost, "ms", "≤ 30 ms", cost <= 30,
                        f"median of {STARTS} interleaved pairs: {median(times[m]) * 1000:.0f} ms against "
                        f"{median(times['none']) * 1000:.0f} ms with --sandbox none"))
    return rows


def batch(sandboxes: list[str]) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_batch(folder, BATCH)  # the fixtures of batches.py, round-robin
        for path in [folder, *folder.rglob("*")]:  # readable by the engine processes' own uids
            path.chmod(0o755 if path.is_dir() else 0o644)
        base = [sys.executable, "-m", "harness.cli", "--submissions", str(folder), "-k", "notebook::", "--no-blame",
                "--format", "json", "--jobs", "2"]
        commands = {m: base + ["--sandbox", m] for m in ["none", *sandboxes]}
        times = side_by_side(commands, repeats=1, warmup=0, env=clean_env(PYTHONPATH=str(ROOT)), cwd=ROOT)
    rows = []
    for m in sandboxes:
        ratio = median_ratio(times[m], times["none"])
        rows.append(Row(f"**Sandboxed batch** ({m}): {BATCH} submissions, `-k notebook:: --jobs 2`, against "
                        "--sandbox none", ratio, "×", "≤ 1.2×", ratio <= 1.2,
                        f"{times[m][0]:.2f} s against {times['none'][0]:.2f} s"))
    return rows


def run() -> list[Row]:
    sandboxes = modes()
    if not sandboxes:
        return [Row("**Sandbox**: no sandbox available on this machine", 0, "", "-", None, "nothing measured")]
    return startup(sandboxes) + batch(sandboxes[:1])  # the batch under auto's choice only: a minute in all


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    began = time.perf_counter()
    for r in run():
        print(f"[{'ok' if r.ok else 'MISS' if r.ok is False else '--'}] {r.name}: {r.shown()} (target {r.target})\n"
              f"       {r.detail}")
    print(f"{time.perf_counter() - began:.1f} s")
