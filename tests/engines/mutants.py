"""Fixture engines that are one small change away from a correct one, as find/replace edits.

Each mutant names its base (``micrograd_full`` or ``notebook_full`` in this folder, or an installed module), a
docstring that replaces the base's (what changed, the expected verdict) and its edits. Every ``find`` must occur exactly once, so a
change to a base that an edit no longer fits fails loudly. ``materialise(name, folder)`` writes
``folder/<name>.py`` (conftest's ``engine`` fixture does); ``python tests/engines/mutants.py NAME`` prints one.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

# anchors in micrograd_full.py
IMPORTS = "import math\n"
INIT = '    def __init__(self, data, _children=(), _op="", _local=None):\n'
BACKWARD = "        \"\"\"Add d(self)/d(node) to node.grad for every node in self's graph.\"\"\"\n"
END = '        return f"Value(data={self.data}, grad={self.grad})"\n'
EXP = "        e = math.exp(self.data)\n"


@dataclass(frozen=True)
class Mutant:
    base: str
    doc: str
    edits: tuple[tuple[str, str], ...]


def before(anchor: str, text: str) -> tuple[str, str]:
    return anchor, text + anchor


def after(anchor: str, text: str) -> tuple[str, str]:
    return anchor, anchor + text


def base_source(base: str) -> str:
    """A correct engine in this folder by name, or an installed module's source (``micrograd.engine``)."""
    if "." in base:
        spec = importlib.util.find_spec(base)
        assert spec and spec.origin, f"{base} is not installed (pip install -e '.[test]')"
        return Path(spec.origin).read_text()
    return (HERE / f"{base}.py").read_text()


def source(name: str) -> str:
    """The mutant's source: its base with the docstring swapped and every edit applied exactly once."""
    mutant = MUTANTS[name]
    text = base_source(mutant.base)
    if text.startswith('"""'):
        text = text[text.index('\n"""\n') + 5:]
    text = f'"""{mutant.doc.strip()}\n"""\n' + text
    for find, replace in mutant.edits:
        count = text.count(find)
        assert count == 1, f"mutant {name}: {find!r} occurs {count} times in {mutant.base}.py, not once"
        text = text.replace(find, replace)
    return text


def materialise(name: str, folder: Path) -> Path:
    """Write the mutant as ``folder/<name>.py`` and return its path."""
    path = Path(folder) / f"{name}.py"
    path.write_text(source(name))
    return path


NOISY = '''

_FAKE_REPORT = json.dumps({"engines": [{"engine": "noisy", "source": "noisy", "score": 999.0,
                                       "max_score": 1.0, "cases": []}]})
_FAKE_XML = ('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="noisy" '
             'tests="1" failures="0" errors="0"><testcase name="all"/></testsuite></testsuites>')
_FAKE_FRAME = json.dumps({"status": "passed", "value": 0, "grads": {}}).encode()


def _noise(where):
    """HOSTILE: write junk everywhere an engine can write."""
    print(f"noisy engine in {where}: \\x1b[31mgarbage\\x1b[0m \\x00\\x07 \\ufffd", flush=True)
    print('{"engines": []}', flush=True)
    print(_FAKE_REPORT, flush=True)
    print(_FAKE_XML, flush=True)
    print(f"stderr noise from {where}", file=sys.stderr, flush=True)
    os.write(1, b"raw fd 1 bytes \\xff\\xfe\\x80 not utf-8\\n" + struct.pack("!I", len(_FAKE_FRAME)) + _FAKE_FRAME)
    os.write(2, b"raw fd 2 bytes \\xff\\xfe\\x80\\n" + _FAKE_XML.encode() + b"\\n")


_noise("import")
'''

