"""The pytest plugin: ``pytest --engine SPEC [PATH ...]`` runs YAML case files as pytest items.

Without ``--engine`` it does nothing at all.  With it, every case file among
the given paths (the built-in suites when no path is given) is collected as
``<file>::<suite>::<case>``, one item per case, and each item runs through the
same engine process and judge as ``grade``: ``passed`` passes, ``unsupported``
is a skip, and ``failed``, ``error`` and ``timeout`` fail with the verdict's
message (expected, got, tolerance) and the blame of ``grade`` (the culprit op and where the
submission implements it; ``--engine-no-blame`` turns it off).  The terminal summary ends with
"what to fix first", from the same list as every report (``harness.reporting.common.fix_first``).
It follows pytest's "non-python tests"
example; pytest's own ``--junitxml``, ``-k``, ``-x`` and ``-n`` work as usual.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

#: A YAML file is a case file when a top-level ``cases:`` key starts one of its lines.
_CASES_KEY = re.compile(rb"^cases[ \t]*:", re.M)
_GRADER = pytest.StashKey["_Grader"]()
#: The report attribute that carries a failing case's diagnoses (JSON) to the terminal summary; pytest-xdist
#: sends a report's attributes from its workers, and --junitxml does not write it.
_BLAME = "harness_diagnosis"
_DIAGNOSIS = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "autograd-harness: grade an autograd engine on YAML case files")
    group.addoption("--engine", metavar="SPEC", default=None,
                    help="grade this engine (a .py file, a package folder, a module name or an "
                         "installed engine name) on the case files among the paths, or on the "
                         "built-in suites when no path is given")
    group.addoption("--engine-timeout", type=float, default=10.0, metavar="S",
                    help="seconds per case unless the case sets its own (default: 10)")
    group.addoption("--engine-memory-mb", type=int, default=2048, metavar="MB",
                    help="address-space cap of the engine process, 0 for none (default: 2048)")
    group.addoption("--engine-sandbox", default="auto", choices=["auto", "bwrap", "uid", "none"],
                    help="where the engine process runs, as grade --sandbox (default: auto)")
    group.addoption("--engine-no-blame", action="store_true", default=False,
                    help="do not look for the culprit of failing cases (faster), as grade --no-blame")
    group.addoption("--engine-audience", default="student", choices=["student", "instructor"],
                    help="who reads the output: for a student, a hidden (or after_due_date) case shows only "
                         "that it failed, and no other case's output names it (default: student, as pytest "
                         "output in CI is the student's; instructor shows everything)")


def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list) -> None:
    """With --engine and no path on the command line, collect the built-in suites."""
    namespace = early_config.known_args_namespace
    if getattr(namespace, "engine", None) and not getattr(namespace, "file_or_dir", None):
        from harness.cases.loader import builtin_cases_dir

        args.append(str(builtin_cases_dir()))


def pytest_configure(config: pytest.Config) -> None:
    spec = config.getoption("engine", None)
    if spec:
        from harness.errors import HarnessError
        from harness.sandbox import reaper

        try:
            config.stash[_GRADER] = _Grader(config, spec)
        except HarnessError as e:
            raise pytest.UsageError(str(e)) from None
        reaper.become_subreaper()  # a process an engine detaches is re-parented to pytest, and killed


def pytest_unconfigure(config: pytest.Config) -> None:
    if _GRADER in config.stash:
        from harness.sandbox import reaper

        reaper.stop_all()  # nothing an engine process started outlives pytest (or rewrites its --junitxml)
        reaper.resume()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if _GRADER in config.stash:
        grader = config.stash[_GRADER]
        sandbox = grader.limits.sandbox + (f" (warning: {grader.limits.sandbox_warning})"
                                           if grader.limits.sandbox_warning else "")
        from harness.running.grading import cgroup_limits

        return [f"autograd-harness: grading engine {grader.written}", f"autograd-harness: sandbox: {sandbox}",
                f"autograd-harness: cgroup: {cgroup_limits(grader.limits)}"]
    return None


@pytest.hookimpl(hookwrapper=True)  # the old style, which pytest 7 has too
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failing case's report carries its diagnoses, for the terminal summary."""
    outcome = yield
    if call.when == "call" and _DIAGNOSIS in item.stash:
        setattr(outcome.get_result(), _BLAME, item.stash[_DIAGNOSIS])


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """What to fix first, over every failing case of the session (the same list as every report)."""
    if _GRADER not in config.stash:
        return
    import json

    from harness.batch.shards import diagnosis_from_dict
    from harness.model import CaseResult, Status
    from harness.reporting.common import clean, fix_first

    cases = []
    for report in terminalreporter.stats.get("failed", []):
        value = getattr(report, _BLAME, None)
        if isinstance(value, str):
            cases.append(CaseResult(report.nodeid, Status.FAILED, 0.0, 0.0,
                                    diagnosis=[diagnosis_from_dict(d) for d in json.loads(value)]))
    items = fix_first(cases)
    if items:
        terminalreporter.write_sep("=", "what to fix first")
        for k, f in enumerate(items, 1):
            terminalreporter.write_line(clean(f"{k}. {f.text()}"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if _GRADER not in parent.config.stash or file_path.suffix not in (".yaml", ".yml"):
        return None
    try:
        head = file_path.read_bytes()
    except OSError:
        return None
    return CaseFile.from_parent(parent, path=file_path) if _CASES_KEY.search(head) else None


class _Grader:
    """Runs the engine on a suite's selected cases at once (one case at a time under pytest-xdist)
    and judges each case on demand."""

    def __init__(self, config: pytest.Config, spec: str):
        from harness.running.runner import Limits

        self.written = spec
        self.spec = os.path.abspath(spec) if os.path.exists(spec) else spec
        from harness.sandbox.modes import choose

        memory = config.getoption("engine_memory_mb")
        sandbox = choose(config.getoption("engine_sandbox"))
        self.limits = Limits(timeout=config.getoption("engine_timeout"), memory_mb=memory or None,
                             sandbox=sandbox.mode, sandbox_warning=sandbox.warning)
        self.blame = not config.getoption("engine_no_blame")
        self.audience = config.getoption("engine_audience")
        self.results: dict = {}  # node id -> CaseResult, with its blame
        self._call_ops: dict | None = None

    def call_ops(self) -> dict:
        """The ops case expressions may call, plugins' ops included."""
        if self._call_ops is None:
            from harness import plugins
            from harness.cases.expr import CALL_OPS

            pm = plugins.installed_manager()
            self._call_ops = {**CALL_OPS, **{n: s.arity for n, s in plugins.ops(pm).items()}}
        return self._call_ops

    def verdict(self, item: CaseItem):
        """The judge's verdict on ``item``'s case, as a case result (with its blame when it fails)."""
        if item.nodeid not in self.results:
            if hasattr(item.config, "workerinput"):  # a pytest-xdist worker runs only some of the items
                batch = [item]
            else:  # one engine process for the suite's selected cases
                batch = [i for i in item.session.items if isinstance(i, CaseItem) and i.parent is item.parent
                         and i.nodeid not in self.results]
                batch = batch if item in batch else [item]
            self._run(batch)
        return self.results[item.nodeid]

    def _run(self, items: list) -> None:
        """Run, judge and (for the failing ones) blame ``items`` at once, as ``grade`` does an engine's cases."""
        from harness.diagnosis import blame as blaming
        from harness.judging.compare import case_result, judge
        from harness.model import EngineResult, RunResult
        from harness.reporting.audience import Audience, redact
        from harness.running import program
        from harness.running.runner import Session, timeout_for

        # As grade does: the visible cases first; hidden and after_due_date ones in a fresh engine process,
        # and blamed apart, so that nothing a visible case shows comes from a process that saw them.
        shown = [i for i in items if i.case.visibility == "visible"]
        kept = [i for i in items if i.case.visibility != "visible"]
        graded: dict = {}
        name = ""
        for group in (shown, kept):
            if not group:
                continue
            progs = [program.build(i.case) for i in group]
            timeouts = [timeout_for(i.case.timeout, self.limits) for i in group]
            with Session(self.spec, self.limits) as session:  # the first engine the spec provides
                observations = session.run(progs, timeouts)
                name, load_error = session.name, session.load_error
            done = [blaming.Item(i.case, prog, obs, case_result(i.case, obs, judge(i.case, obs)))
                    for i, prog, obs in zip(group, progs, observations)]
            if self.blame and not load_error:
                blaming.blame(self.spec, name, done, self.limits)
            graded.update((i.nodeid, it.result) for i, it in zip(group, done))
        # a student's output shows a hidden case only as failed, and no other case's text names one
        engine = EngineResult(name, self.spec, [graded[i.nodeid] for i in items])
        seen = redact(RunResult([engine]), Audience(self.audience)).engines[0]
        for i, result in zip(items, seen.cases):
            self.results[i.nodeid] = result


class CaseFile(pytest.File):
    """A YAML case file: one suite."""

    def collect(self):
        from harness.cases.loader import load_suite
        from harness.errors import HarnessError
        from harness.running import reference

        grader = self.config.stash[_GRADER]
        try:
            suite = load_suite(self.path, grader.call_ops())
            cases = reference.resolve(list(suite.cases), grader.limits)  # 'reference' expectations
        except HarnessError as e:
            raise self.CollectError(str(e)) from None
        yield SuiteNode.from_parent(self, name=suite.name, cases=cases)


class SuiteNode(pytest.Collector):
    """A suite's cases, so that a node id ends in the case id ``<suite>::<name>``."""

    def __init__(self, *, cases, **kwargs):
        super().__init__(**kwargs)
        self.cases = cases

    def collect(self):
        for case in self.cases:
            yield CaseItem.from_parent(self, name=case.name, case=case)


class CaseFailed(Exception):
    """A case that did not pass: its status and the judge's message."""

    def __init__(self, status: str, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class CaseItem(pytest.Item):
    """One case, graded through the engine process and the judge."""

    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.extra_keyword_matches.update(case.tags)  # so that -k TAG selects by tag

    def runtest(self) -> None:
        import json

        from harness.reporting.common import case_text
        from harness.reporting.json import diagnosis_dict

        result = self.config.stash[_GRADER].verdict(self)
        if result.diagnosis:  # for the terminal summary, also from a pytest-xdist worker
            self.stash[_DIAGNOSIS] = json.dumps([diagnosis_dict(d) for d in result.diagnosis])
        if result.status == "unsupported":  # reported at the case's line, not this one
            raise pytest.skip.Exception(case_text(result), _use_item_location=True)
        if result.status != "passed":
            raise CaseFailed(result.status, case_text(result))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailed):
            e = excinfo.value
            first, *rest = e.message.splitlines() or [""]
            return "\n".join([f"{e.status}: {first}", *(f"  {line}" for line in rest)])
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        line = self.case.line - 1 if self.case.line else 0
        return self.path, line, f"case {self.case.id}"
