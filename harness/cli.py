"""The ``grade`` command."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from pathlib import Path

from harness.errors import HarnessError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade",
        description="Grade scalar autograd engines against YAML cases. "
                    "'grade merge REPORT...' combines the JSON reports of --shard runs.",
        epilog="exit codes: 0 all passed (or score >= --fail-under), 1 something did not pass, "
               "2 the command could not run",
    )
    p.add_argument("--engine", action="append", default=[], metavar="SPEC",
                   help="a .py file, a notebook (.ipynb), a folder (a package or a repository), "
                        "DIR::module[:Class], a module name or an installed engine name (repeatable)")
    p.add_argument("--submissions", action="append", default=[], metavar="DIR",
                   help="a folder whose every child folder, .py, .ipynb or .zip file is one submission, "
                        "named after it, or a Canvas, Moodle or Blackboard 'download all submissions' "
                        "folder or zip, one submission per student (repeatable)")
    p.add_argument("--cases", action="append", default=[], metavar="PATH",
                   help="a case file or a folder of them (repeatable; replaces the built-in suites)")
    p.add_argument("--format", default="text", metavar="FORMAT",
                   help="report format: text, json, junit, gradescope, csv, markdown, or one an "
                        "installed plugin adds (default: text)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE (atomically) instead of stdout")
    p.add_argument("-k", dest="keyword", action="append", default=[], metavar="SUBSTRING",
                   help="only cases whose id contains SUBSTRING (repeatable: any of them)")
    p.add_argument("--tag", action="append", default=[], help="only cases with this tag (repeatable: any)")
    p.add_argument("--timeout", type=_positive, default=10.0, metavar="S",
                   help="seconds per case unless the case sets its own (default: 10)")
    p.add_argument("--load-timeout", type=_positive, default=20.0, metavar="S",
                   help="seconds to import a submission (default: 20)")
    p.add_argument("--notebook-mode", choices=["defs", "all"], default="defs",
                   help="notebooks and scripts exported from them: run only the statements that define "
                        "names (defs: no training loops, plots or asserts; whole cells if that finds no "
                        "engine) or every cell (all) (default: defs)")
    p.add_argument("--memory-mb", type=_positive_int, default=2048, metavar="MB",
                   help="address-space cap of each engine process, 0 for none (default: 2048)")
    p.add_argument("--max-output-mb", type=_positive_int, default=64, metavar="MB",
                   help="cap on what each engine process writes (prints, files), 0 for none (default: 64)")
    p.add_argument("--forbid-import", action="append", default=[], type=_module_name, metavar="MODULE",
                   help="also refuse MODULE (and its submodules) to submissions, e.g. torch (repeatable; "
                        "reference_engine and harness internals are always refused)")
    p.add_argument("--user", metavar="USER",
                   help="run every engine process as USER (a name or a uid, with its primary group), "
                        "e.g. nobody; grade must run as root")
    p.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="submissions graded in parallel, each in its own engine process "
                        "(default: the number of CPUs)")
    p.add_argument("--fail-under", type=_percent, metavar="PERCENT",
                   help="exit 0 when every engine scores at least PERCENT")
    p.add_argument("-p", "--plugin", action="append", default=[], metavar="MODULE",
                   help="load a plugin module (repeatable; also: HARNESS_PLUGINS=mod1,mod2)")
    p.add_argument("--shard", type=_shard, metavar="K/N",
                   help="grade only the K-th of N equal parts of the (submission, case) pairs; "
                        "combine the parts' JSON reports with 'grade merge'")
    p.add_argument("--list", action="store_true",
                   help="list the selected cases (with --shard: the shard's part) and exit")
    p.add_argument("--no-blame", dest="blame", action="store_false",
                   help="do not probe failing cases for the op or habit to blame")
    p.add_argument("--fuzz", type=_positive_int, default=0, metavar="N",
                   help="also grade N random expressions against the reference engine (ids fuzz::<k>)")
    p.add_argument("--seed", type=_int, default=0, metavar="S", help="seed of --fuzz (default: 0)")
    p.add_argument("--graph", choices=["dot"], metavar="dot",
                   help="print the graphs of the failing cases as Graphviz DOT instead of the report")
    p.add_argument("--build-gradescope", metavar="ZIP",
                   help="write a Gradescope autograder zip that grades each submission with the "
                        "selected cases and these options, and exit")
    p.add_argument("--check-cases", action="store_true",
                   help="check the selected cases instead of grading: the reference engine and central "
                        "finite differences must agree with every expectation (exit 0 if they do, 1 if not)")
    p.add_argument("--schema", action="store_true",
                   help="print the path of the case files' JSON Schema (for editors) and exit")
    return p


def build_merge_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade merge",
        description="Merge the JSON reports of the shards of one run (grade --shard K/N --format json) "
                    "into the report of the whole run.",
        epilog="exit codes: 0 all passed (or score >= --fail-under), 1 something did not pass, "
               "2 the reports could not be merged",
    )
    p.add_argument("reports", nargs="+", metavar="REPORT",
                   help="JSON reports, one per shard, in any order (or CSV gradebooks, merged as given)")
    p.add_argument("--format", metavar="FORMAT",
                   help="report format (default: json; csv for CSV gradebooks, which merge into csv only)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE (atomically) instead of stdout")
    p.add_argument("--fail-under", type=_percent, metavar="PERCENT",
                   help="exit 0 when every engine scores at least PERCENT")
    p.add_argument("-p", "--plugin", action="append", default=[], metavar="MODULE",
                   help="load a plugin module, e.g. one with a report format (repeatable)")
    return p


def _shard(text: str):
    from harness.batch import shards

    try:
        return shards.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _module_name(text: str) -> str:
    if not _MODULE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a module name such as torch or jax.numpy")
    return text


def _percent(text: str) -> float:
    value = _positive(text) if text.strip() not in ("0", "0.0") else 0.0
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100, got {text}")
    return value


def select(cases: list, keywords: list, tags: list) -> list:
    """Cases matching any -k substring and any --tag (each filter only when given)."""
    return [c for c in cases
            if (not keywords or any(k in c.id for k in keywords))
            and (not tags or any(t in c.tags for t in tags))]


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    import tempfile

    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Run ``grade`` (or ``grade merge``); returns the exit code."""
    code = _main(argv)
    if code == EXIT_INTERRUPTED:
        # Everything is cleaned up, but the interpreter may still hold the interrupt (one raised inside
        # an import is swallowed there) and would end the process by SIGINT instead of this exit code.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    return code


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    merging = argv[:1] == ["merge"]
    parser = build_merge_parser() if merging else build_parser()
    args = parser.parse_args(argv[1:] if merging else argv)
    from harness.sandbox import reaper

    previous = _on_sigterm(_interrupt)
    try:
        return _merge(args) if merging else _run(parser, args)
    except HarnessError as e:
        if not _interrupted:
            print(f"{parser.prog}: error: {e}", file=sys.stderr)
            return EXIT_USAGE
        print(f"{parser.prog}: interrupted; every engine process was killed", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException as e:
        # An interrupt can land anywhere, e.g. in an import, which may wrap it in another exception.
        if not (_interrupted or isinstance(e, KeyboardInterrupt)):
            raise
        print(f"{parser.prog}: interrupted; every engine process was killed", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        reaper.stop_all()  # nothing a submission started outlives grade
        reaper.resume()
        _on_sigterm(previous)


_interrupted = False


def _interrupt(signum, frame):
    """SIGTERM: stop like Ctrl-C does (once; a second signal changes nothing)."""
    global _interrupted
    if not _interrupted:
        _interrupted = True
        raise KeyboardInterrupt


def _on_sigterm(handler):
    """Install a SIGTERM handler (main thread only); the previous one."""
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return handler


def _run(parser: argparse.ArgumentParser, args) -> int:
    from harness.running.runner import prestart

    if args.schema:
        from harness.cases.loader import SCHEMA_PATH

        print(SCHEMA_PATH)
        return EXIT_OK
    if args.plugin:  # the engine processes inherit the variable and load them too
        from harness import plugins

        os.environ[plugins.PLUGINS_ENV] = ",".join(plugins.extra_plugin_names() + args.plugin)
    limits = _limits(args)
    early: dict = {}
    if not (args.list or args.shard or args.check_cases or args.build_gradescope or args.schema):
        # The first engine processes start loading now, while the cases are parsed.
        try:
            specs = _graded(args)[0]
        except HarnessError:
            specs = []  # reported below, in its turn
        if specs:
            early = prestart(specs, limits, args.jobs)
    try:
        return _grade(parser, args, limits, early)
    finally:
        for worker in early.values():
            worker.kill()
        if getattr(args, "_workdir", None):  # LMS downloads and archives unpacked for this run
            import shutil

            shutil.rmtree(args._workdir, ignore_errors=True)


def _limits(args):
    from harness.engine_side.guard import DEFAULT_FORBIDDEN
    from harness.running.runner import Limits

    user = None
    if args.user is not None and not args.build_gradescope:  # the autograder resolves it where it runs
        from harness.sandbox.privileges import resolve

        user = resolve(args.user)
    return Limits(timeout=args.timeout, load_timeout=args.load_timeout, memory_mb=args.memory_mb or None,
                  output_mb=args.max_output_mb or None,
                  forbidden_imports=tuple(dict.fromkeys(DEFAULT_FORBIDDEN + tuple(args.forbid_import))),
                  user=user, notebook_mode=args.notebook_mode)


def _graded(args) -> tuple[list, list, list]:
    """The submissions to grade: (specs, as written, submission ids); --submissions is expanded once."""
    if getattr(args, "_expanded", None) is None:
        args._expanded = [s for target in args.submissions for s in _expand(target, args)]
    written = list(args.engine) + [s.source for s in args._expanded]
    ids = [None] * len(args.engine) + [s.id for s in args._expanded]
    specs = [_absolute(s) for s in args.engine] + [os.path.abspath(s.path) for s in args._expanded]
    return specs, written, ids


def _expand(target: str, args) -> list:
    """The submissions of one --submissions folder or zip (an LMS download's grouped per student)."""
    import tempfile

    from harness import intake
    from harness.intake import lms

    if getattr(args, "_workdir", None) is None:
        args._workdir = tempfile.mkdtemp(prefix="grade-submissions-")
        os.chmod(args._workdir, 0o711)  # an engine process that dropped root (--user) reads its files
    found = lms.expand(target, Path(args._workdir))
    for s in found:
        if s.problem:
            intake.PROBLEMS[os.path.abspath(s.path)] = s.problem
    return found


def _absolute(spec: str) -> str:
    """A spec with its path made absolute (DIR::module: the folder), as the engine processes need it."""
    folder, sep, target = spec.partition("::")
    return os.path.abspath(folder) + sep + target if os.path.exists(folder) else spec


def _grade(parser: argparse.ArgumentParser, args, limits, early: dict) -> int:
    from harness import plugins
    from harness.batch import shards
    from harness.cases.expr import CALL_OPS
    from harness.cases.loader import load_suites
    from harness.reporting.progress import for_batch
    from harness.running.grading import Feedback, grade_plan
    from harness.sandbox import reaper

    pm = plugins.installed_manager()
    reporters = _reporters(pm, args.format)
    call_ops = {**CALL_OPS, **{name: spec.arity for name, spec in plugins.ops(pm).items()}}
    suites = load_suites(args.cases, call_ops)
    cases = select([c for s in suites for c in s.cases], args.keyword, args.tag)
    if not cases and not args.fuzz:
        raise HarnessError("no case matches the -k/--tag filters")
    if args.graph and args.format != "text":
        raise HarnessError("--graph dot prints DOT instead of the report; leave out --format")
    fmt = "dot" if args.graph else args.format
    if args.list:
        specs, written, _ = _graded(args)
        shown = dict(zip(specs, written))
        for spec, part in shards.split(specs or [""], cases, args.shard):
            prefix = f"{shown[spec]}  " if len(specs) > 1 else ""
            for c in part:
                print(f"{prefix}{c.id}  [{', '.join(c.tags)}]")
        return EXIT_OK
    if args.build_gradescope:
        if args.engine or args.submissions:
            raise HarnessError("--build-gradescope builds an autograder and grades nothing: "
                               "leave out --engine and --submissions")
        return _build_gradescope(args, cases)
    reaper.become_subreaper()  # a detached process is re-parented to us, not to init
    if args.check_cases:
        return _check_cases(parser, args, cases, limits)
    if args.output and not Path(args.output).resolve().parent.is_dir():
        raise HarnessError(f"--output {args.output}: the folder {Path(args.output).parent} does not exist")
    specs, written, ids = _graded(args)
    if not written:
        if args.submissions:
            raise HarnessError(f"no submissions in {', '.join(args.submissions)}: expected child "
                               "folders, .py, .ipynb or .zip files, or an LMS download")
        parser.error("no engine to grade: give --engine SPEC (a .py file, a module or 'reference') "
                     "or --submissions DIR")
    _check_unique(ids)
    plan = shards.split(list(zip(specs, ids)), cases, args.shard)
    feedback = Feedback(blame=args.blame, fuzz=args.fuzz, seed=args.seed)
    run = grade_plan(plan, limits, jobs=args.jobs, progress=for_batch(len(plan), sys.stderr), feedback=feedback,
                     started=early, fuzz_here=lambda i: shards.ends_submission(plan[i][1], cases))
    reaper.sweep()  # the report is written last, when no process of a submission is left
    if args.shard:
        from harness.cases.fingerprint import fingerprint

        run.shard = (args.shard.index, args.shard.count)
        run.cases_fingerprint = fingerprint(cases)  # every shard: the whole selection, not its part
    _restore_sources(run, dict(zip(specs, written)))
    return _report(run, reporters[fmt], args)


def _merge(args) -> int:
    from harness import plugins
    from harness.batch import shards

    if args.plugin:
        os.environ[plugins.PLUGINS_ENV] = ",".join(plugins.extra_plugin_names() + args.plugin)
    kinds = {shards.kind(p) for p in args.reports}
    if kinds == {"csv"}:
        if (args.format or "csv") != "csv":
            raise HarnessError(f"CSV gradebooks merge into --format csv only, not {args.format!r}; for "
                               "other formats, merge the shards' JSON reports (grade --format json)")
        return _write_merged_csv(*shards.merge_csv(args.reports), args)
    if len(kinds) > 1:
        raise HarnessError("the reports mix JSON and CSV; merge the JSON reports of every shard "
                           "(any --format can be written from them)")
    args.format = args.format or "json"
    reporters = _reporters(plugins.installed_manager(), args.format)
    return _report(shards.merge(args.reports), reporters[args.format], args)


def _write_merged_csv(text: str, rows: list, args) -> int:
    if args.output:
        write_atomically(args.output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if args.fail_under is not None:
        return EXIT_OK if all(r.percent >= args.fail_under for r in rows) else EXIT_FAILED
    return EXIT_OK if all(r.all_passed for r in rows) else EXIT_FAILED


def _reporters(pm, name: str) -> dict:
    """Every report format, after checking that ``name`` is one."""
    from harness import plugins

    reporters = plugins.reporters(pm)
    if name not in reporters:
        from harness.errors import did_you_mean

        raise HarnessError(f"unknown --format {name!r}{did_you_mean(name, reporters)}; "
                           f"choose from {', '.join(sorted(reporters))}")
    return reporters


def _report(run, render, args) -> int:
    """Write the report; the exit code."""
    from harness.model import ReportContext

    to_tty = not args.output and sys.stdout.isatty()
    text = render(run, ReportContext(color=to_tty and "NO_COLOR" not in os.environ))
    if args.output:
        try:
            write_atomically(args.output, text)
        except OSError as e:
            raise HarnessError(f"cannot write --output {args.output}: {e.strerror or e}") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if args.fail_under is not None:
        return EXIT_OK if all(e.percent >= args.fail_under for e in run.engines) else EXIT_FAILED
    return EXIT_OK if run.all_passed else EXIT_FAILED


def _check_unique(ids: list) -> None:
    seen: set = set()
    for i in ids:
        if i is not None and i in seen:
            raise HarnessError(f"two submissions are named {i!r} (a folder and a .py file?); "
                               "rename one so that every submission id is unique")
        seen.add(i)


def _build_gradescope(args, cases: list) -> int:
    from harness import plugins
    from harness.batch import gradescope_zip
    from harness.running import reference
    from harness.running.runner import Limits

    # Check now that 'reference' expectations can be computed, not on the first submission.
    reference.resolve(cases, Limits(timeout=args.timeout, load_timeout=args.load_timeout,
                                    memory_mb=args.memory_mb or None))

    options = ["--timeout", f"{args.timeout:g}", "--load-timeout", f"{args.load_timeout:g}",
               "--memory-mb", str(args.memory_mb), "--max-output-mb", str(args.max_output_mb)]
    options += ["--notebook-mode", args.notebook_mode] if args.notebook_mode != "defs" else []
    options += [o for k in args.keyword for o in ("-k", k)] + [o for t in args.tag for o in ("--tag", t)]
    options += (["--fuzz", str(args.fuzz), "--seed", str(args.seed)] if args.fuzz else []) + (
        [] if args.blame else ["--no-blame"])
    course_plugins = plugins.extra_plugin_names()  # -p and HARNESS_PLUGINS
    options += [o for name in course_plugins for o in ("-p", name)]
    options += ["--user", args.user] if args.user is not None else []
    names = gradescope_zip.build(args.build_gradescope, args.cases, options, course_plugins)
    hidden = sum(c.visibility != "visible" for c in cases)
    print(f"wrote {args.build_gradescope}: {len(cases)} cases ({hidden} hidden or after the due date) "
          f"in {sum(n.startswith('cases/') for n in names)} case file(s); upload it as the autograder "
          "of a Gradescope programming assignment")
    return EXIT_OK


def _check_cases(parser: argparse.ArgumentParser, args, cases: list, limits) -> int:
    from harness.diagnosis import checking

    if args.engine:
        parser.error("--check-cases checks the cases with the reference engine; leave out --engine")
    report = checking.check(cases, limits)
    text = checking.render(report)
    if args.output:
        write_atomically(args.output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return EXIT_OK if report.ok else EXIT_FAILED


def _restore_sources(run, original: dict) -> None:
    """Report each engine's source as the user wrote it."""
    for e in run.engines:
        e.source = original.get(e.source, e.source)


if __name__ == "__main__":
    sys.exit(main())