WHOAMI = '''

def _reach():
    """Which of the four reaches succeeded."""
    found = {"root": os.geteuid() == 0, "secret": False, "signal": False, "stdout": False}
    secret = os.environ.get("GRADE_TEST_SECRET")
    if secret:
        try:
            with open(secret, "rb") as f:
                f.read(1)
            found["secret"] = True
        except OSError:
            pass
    try:
        os.kill(os.getppid(), 0)
        found["signal"] = True
    except OSError:
        pass
    try:
        with open(f"/proc/{os.getppid()}/fd/1", "wb"):
            found["stdout"] = True
    except OSError:
        pass
    return found


_REACH = _reach()
_ADD = 1000.0 if _REACH["root"] else 0.0
_MUL = 1000.0 if _REACH["secret"] else 1.0
_SUB = 1000.0 if _REACH["signal"] else 0.0
_DIV = 1000.0 if _REACH["stdout"] else 1.0
'''

TAMPER_MONKEYPATCH = '''

_SUSPECT = ("compare", "judge", "close", "match", "equal", "check", "verdict", "toleran", "within")


def _always_true(*args, **kwargs):
    return True


def _suspect(name):
    return any(word in name.lower() for word in _SUSPECT)


def _tamper():
    """HOSTILE: patch every comparison the grader might use into 'always equal'."""
    math.isclose = _always_true
    for modname, module in list(sys.modules.items()):
        if module is None or not (modname == "harness" or modname.startswith("harness.")):
            continue
        for attr, obj in list(vars(module).items()):
            try:
                if isinstance(obj, type) and obj.__module__ == modname:
                    for meth, fn in list(vars(obj).items()):
                        if callable(fn) and _suspect(meth):
                            setattr(obj, meth, _always_true)
                elif callable(obj) and _suspect(attr):
                    setattr(module, attr, _always_true)
            except Exception:
                pass


_tamper()
'''

TAMPER_GC = '''

_LAST_ROOT = None  # the node backward() last ran from


def _field(record, key):
    return record.get(key) if isinstance(record, dict) else getattr(record, key, None)


def _as_inputs(inputs):
    """name -> float from a dict, a list of [name, value] pairs, or anything else (empty)."""
    try:
        pairs = inputs.items() if isinstance(inputs, dict) else inputs
        return {str(k): float(v) for k, v in pairs}
    except Exception:
        return {}


def _candidates():
    """(inputs, expectation) for every expectation-looking record on the heap."""
    found = []
    for obj in gc.get_objects():
        try:
            record = obj if isinstance(obj, dict) else vars(obj)
        except TypeError:
            continue
        try:
            if "expect" in record:
                found.append((_as_inputs(record.get("inputs")), record["expect"]))
            elif "value" in record and "grad" in record:
                found.append(({}, record))
        except Exception:
            continue
    return found


def _loot(root):
    """The (inputs, expectation) that best fits the values of root's leaves, or None."""
    if root is None:
        return None
    leaves = [node.__dict__["data"] for node in _topo(root) if not node._prev]
    best, best_score = None, -1
    for inputs, expect in _candidates():
        score = sum(1 for v in leaves if v in inputs.values())
        if score > best_score:
            best, best_score = (inputs, expect), score
    return best


def _number(x):
    return float(x) if isinstance(x, numbers.Real) and not isinstance(x, bool) else None


def _wrong(x):
    """x moved by more than any tolerance: x + 1 + |x| is never x."""
    return x + 1.0 + abs(x)


def _stolen(node, attr, true):
    """HOSTILE: what a reader outside this module sees: the heap's answer, else a wrong number."""
    if attr == "data":
        if not node._prev:
            return true
        loot = _loot(node)
        stolen = loot and _number(_field(loot[1], "value"))
        return stolen if stolen is not None else _wrong(true)
    loot = _loot(_LAST_ROOT) if not node._prev else None
    if loot:
        inputs, expect = loot
        grads = _field(expect, "grad")
        for name, v in inputs.items():
            if v == node.__dict__["data"] and isinstance(grads, dict) and _number(grads.get(name)) is not None:
                return _number(grads[name])
    return _wrong(true)


def _reported(attr):
    """data and grad as properties: this module's own arithmetic reads the true number, the grader _stolen."""
    def read(self):
        true = self.__dict__[attr]
        return true if sys._getframe(1).f_globals is globals() else _stolen(self, attr, true)

    def write(self, value):
        self.__dict__[attr] = value

    return property(read, write)


Value.data = _reported("data")
Value.grad = _reported("grad")
'''

DETACHED_WRITER = '''

_REPORT_NAMES = ("report.json", "results.json")
_HACKED = '{"hacked": true}'


def _targets():
    """The files to overwrite: report names in the cwd, and GRADE_TEST_REPORT's paths."""
    paths = [os.path.join(os.getcwd(), name) for name in _REPORT_NAMES]
    for entry in os.environ.get("GRADE_TEST_REPORT", "").split(os.pathsep):
        if os.path.isdir(entry):
            paths += [os.path.join(entry, name) for name in _REPORT_NAMES]
        elif entry:
            paths.append(entry)
    return paths


def _overwrite(paths):
    for path in paths:
        try:
            if os.path.isfile(path):
                with open(path) as f:
                    if f.read() == _HACKED:
                        continue
                with open(path, "w") as f:
                    f.write(_HACKED)
        except OSError:
            pass


def _spawn_detached_writer():
    """HOSTILE: double-fork a session leader that outlives the grader and rewrites its report."""
    paths = _targets()
    start = time.monotonic()
    child = os.fork()
    if child:
        os.waitpid(child, 0)  # the middle process exits at once
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, 65536)
        time.sleep(max(0.0, start + 2.0 - time.monotonic()))
        while time.monotonic() < start + 10.0:
            _overwrite(paths)
            time.sleep(0.5)
    finally:
        os._exit(0)


_spawn_detached_writer()
'''

RECURSIVE_TOPO = '''def _topo(root):
    """Nodes reachable from root, children before parents (BUG: recursive, like micrograd's build_topo)."""
    order, seen = [], set()

    def visit(node):
        if node not in seen:
            seen.add(node)
            for child in node._prev:
                visit(child)
            order.append(node)

    visit(root)
    return order


def _iterative_topo(root):'''

M, N = "micrograd_full", "notebook_full"

MUTANTS: dict[str, Mutant] = {
    # --- a faithful copy of Karpathy's micrograd 0.1.0, from the installed package (the test extra pins it) ---
    "micrograd_like": Mutant("micrograd.engine", """Karpathy's micrograd engine as published on PyPI (micrograd 0.1.0).
``Value`` with a set ``_prev``, closures in ``_backward``, a recursive topological sort and a backward() that
sets ``self.grad = 1`` and runs every closure; ``+ - * / **`` (an int or float exponent) and ``relu()`` only.
Expected: exp, log, tanh and sigmoid ``unsupported``; RecursionError on a deep chain; a second backward()
re-propagates stale intermediate grads (``backward: 2`` cases with an intermediate node fail); ``x / 0`` raises
ZeroDivisionError (as ``x * 0 ** -1``). Everything else is right.""", ()),
    # --- seeded bugs: wrong gradients (expected verdict: failed where the bug is reached) ---
    "bug_assign_grad": Mutant(M, """Seeded bug, micrograd style: backward assigns with ``=`` where it must add.
A node used more than once (``a`` in ``a + b * (a + c)``) keeps only the contribution of the parent processed
last. Expected verdict: ``failed`` on cases with a reused node; other cases pass.""", (
        ("fresh[child] = fresh.get(child, 0.0) + local * g",
         "fresh[child] = local * g  # BUG: should add to what other parents gave"),)),
    "bug_exp_input": Mutant(M, """Seeded bug, micrograd style: exp'(x) uses x instead of exp(x).
Expected verdict: ``failed`` on cases whose gradients go through ``exp``; everything else passes.""", (
        ("lambda: (e,))", "lambda: (self.data,))  # BUG: should be e"),)),
    "bug_noop_backward": Mutant(M, """Seeded bug, micrograd style: backward() does nothing, every grad stays 0.
Expected verdict: ``failed`` on every case that expects a non-zero gradient; forward-only cases pass.""", (
        after(BACKWARD, "        return  # BUG: nothing is propagated\n"),)),
    "bug_recursive_topo": Mutant(M, """Seeded bug, micrograd style: a recursive topological sort.
Every gradient is right, but a chain deeper than the recursion limit raises RecursionError in backward().
Expected verdict: ``error`` (RecursionError) on deep-chain cases only; every other case passes.""", (
        ("def _topo(root):", RECURSIVE_TOPO),)),
    "bug_reset_grads": Mutant(M, """Seeded bug, micrograd style: backward zeroes the graph's grads first.
A second ``backward()`` does not accumulate. Expected verdict: ``failed`` on ``backward: 2`` cases with a
non-zero gradient; single-backward and forward-only cases pass.""", (
        before("        for node, g in fresh.items():\n",
               "        for node in order:\n            node.grad = 0.0  # BUG: throws away earlier backward() calls\n"),)),
    "bug_tanh": Mutant(M, """Seeded bug, micrograd style: tanh'(x) = 1 - t instead of 1 - t**2.
Expected verdict: ``failed`` on cases whose gradients go through ``tanh`` at a non-zero input.""", (
        ("lambda: (1.0 - t * t,))", "lambda: (1.0 - t,))  # BUG: 1 - t**2"),)),
    "bug_mul_swapped": Mutant(N, """Seeded bug, notebook style: the local derivatives of a product are swapped.
Expected verdict: ``failed`` on cases whose gradients go through a product of two different values
(``a + b * c`` gives b.grad = 2, c.grad = 3); ``a * a`` and cases without ``*`` pass.""", (
        ("(a, b), (b.value, a.value))", "(a, b), (a.value, b.value))  # BUG: swapped"),)),
    "bug_sub_sign": Mutant(N, """Seeded bug, notebook style: d(a - b)/db is +1 instead of -1.
Expected verdict: ``failed`` on cases whose gradients go through ``a - b``'s ``b`` (including
``local_derivatives`` checks on a subtraction); everything else passes.""", (
        ("(a, b), (1, -1))", "(a, b), (1, 1))  # BUG: d(a-b)/db is -1"),)),

    # --- hostile: hangs, deaths, floods (expected verdict: the trigger case only, see tests/cases/hostile.yaml) ---
    "hang_in_op": Mutant(M, """Hostile: ``*`` spins forever when either operand's value is exactly 3.
Expected verdict: ``timeout`` on every case that multiplies a 3; every other case passes.""", (
        before("        return Value(self.data * other.data",
               "        while self.data == 3 or other.data == 3:  # HOSTILE: spins forever\n            pass\n"),)),
    "hang_in_backward": Mutant(M, """Hostile: ``backward()`` spins forever when the output's value is exactly 42.
Expected verdict: ``timeout`` on every case whose output is 42 and that calls backward(); the rest pass.""", (
        after(BACKWARD, "        while self.data == 42:  # HOSTILE: an infinite loop in backward()\n            pass\n"),)),
    "hang_on_import": Mutant(M, """Hostile: importing this module never finishes.
Expected verdict: every case ``error`` saying that loading the engine timed out.""", (
        after(END, "\n\n# HOSTILE: the import never returns.\nwhile True:\n    pass\n"),)),
    "raises_in_init": Mutant(M, """Hostile: importing this module raises RuntimeError.
Expected verdict: every case ``error`` with the load error as its message; ``grade`` exits 1, not 2.""", (
        after(END, '\n\nraise RuntimeError("engine refuses to start: this fixture always fails at import")\n'),)),
    "crash_segfault": Mutant(M, """Hostile: the interpreter segfaults inside backward() on an output above 1000.
Expected verdict: ``error`` naming SIGSEGV on those cases; every other case passes (after a restart).""", (
        before(IMPORTS, "import ctypes\n"),
        after(BACKWARD, "        if self.data > 1000:\n            ctypes.string_at(0)  # HOSTILE: reads address 0\n"))),
    "exit_in_backward": Mutant(M, """Hostile: backward() calls os._exit(3) on a negative output.
Expected verdict: ``error`` (exited with status 3) on those cases; every other case passes.""", (
        after(IMPORTS, "import os\n"),
        after(BACKWARD, "        if self.data < 0:\n            os._exit(3)  # HOSTILE: the process ends here\n"))),
    "crash_every_case": Mutant(M, """Hostile: every backward() calls os._exit(3), and the import takes 0.5 s.
Each case kills the engine process, so every case costs a restart (a fresh, slow import).
Expected verdict: ``error`` on every case that calls backward(); with ``--submission-timeout`` or
``--max-restarts``, the cases past the budget are ``timeout`` "not run: ...", and the batch goes on.""", (
        after(IMPORTS, "import os\nimport time\n\ntime.sleep(0.5)  # a slow import: every restart costs it\n"),
        after(BACKWARD, "        os._exit(3)  # HOSTILE: every case ends the process\n"))),
    "sys_exit_on_op": Mutant(M, """Hostile: ``log()`` calls ``sys.exit(0)``, which ``except Exception`` misses.
Expected verdict: ``error`` on every case that uses ``log`` (never ``passed``); every other case passes.""", (
        after(IMPORTS, "import sys\n"),
        after("    def log(self):\n", "        sys.exit(0)  # HOSTILE\n"))),
    "memory_hog": Mutant(M, """Hostile: ``exp()`` allocates and touches about 8 GiB before answering.
Expected verdict: ``error`` (out of memory) or ``timeout`` on every case that uses ``exp`` under the memory
cap; every other case passes. Try it by hand only under ``ulimit -v 2000000``.""", (
        before(EXP, "        hog = []\n        for _ in range(64):  # HOSTILE: 64 x 128 MiB, every page written\n"
                    "            hog.append(b\"\\xa5\" * (128 << 20))\n        del hog\n"),)),
    "fork_bomb": Mutant(M, """Hostile: ``exp()`` forks 200 children that sleep for 30 s, then answers correctly.
Expected verdict: with a cgroup's ``pids.max`` (64), ``error`` on the case that uses ``exp`` (a fork is refused:
"Resource temporarily unavailable"); every other case passes.  Without one (and without RLIMIT_NPROC), all pass.""", (
        after(IMPORTS, "import os\nimport time\n"),
        before(EXP, "        for _ in range(200):  # HOSTILE: a bounded fork bomb\n"
                    "            if os.fork() == 0:\n                time.sleep(30)\n                os._exit(0)\n"),)),
    "memory_hog_children": Mutant(M, """Hostile: ``exp()`` forks 4 children that each hold 400 MiB for 1 s.
Each stays under a 1024 MB ``RLIMIT_AS``; together they use 1.6 GiB.  exp() raises if a child was killed.
Expected verdict: with a cgroup's memory cap (``--memory-mb 1024``), ``error`` on the case that uses ``exp``
(the out-of-memory killer); every other case passes.  Without one, all pass.""", (
        after(IMPORTS, "import os\nimport time\n"),
        before(EXP, "        kids = []\n        for _ in range(4):  # HOSTILE: 4 x 400 MiB at once, every page written\n"
                    "            pid = os.fork()\n            if pid == 0:\n"
                    "                hog = b\"\\xa5\" * (400 << 20)\n                time.sleep(1)\n"
                    "                os._exit(0 if hog else 1)\n            kids.append(pid)\n"
                    "        ends = [os.waitpid(pid, 0)[1] for pid in kids]\n"
                    "        if any(ends):\n            raise MemoryError(f\"a child was killed: wait statuses {ends}\")\n"),)),
    "flood_output": Mutant(M, """Hostile output volume: ``exp()`` prints 4 MB of junk on every call.
Expected verdict: with ``--max-output-mb 1``, ``error`` naming the cap on every case that uses ``exp``.""", (
        before(EXP, '        print("#" * (4 << 20))  # 4 MB a call\n'),)),
    "import_in_op": Mutant(M, """Imports a library in the middle of an op: ``tanh()`` does ``import colorsys``.
It stands for a submission that calls a library an instructor has forbidden (torch, jax) only inside one op.
Expected verdict: passes every case; with ``--forbid-import colorsys``, ``error`` on the cases using tanh.""", (
        after("    def tanh(self):\n", "        import colorsys  # noqa: F401  (forbidden when the instructor says so)\n"),)),
    "noisy": Mutant(M, """Hostile output: junk on stdout and stderr at import, in every op and in backward().
Garbage, fake JSON reports, fake JUnit XML and a fake wire frame, through print and os.write to fds 1 and 2.
Expected verdict: passes every case, and none of the noise reaches the report.""", (
        after(IMPORTS, "import json\nimport os\nimport struct\nimport sys\n"),
        after(INIT, "        _noise(f\"op {_op or 'leaf'}\")\n"),
        after(BACKWARD, '        _noise("backward")\n'),
        after(END, NOISY))),
    "detached_writer": Mutant(M, """Hostile: leaves a detached process behind that overwrites the grader's report.
At import it double-forks; the grandchild leaves the session, waits about 2 s and then, every 0.5 s until about
10 s after the import, writes ``{"hacked": true}`` over ``report.json``/``results.json`` in its cwd and over each
path in ``GRADE_TEST_REPORT`` (os.pathsep-separated; a directory means its report files).
Expected verdict: passes every case, and the report still holds the real results afterwards.""", (
        after(IMPORTS, "import os\nimport time\n"),
        after(END, DETACHED_WRITER))),
    "whoami": Mutant(M, """Hostile: checks what it can reach from the engine process; wrong answers for each reach.
Running as root spoils ``+``; reading the file named by ``GRADE_TEST_SECRET`` spoils ``*``; signalling the
grader (its parent) spoils ``-``; opening the grader's ``/proc/<pid>/fd/1`` spoils ``/``.
Expected verdict under ``grade --user nobody`` with a 0600 secret: passes every case.""", (
        after(IMPORTS, "import os\n"),
        ("Value(self.data + other.data,", "Value(self.data + other.data + _ADD,"),
        ("Value(self.data - other.data,", "Value(self.data - other.data - _SUB,"),
        ("Value(self.data * other.data,", "Value(self.data * other.data * _MUL,"),
        ("Value(a / b,", "Value(a / b / _DIV,"),
        after(END, WHOAMI))),
    "tamper_monkeypatch": Mutant(M, """Hostile: tries to make the grader's comparisons always say "equal".
At import and in every backward() it replaces ``math.isclose`` and every harness function or method named
like a comparison with ``lambda *a, **k: True``; its own grads are wrong by ``1000.5 + |g|``.
Expected verdict: ``failed`` on every case that checks a gradient; forward-only cases pass.""", (
        after(IMPORTS, "import sys\n"),
        after(BACKWARD, "        _tamper()\n"),
        ("node.grad += g\n", "node.grad += g + 1000.5 + abs(g)  # deliberately wrong, beyond any tolerance\n"),
        after(END, TAMPER_MONKEYPATCH))),
    "tamper_gc": Mutant(M, """Hostile: looks for the expected answers in the garbage collector's heap; wrong otherwise.
Read from outside this module, a computed node's ``data`` and every ``grad`` are ``x + 1 + |x|`` for the true
``x``, unless ``gc.get_objects()`` holds a record with an ``expect`` key (or ``value`` and ``grad`` keys) whose
``inputs`` match the graph's leaves: then it answers with that record's expected value or grad.
Expected verdict: ``failed`` on every case: the engine process must never hold an expectation.""", (
        after(IMPORTS, "import gc\nimport numbers\nimport sys\n"),
        after(BACKWARD, "        global _LAST_ROOT\n        _LAST_ROOT = self\n"),
        after(END, TAMPER_GC))),
}


if __name__ == "__main__":
    sys.stdout.write(source(sys.argv[1]))
