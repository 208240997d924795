"""The ``grade`` command: argument parsing and dispatch.

``grade --engine SPEC ...`` grades; the subcommands ``merge``, ``check-cases``, ``list``,
``build-gradescope`` and ``schema`` do the other, exclusive jobs (``--list``, ``--check-cases``,
``--build-gradescope ZIP`` and ``--schema`` are the same modes as flags).  Every mode returns an
``Outcome``, and ``_finish`` alone writes it and picks the exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from harness.cases.select import Expression, ExpressionError
from harness.errors import HarnessError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
#: The file name ending of each built-in format's reports in --output-dir; a plugin's: ``.<name>``.
EXTENSIONS = {"text": ".txt", "json": ".json", "junit": ".xml", "gradescope": ".json", "markdown": ".md",
              "csv": ".csv", "html": ".html", "dot": ".dot"}
SUBCOMMANDS = ("merge", "check-cases", "list", "build-gradescope", "schema")


@dataclass
class Outcome:
    """What a mode produced: the text to write, and whether it counts as passing."""

    text: str
    #: The report piece by piece, written as each piece comes (``text`` is not written then).
    chunks: Iterable[str] | None = None
    passed: bool = True
    #: Each graded engine's percent, for --fail-under (None: --fail-under does not apply).
    percents: list[float] | None = None
    #: Whether the text goes to --output (a listing or a message always goes to stdout).
    to_output: bool = True
    #: (file name, report) for --output-dir: one per submission, the report whole or piece by piece.
    per_submission: Iterable[tuple[str, str | Iterable[str]]] = field(default_factory=list)
    #: (path, report) for each --report FORMAT:FILE: the same run in further formats, piece by piece.
    reports: Sequence[tuple[str, Iterable[str]]] = ()


# --- parsing ------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and a --format help read from the reporter registry."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if isinstance(action, _SharedNamespace) and value not in (action.choices or ()):
            unknown = _unknown_option_before(self, value)
            if unknown:  # '--bogus 3': argparse took the unknown option's value for the command
                from harness.errors import did_you_mean

                longs = [o for o in self._option_string_actions if o.startswith("--")]
                self.error(f"unrecognized arguments: {unknown}{did_you_mean(unknown.split('=')[0], longs)}")
        super()._check_value(action, value)


class _Help(argparse.Action):
    """-h/--help: lists the report formats of the registry (with the -p plugins given before it)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        fmt = next((a for a in parser._actions if a.dest == "format"), None)
        if fmt is not None:
            try:
                _use_plugins(getattr(namespace, "plugin", []))
                names = ", ".join(sorted(format_names()))
            except HarnessError as e:
                names = f"(the registry could not be read: {e})"
            fmt.help = f"report format: {names} (default: {_format_default(parser)})"
        parser.print_help()
        parser.exit()


def _unknown_option(parser: argparse.ArgumentParser, token: str) -> bool:
    """Whether ``token`` looks like an option that ``parser`` does not take (nor abbreviates uniquely)."""
    if not token.startswith("-") or token == "-" or token.lstrip("-").replace(".", "", 1).isdigit():
        return False
    name = token.split("=", 1)[0]
    known = parser._option_string_actions
    if name in known or (not name.startswith("--") and name[:2] in known):
        return False
    return not (name.startswith("--") and sum(o.startswith(name) for o in known) == 1)


def _unknown_option_before(parser: argparse.ArgumentParser, command: str) -> str:
    """The unknown option right before ``command`` on the command line, if any ('' if none)."""
    argv = getattr(parser, "argv", [])
    for before, token in zip(argv, argv[1:]):
        if token == command and _unknown_option(parser, before):
            return before
    return ""


def _format_default(parser: argparse.ArgumentParser) -> str:
    return "json; csv for CSV gradebooks" if parser.prog.endswith(" merge") else "text"


class _SharedNamespace(argparse._SubParsersAction):
    """Subcommands parse into the main namespace: options given before the subcommand are kept."""

    def __call__(self, parser, namespace, values, option_string=None):
        name, rest = values[0], values[1:]
        setattr(namespace, self.dest, name)
        sub = self._name_parser_map.get(name)
        if sub is None:
            raise argparse.ArgumentError(self, f"invalid choice: {name!r} (choose from {', '.join(SUBCOMMANDS)})")
        _, extra = sub.parse_known_args(rest, namespace)
        if extra:  # everything after the subcommand is the subcommand's
            option = extra[0].split("=")[0]
            if option in parser._option_string_actions:
                sub.error(f"{option} does not apply to 'grade {name}'")
            sub.error(f"unrecognized arguments: {' '.join(extra)}")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``grade``, with its subcommands."""
    p = _Parser(
        prog="grade", add_help=False,
        usage="grade --engine SPEC [--engine SPEC ...] [--submissions DIR] [--cases PATH ...] [-k EXPRESSION]\n"
              "             [--tag TAG] [--exclude-tag TAG] [--format FORMAT] [--output FILE] [--output-dir DIR]\n"
              "             [--fail-under PERCENT] [--jobs N] [-p PLUGIN] [option ...]\n"
              "       grade COMMAND [option ...]     (COMMAND: " + ", ".join(SUBCOMMANDS) + ")",
        description="Grade scalar autograd engines against YAML cases: grade --engine SPEC [options], "
                    "or one of the commands below.",
        epilog="exit codes: 0 all passed (or score >= --fail-under), 1 something did not pass, "
               "2 the command could not run, 130 interrupted",
    )
    p.add_argument("-h", "--help", action=_Help, help="show this help and exit")
    what = p.add_argument_group("what to grade")
    _engine_options(what)
    _engine_name_option(what)
    _selection_options(p.add_argument_group("selecting cases"))
    _report_options(p.add_argument_group("the report"))
    limits = p.add_argument_group("limits of each engine process")
    _limit_options(limits)
    running = p.add_argument_group("running")
    _jobs_option(running)
    _timings_option(running)
    _shard_option(running)
    _plugin_option(running)
    _feedback_options(p.add_argument_group("feedback"), graph=True)
    modes = p.add_argument_group("other modes (also as commands: grade list, grade check-cases, ...)")
    modes.add_argument("--list", action="store_true",
                       help="list the selected cases (with --shard: the shard's part) and exit")
    modes.add_argument("--build-gradescope", metavar="ZIP",
                       help="write a Gradescope autograder zip that grades each submission with the "
                            "selected cases and these options, and exit")
    _no_check_option(modes)
    modes.add_argument("--check-cases", action="store_true",
                       help="check the selected cases instead of grading: the reference engine and central "
                            "finite differences must agree with every expectation (exit 0 if they do, 1 if not)")
    modes.add_argument("--schema", action="store_true",
                       help="print the path of the case files' JSON Schema (for editors) and exit")

    commands = p.add_subparsers(dest="command", metavar="COMMAND", action=_SharedNamespace, prog="grade",
                                title="commands (exclusive modes; 'grade COMMAND --help' for each)")
    merge = _subcommand(commands, "merge", "merge the JSON reports of --shard runs into one report",
                        "Merge the JSON reports of the shards of one run (grade --shard K/N --format json) "
                        "into the report of the whole run.")
    merge.add_argument("reports", nargs="+", metavar="REPORT",
                       help="JSON reports, one per shard, in any order (or CSV gradebooks, merged as given)")
    _report_options(merge)
    _plugin_option(merge)

    check = _subcommand(commands, "check-cases", "check the cases' expectations instead of grading",
                        "Check the selected cases: the reference engine and central finite differences "
                        "must agree with every expectation (exit 0 if they do, 1 if not).")
    _selection_options(check)
    check.add_argument("--output", metavar="FILE", help="write the findings to FILE (atomically) instead of stdout")
    _limit_options(check)
    _plugin_option(check)

    listing = _subcommand(commands, "list", "list the selected cases",
                          "List the selected cases (with --shard: the shard's part).")
    _engine_options(listing)
    _selection_options(listing)
    _shard_option(listing)
    _timings_option(listing)
    _plugin_option(listing)

    zipped = _subcommand(commands, "build-gradescope", "write a Gradescope autograder zip",
                         "Write a Gradescope autograder zip that grades each submission with the selected "
                         "cases and these options.")
    zipped.add_argument("build_gradescope", metavar="ZIP", help="the zip to write")
    _no_check_option(zipped)
    _selection_options(zipped)
    _limit_options(zipped)
    _feedback_options(zipped, graph=False)
    _engine_name_option(zipped)
    _plugin_option(zipped)

    _subcommand(commands, "schema", "print the path of the case files' JSON Schema",
                "Print the path of the case files' JSON Schema (for editors).")
    return p


def _no_check_option(group) -> None:
    group.add_argument("--no-check", dest="check", action="store_false",
                       help="with --build-gradescope: build even if the reference engine or finite "
                            "differences disagree with an expected number")


def _subcommand(commands, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=summary, description=description, add_help=False,
                              epilog="exit codes: 0 all passed, 1 something did not pass, "
                                     "2 the command could not run, 130 interrupted")
    sub.add_argument("-h", "--help", action=_Help, help="show this help and exit")
    return sub


def _engine_options(g) -> None:
    g.add_argument("--engine", action="append", default=[], metavar="SPEC",
                   help="a .py file, a notebook (.ipynb), a folder (a package or a repository), "
                        "DIR::module[:Class], a module name or an installed engine name (repeatable)")
    g.add_argument("--submissions", action="append", default=[], metavar="DIR",
                   help="a folder whose every child folder, .py, .ipynb or .zip file is one submission, "
                        "named after it, or a Canvas, Moodle or Blackboard 'download all submissions' "
                        "folder or zip, one submission per student (repeatable)")


def _engine_name_option(g) -> None:
    g.add_argument("--engine-name", action="append", default=[], metavar="NAME", dest="engine_names",
                   help="grade the engine named NAME in each submission (repeatable: each is graded); "
                        "default: only the first engine a submission registers")


def _selection_options(g) -> None:
    g.add_argument("--cases", action="append", default=[], metavar="PATH",
                   help="a case file or a folder of them (repeatable; replaces the built-in suites)")
    g.add_argument("-k", dest="keyword", action="append", default=[], type=_expression, metavar="EXPRESSION",
                   help="only cases whose id matches EXPRESSION: substrings of the id with and, or, not "
                        "and parentheses, e.g. -k 'ops and not sigmoid' (repeatable: any of them)")
    g.add_argument("--tag", action="append", default=[], help="only cases with this tag (repeatable: any)")
    g.add_argument("--exclude-tag", action="append", default=[], metavar="TAG",
                   help="leave out the cases with this tag (repeatable)")


def _report_options(g) -> None:
    g.add_argument("--format", metavar="FORMAT",
                   help="report format (the list: --help; default: text)")
    g.add_argument("--output", metavar="FILE", help="write the report to FILE (atomically) instead of stdout")
    g.add_argument("--audience", choices=["instructor", "student"],
                   help="who reads the report: a student's view shows a hidden case only as passed or failed "
                        "(default: instructor for text, json, junit, csv and dot; student for html, markdown, "
                        "gradescope and plugin formats)")
    g.add_argument("--report", action="append", default=[], type=_format_and_file, metavar="FORMAT:FILE",
                   help="also write the report in FORMAT to FILE, from the same run (repeatable), e.g. "
                        "--report junit:results.xml --report json:results.json")
    g.add_argument("--output-dir", metavar="DIR",
                   help="also write one report per submission into DIR (created if missing), in the "
                        "chosen format, each named after its submission")
    g.add_argument("--fail-under", type=_percent, metavar="PERCENT",
                   help="exit 0 when every engine scores at least PERCENT (0 to 100)")


def _limit_options(g) -> None:
    g.add_argument("--timeout", type=_positive, default=10.0, metavar="S",
                   help="seconds per case unless the case sets its own (default: 10)")
    g.add_argument("--load-timeout", type=_positive, default=20.0, metavar="S",
                   help="seconds to import a submission (default: 20)")
    g.add_argument("--submission-timeout", type=_non_negative, metavar="S",
                   help="seconds to run all of one submission's cases; the rest are then not run (timeout), and "
                        "blame and fuzz are skipped for it; 0 for no cap (default: its import plus every "
                        "case's timeout, at most 600)")
    g.add_argument("--max-restarts", type=_natural, default=50, metavar="N",
                   help="fresh engine processes one submission may need after crashes or timeouts; the rest "
                        "of its cases are then not run (default: 50)")
    g.add_argument("--notebook-mode", choices=["defs", "all"], default="defs",
                   help="notebooks and scripts exported from them: run only the statements that define "
                        "names (defs: no training loops, plots or asserts; whole cells if that finds no "
                        "engine) or every cell (all) (default: defs)")
    g.add_argument("--memory-mb", type=_natural, default=2048, metavar="MB",
                   help="address-space cap of each engine process, 0 for none (default: 2048)")
    g.add_argument("--max-output-mb", type=_natural, default=64, metavar="MB",
                   help="cap on what each engine process writes (prints, files), 0 for none (default: 64)")
    g.add_argument("--forbid-import", action="append", default=[], type=_module_name, metavar="MODULE",
                   help="also refuse MODULE (and its submodules) to submissions, e.g. torch (repeatable; "
                        "reference_engine and harness internals are always refused)")
    g.add_argument("--user", metavar="USER",
                   help="run every engine process as USER (a name or a uid, with its primary group), "
                        "e.g. nobody; grade must run as root")
    g.add_argument("--sandbox", choices=["auto", "bwrap", "uid", "none"], default="auto",
                   help="where engine processes run: bwrap (bubblewrap namespaces), uid (a private uid per "
                        "engine process; root only), none, or auto: bwrap if it works here, else uid as "
                        "root, else none with a warning (default: auto; see docs/security.md)")


def _jobs_option(g) -> None:
    g.add_argument("--jobs", type=_at_least_one, default=os.cpu_count() or 1, metavar="N",
                   help="submissions graded in parallel, each in its own engine process "
                        "(1 or more; default: the number of CPUs)")


def _timings_option(g) -> None:
    g.add_argument("--timings", action="extend", nargs="+", default=[], metavar="REPORT",
                   help="an earlier run's JSON reports (e.g. every shard's): the submissions that took longest "
                        "start first, and --shard splits by seconds")


def _shard_option(g) -> None:
    g.add_argument("--shard", type=_shard, metavar="K/N",
                   help="grade only the K-th of N equal parts of the (submission, case) pairs; "
                        "combine the parts' JSON reports with 'grade merge'")


def _plugin_option(g) -> None:
    g.add_argument("-p", "--plugin", action="append", default=[], type=_plugin_spec, metavar="PLUGIN",
                   help="load a plugin: a module name (the current folder's modules included) or a path "
                        "to a .py file (repeatable; also: HARNESS_PLUGINS=mod1,mod2)")


def _feedback_options(g, graph: bool) -> None:
    g.add_argument("--no-blame", dest="blame", action="store_false",
                   help="do not probe failing cases for the op or habit to blame")
    g.add_argument("--fuzz", type=_natural, default=0, metavar="N",
                   help="also grade N random expressions against the reference engine (ids fuzz::<k>)")
    g.add_argument("--seed", type=_int, default=0, metavar="S", help="seed of --fuzz (default: 0)")
    if graph:
        g.add_argument("--graph", choices=["dot"], metavar="dot",
                       help="print the graphs of the failing cases as Graphviz DOT instead of the report")


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


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _natural(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _at_least_one(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _percent(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100, got {text}")
    return value


def _module_name(text: str) -> str:
    if not _MODULE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a module name such as torch or jax.numpy")
    return text


def _format_and_file(text: str) -> tuple[str, str]:
    fmt, sep, path = text.partition(":")
    if not sep or not fmt or not path:
        raise argparse.ArgumentTypeError(f"expected FORMAT:FILE, e.g. junit:results.xml, got {text!r}")
    return fmt, path


def _expression(text: str) -> Expression:
    try:
        return Expression.compile(text)
    except ExpressionError as e:
        raise argparse.ArgumentTypeError(f"bad expression {text!r}: {e}") from None


def _plugin_spec(text: str) -> str:
    if _is_path(text):
        path = Path(text)
        if path.suffix != ".py" or not path.is_file():
            raise argparse.ArgumentTypeError(f"{text}: no such .py file")
        if not _MODULE.fullmatch(path.stem) or "." in path.stem:
            raise argparse.ArgumentTypeError(f"{text}: {path.stem!r} cannot be a module name; rename the "
                                             "file to letters, digits and _")
    elif not _MODULE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is neither a module name nor a path to a .py file")
    return text


def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or os.sep in spec


# --- dispatch -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """Run ``grade``; returns the exit code."""
    try:
        code = _main(argv)
    except BrokenPipeError:
        code = _closed_stdout()
    if code == EXIT_INTERRUPTED:
        # Everything is cleaned up, but the interpreter may still hold the interrupt (one raised inside
        # an import is swallowed there) and would end the process by SIGINT instead of this exit code.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    return code


def _closed_stdout() -> int:
    """Whoever read stdout went away (``grade --list | head``): say so once, exit 2."""
    try:  # the standard way: later writes, the interpreter's last flush included, go nowhere
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (in-process callers)
        pass
    print("grade: error: stdout was closed before everything was written to it", file=sys.stderr)
    return EXIT_USAGE


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line, with ``mode`` set to one of SUBCOMMANDS or ``grade``."""
    parser = build_parser()
    parser.argv = list(argv)  # type: ignore[attr-defined]  # for _SharedNamespace's messages
    args = parser.parse_args(list(argv))
    modes = {m for m, on in (("list", args.list), ("check-cases", args.check_cases),
                             ("build-gradescope", args.build_gradescope is not None),
                             ("schema", args.schema)) if on}
    if args.command:
        _refuse_options_before(parser, args)
        modes.add(args.command)
    if len(modes) > 1:
        parser.error(f"{' and '.join(sorted(modes))} are exclusive modes: choose one")
    args.mode = modes.pop() if modes else "grade"
    if not getattr(args, "check", True) and args.mode != "build-gradescope":
        parser.error("--no-check goes with --build-gradescope (it skips checking the cases before building)")
    args.prog = f"grade {args.command}" if args.command else "grade"
    return args


def _refuse_options_before(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A subcommand takes only its own options, before it or after it."""
    sub = _subparsers(parser)[args.command]
    takes = {a.dest for a in sub._actions}
    for action in parser._actions:
        if (action.option_strings and action.dest not in takes and action.dest != argparse.SUPPRESS
                and getattr(args, action.dest, action.default) != action.default):
            sub.error(f"{action.option_strings[-1]} does not apply to 'grade {args.command}'")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, _SharedNamespace))._name_parser_map


def _main(argv: list[str] | None) -> int:
    from harness.sandbox import reaper

    previous = _on_sigterm(_interrupt)  # first: a SIGTERM during start-up is an interrupt too
    prog = "grade"
    try:
        try:
            args = parse(sys.argv[1:] if argv is None else argv)
        except SystemExit as e:  # --help, or a bad command line (already reported)
            return e.code if isinstance(e.code, int) else EXIT_USAGE
        prog = args.prog
        _use_plugins(args.plugin)
        with ExitStack() as args.resources:  # what must live until the report is written (a batch's spool)
            return _finish(MODES[args.mode](args), args)
    except HarnessError as e:
        if not _interrupted:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return EXIT_USAGE
        print(f"{prog}: interrupted; every engine process was killed", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException as e:
        # An interrupt can land anywhere, e.g. in an import, which may wrap it in another exception.
        if not (_interrupted or isinstance(e, KeyboardInterrupt)):
            raise
        print(f"{prog}: interrupted; every engine process was killed", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        reaper.stop_all()  # nothing a submission started outlives grade
        reaper.resume()
        _on_sigterm(previous)


def _finish(outcome: Outcome, args: argparse.Namespace) -> int:
    """Write what a mode produced (per-submission files, then the report), piece by piece when it comes
    in pieces; the exit code."""
    output, output_dir = args.output, args.output_dir
    for name, text in outcome.per_submission:
        _write(os.path.join(output_dir, name), text, "--output-dir")
    for path, text in outcome.reports:
        _write(path, text, "--report")
    pieces = outcome.chunks if outcome.chunks is not None else (outcome.text,)
    if output and outcome.to_output:
        _write(output, pieces, "--output")
    else:
        for piece in pieces:
            sys.stdout.write(piece)
        sys.stdout.flush()
    fail_under = args.fail_under
    if fail_under is not None and outcome.percents is not None:
        return EXIT_OK if all(p >= fail_under for p in outcome.percents) else EXIT_FAILED
    return EXIT_OK if outcome.passed else EXIT_FAILED


def _write(path: str, text: str | Iterable[str], option: str) -> None:
    try:
        write_atomically(path, text)
    except OSError as e:
        raise HarnessError(f"cannot write {option} {path}: {e.strerror or e}") from None


def write_atomically(path: str, text: str | Iterable[str]) -> None:
    """Write ``text`` (whole, or piece by piece) to ``path`` through a temporary file and a rename."""
    import tempfile

    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for piece in (text,) if isinstance(text, str) else text:
                f.write(piece)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


# --- plugins ------------------------------------------------------------------------------------

def _use_plugins(specs: Sequence[str]) -> None:
    """Load the -p plugins now, and let the engine processes (HARNESS_PLUGINS) load them too.

    A path to a .py file loads as a module named after the file, from its folder; a module name
    found in the current folder loads from there.  Either folder goes first on ``sys.path`` here and
    on PYTHONPATH for the engine processes.
    """
    import importlib

    from harness import plugins

    names = []
    for spec in specs:
        name, folder = _plugin_location(spec)
        if folder is not None:
            _put_first_on_path(folder)
        names.append(name)
    if names:
        os.environ[plugins.PLUGINS_ENV] = ",".join(dict.fromkeys(plugins.extra_plugin_names() + names))
    for spec, name in zip(specs, names):
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise HarnessError(f"cannot import plugin {name!r}: {e}") from None
        except (Exception, SystemExit) as e:  # noqa: BLE001 - the plugin's own code failed, any way
            raise HarnessError(f"cannot import plugin {spec!r}: {_describe(e)}") from None
        if _is_path(spec) and Path(getattr(module, "__file__", "") or "").resolve() != Path(spec).resolve():
            raise HarnessError(f"-p {spec}: the module name {name!r} is taken by another module; rename the file")


def _plugin_location(spec: str) -> tuple[str, str | None]:
    """(module name, folder to import it from, or None when it is importable as it is)."""
    here = Path.cwd().resolve()
    if _is_path(spec):
        path = Path(spec).resolve()
        found = _origin(path.stem)
        if found is not None and found != path:
            raise HarnessError(f"-p {spec}: the module name {path.stem!r} is taken by {found}; rename the file")
        return path.stem, str(path.parent)
    top = spec.split(".")[0]
    found = _origin(top)
    in_here = (here / f"{top}.py").is_file() or (here / top / "__init__.py").is_file()
    if in_here and (found is None or here in found.parents):
        return spec, str(here)
    return spec, None


def _origin(top: str) -> Path | None:
    """Where the top-level module ``top`` would be imported from (a built-in: its name)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    return Path(spec.origin).resolve() if spec.origin and spec.has_location else Path(f"<{spec.origin or top}>")


def _put_first_on_path(folder: str) -> None:
    if folder not in sys.path:
        sys.path.insert(0, folder)
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if folder not in entries:
        os.environ["PYTHONPATH"] = os.pathsep.join([folder, *entries])


def _describe(e: BaseException) -> str:
    """An exception as one line, with the place it was raised."""
    import traceback

    if isinstance(e, SyntaxError):
        return f"{type(e).__name__}: {e}"
    frames = traceback.extract_tb(e.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"


def format_names() -> list[str]:
    """The report formats of the registry: built-in, installed and HARNESS_PLUGINS ones."""
    from harness import plugins

    return list(plugins.reporters(plugins.installed_manager()))


# --- the modes ----------------------------------------------------------------------------------

def _schema(args: argparse.Namespace) -> Outcome:
    from harness.cases.loader import SCHEMA_PATH

    return Outcome(f"{SCHEMA_PATH}\n", to_output=False)


def _list(args: argparse.Namespace) -> Outcome:
    from harness.batch import shards

    cases = _selected_cases(args, fuzzing=bool(args.fuzz))
    specs, written, ids = _graded(args)
    shown = dict(zip(specs, written))
    rates = _per_case(args)
    weights = shards.weights(rates(list(zip(ids, written)))) if rates and args.shard and specs else None
    lines = []
    for spec, part in shards.split(specs or [""], cases, args.shard, weights):
        prefix = f"{shown[spec]}  " if len(specs) > 1 else ""
        lines += [f"{prefix}{c.id}  [{', '.join(c.tags)}]\n" for c in part]
    return Outcome("".join(lines), to_output=False)


def _check_cases(args: argparse.Namespace) -> Outcome:
    from harness.diagnosis import checking
    from harness.sandbox import reaper

    if args.engine:
        raise HarnessError("--check-cases checks the cases with the reference engine; leave out --engine")
    cases = _selected_cases(args)
    limits = _limits(args)
    reaper.become_subreaper()  # a detached process is re-parented to us, not to init
    report = checking.check(cases, limits)
    return Outcome(checking.render(report), passed=report.ok)


def _build_gradescope(args: argparse.Namespace) -> Outcome:
    from harness import plugins
    from harness.batch import gradescope_zip
    from harness.running import reference
    from harness.running.runner import Limits

    if args.engine or args.submissions:
        raise HarnessError("--build-gradescope builds an autograder and grades nothing: "
                           "leave out --engine and --submissions")
    # A bad name, a plugin without source: errors before the cases are checked, which takes seconds.
    gradescope_zip.check_request(args.build_gradescope, plugins.extra_plugin_names())
    cases = _selected_cases(args, fuzzing=bool(args.fuzz))
    limits = Limits(timeout=args.timeout, load_timeout=args.load_timeout, memory_mb=args.memory_mb or None)
    # Check now that 'reference' expectations can be computed, not on the first submission.
    reference.resolve(cases, limits)
    if args.check:  # a wrong expected number would fail every student on that case
        from harness.diagnosis import checking

        report = checking.check(cases, limits)
        if not report.ok:
            bad = list(dict.fromkeys(f.case.id for f in report.disagreements))
            sys.stderr.write(checking.render(report))
            sys.stderr.write(f"grade: not building {args.build_gradescope}: the expected numbers of "
                             f"{len(bad)} case(s) disagree with the reference engine or finite differences: "
                             f"{', '.join(bad)}; fix them (see above), or pass --no-check to build anyway\n")
            return Outcome("", passed=False, to_output=False)

    options = ["--timeout", f"{args.timeout:g}", "--load-timeout", f"{args.load_timeout:g}",
               "--memory-mb", str(args.memory_mb), "--max-output-mb", str(args.max_output_mb)]
    options += [o for k in args.keyword for o in ("-k", k.text)] + [o for t in args.tag for o in ("--tag", t)]
    options += [o for t in args.exclude_tag for o in ("--exclude-tag", t)]
    options += [o for m in args.forbid_import for o in ("--forbid-import", m)]
    options += (["--submission-timeout", f"{args.submission_timeout:g}"] if args.submission_timeout is not None
                else []) + (["--max-restarts", str(args.max_restarts)] if args.max_restarts != 50 else [])
    options += (["--fuzz", str(args.fuzz), "--seed", str(args.seed)] if args.fuzz else []) + (
        [] if args.blame else ["--no-blame"])
    course_plugins = plugins.extra_plugin_names()  # -p and HARNESS_PLUGINS
    options += [o for name in course_plugins for o in ("-p", name)]
    options += ["--user", args.user] if args.user is not None else []
    options += [o for name in args.engine_names for o in ("--engine-name", name)]
    options += ["--sandbox", args.sandbox] if args.sandbox != "auto" else []
    options += ["--notebook-mode", args.notebook_mode] if args.notebook_mode != "defs" else []
    names = gradescope_zip.build(args.build_gradescope, args.cases, options, course_plugins)
    hidden = sum(c.visibility != "visible" for c in cases)
    return Outcome(f"wrote {args.build_gradescope}: {len(cases)} cases ({hidden} hidden or after the due date) "
                   f"in {sum(n.startswith('cases/') for n in names)} case file(s); upload it as the autograder "
                   "of a Gradescope programming assignment\n", to_output=False)


def _merge(args: argparse.Namespace) -> Outcome:
    from harness import plugins
    from harness.batch import shards

    kinds = {shards.kind(p) for p in args.reports}
    if kinds == {"csv"}:
        if (args.format or "csv") != "csv":
            raise HarnessError(f"CSV gradebooks merge into --format csv only, not {args.format!r}; for "
                               "other formats, merge the shards' JSON reports (grade --format json)")
        if args.output_dir or args.report:
            option = "--output-dir" if args.output_dir else "--report"
            raise HarnessError(f"{option} needs the shards' JSON reports; CSV gradebooks merge into one "
                               "CSV gradebook only")
        text, rows = shards.merge_csv(args.reports)
        return Outcome(text, passed=all(r.all_passed for r in rows), percents=[r.percent for r in rows])
    if len(kinds) > 1:
        raise HarnessError("the reports mix JSON and CSV; merge the JSON reports of every shard "
                           "(any --format can be written from them)")
    fmt = args.format or "json"
    render = _reporters(plugins.installed_manager(), fmt)[fmt]
    _prepare_output(args)
    return _reported(shards.merge(args.reports), render, fmt, args)


def _grade(args: argparse.Namespace) -> Outcome:
    from harness.running.runner import prestart

    limits = _limits(args)
    early: dict = {}
    args._per_case = _per_case(args)
    # The first engine processes start loading now, while the cases are parsed.
    try:
        specs, written, ids = _graded(args)
    except HarnessError:
        specs = []  # reported below, in its turn
    # a shard may grade only some of them; job processes start their own (none is forked with them)
    if specs and not args.shard and not _in_job_processes(args.jobs, len(specs)):
        if args._per_case:  # every submission grades the same cases: the slowest per case start first
            from harness.running.grading import longest_first

            specs = [specs[i] for i in longest_first(args._per_case(list(zip(ids, written))))]
        early = prestart(specs, limits, args.jobs)
    try:
        return _grade_started(args, limits, early)
    finally:
        for worker in early.values():
            worker.kill()
        _remove_workdir(args)


def _in_job_processes(jobs: int, items: int) -> bool:
    """Whether a batch goes to job processes (checked without importing them for one submission)."""
    if jobs <= 1 or items <= 1:
        return False
    from harness.running import jobs as job_processes

    return job_processes.enabled(jobs, items)


def _grade_started(args: argparse.Namespace, limits, early: dict) -> Outcome:
    from harness import plugins
    from harness.batch import shards
    from harness.reporting.progress import for_batch
    from harness.running.grading import Feedback, grade_plan
    from harness.sandbox import reaper

    if args.graph and args.format not in (None, "text"):
        raise HarnessError("--graph dot prints DOT instead of the report; leave out --format")
    fmt = "dot" if args.graph else args.format or "text"
    render = _reporters(plugins.installed_manager(), fmt)[fmt]
    for other, _ in args.report:  # before any work
        _reporters(plugins.installed_manager(), other, "--report")
    cases = _selected_cases(args, fuzzing=bool(args.fuzz))
    reaper.become_subreaper()  # a detached process is re-parented to us, not to init
    specs, written, ids = _graded(args)
    if not written:
        if args.submissions:
            raise HarnessError(f"no submissions in {', '.join(args.submissions)}: expected child "
                               "folders, .py, .ipynb or .zip files, or an LMS download")
        raise HarnessError("no engine to grade: give --engine SPEC (a .py file, a module or 'reference') "
                           "or --submissions DIR")
    _check_unique(ids)
    _prepare_output(args)
    rates = getattr(args, "_per_case", None)
    weights = shards.weights(rates(list(zip(ids, written)))) if rates and args.shard else None
    plan = shards.split(list(zip(specs, ids)), cases, args.shard, weights)
    feedback = Feedback(blame=args.blame, fuzz=args.fuzz, seed=args.seed)
    source = dict(zip(specs, written))
    per_case = rates([(sub, source[spec]) for (spec, sub), _ in plan]) if rates else None
    _freeze_startup()
    run = grade_plan(plan, limits, jobs=args.jobs, progress=for_batch(len(plan), sys.stderr), feedback=feedback,
                     started=early, fuzz_here=lambda i: shards.ends_submission(plan[i][1], cases),
                     engines=tuple(args.engine_names), per_case=per_case, spool=_spool(args, source, fmt))
    reaper.sweep()  # the report is written last, when no process of a submission is left
    if args.shard:
        from harness.cases.fingerprint import fingerprint

        run.shard = (args.shard.index, args.shard.count)
        run.shard_weights = shards.weights_fingerprint(weights) if weights else ""
        run.cases_fingerprint = fingerprint(cases)  # every shard: the whole selection, not its part
    return _reported(run, render, fmt, args)


def _freeze_startup() -> None:
    """What start-up loaded (modules, the parsed cases) lives as long as the run, so the garbage collector
    stops walking it; and it runs after 10,000 new objects instead of 700. Its share of the grader's CPU
    was a tenth with blame (127 -> 56 ms for one buggy engine) and a sixth with --fuzz."""
    import gc

    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


MODES: dict[str, Callable[[argparse.Namespace], Outcome]] = {
    "grade": _grade, "merge": _merge, "check-cases": _check_cases, "list": _list,
    "build-gradescope": _build_gradescope, "schema": _schema,
}


# --- helpers of the modes -----------------------------------------------------------------------

def _per_case(args: argparse.Namespace) -> Callable[[list], list[float]] | None:
    """With --timings: seconds per case of each (submission id, source as written), from the reports."""
    if not args.timings:
        return None
    from harness.batch import timings

    return timings.read(args.timings).rates


def _selected_cases(args: argparse.Namespace, fuzzing: bool = False) -> list:
    """The cases of --cases (or the built-in suites) that -k, --tag and --exclude-tag select."""
    from harness import plugins
    from harness.cases.expr import CALL_OPS
    from harness.cases.loader import load_suites
    from harness.cases.select import select

    call_ops = {**CALL_OPS, **{name: spec.arity for name, spec in plugins.ops(plugins.installed_manager()).items()}}
    suites = load_suites(args.cases, call_ops)
    cases = select([c for s in suites for c in s.cases], args.keyword, args.tag, args.exclude_tag)
    if not cases and not fuzzing:
        raise HarnessError("no case matches the -k/--tag/--exclude-tag filters")
    return cases


def _prepare_output(args: argparse.Namespace) -> None:
    """Refuse an --output or --output-dir that cannot be written, before any work."""
    if args.output and not Path(args.output).resolve().parent.is_dir():
        raise HarnessError(f"--output {args.output}: the folder {Path(args.output).parent} does not exist")
    for fmt, path in args.report:
        if not Path(path).resolve().parent.is_dir():
            raise HarnessError(f"--report {fmt}:{path}: the folder {Path(path).parent} does not exist")
    if args.output_dir:
        try:
            Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HarnessError(f"--output-dir {args.output_dir}: cannot make the folder: "
                               f"{e.strerror or e}") from None


def _reported(run, render, fmt: str, args: argparse.Namespace) -> Outcome:
    """The outcome of a graded run: its report, and one per submission with --output-dir, each as its
    audience may see it (harness.reporting.audience)."""
    from harness import plugins
    from harness.model import ReportContext
    from harness.reporting.audience import REVEALS_AFTER_DUE_DATE, audience_for, redact

    def shown_in(name: str):
        return redact(run, audience_for(name, getattr(args, "audience", None)),
                      reveals_after_due_date=name in REVEALS_AFTER_DUE_DATE)

    to_tty = not args.output and sys.stdout.isatty()
    shown = shown_in(fmt)
    report = pieces(render, shown, ReportContext(color=to_tty and "NO_COLOR" not in os.environ))
    per_submission = per_submission_reports(shown, render, fmt) if args.output_dir else []
    reports = [(path, pieces(_reporters(plugins.installed_manager(), name, "--report")[name], shown_in(name),
                             ReportContext())) for name, path in args.report]
    return Outcome("", chunks=report, passed=run.all_passed, percents=[e.percent for e in run.summaries()],
                   per_submission=per_submission, reports=reports)


def pieces(render, run, context) -> Iterator[str]:
    """The report of ``run``, rendered only when it is read: piece by piece when the format streams
    (``harness.reporting.common.Streamed``), else whole."""
    chunks = getattr(render, "chunks", None)
    if callable(chunks):
        yield from chunks(run, context)
    else:
        yield render(run, context)


def per_submission_reports(run, render, fmt: str) -> Iterator[tuple[str, Iterator[str]]]:
    """(file name, report) for each submission of ``run``, in order, each rendered when it is read (a
    batch's engines are read a submission at a time); file names are unique."""
    from harness.model import ReportContext

    groups: dict[tuple[str, str], list[int]] = {}
    for k, e in enumerate(run.summaries()):  # a submission may register several engines
        groups.setdefault((e.submission or e.engine, e.source), []).append(k)
    names = unique_file_names([sub for sub, _ in groups], EXTENSIONS.get(fmt, f".{fmt}"))
    for name, indices in zip(names, groups.values()):
        yield name, pieces(render, dataclasses.replace(run, engines=[run.engines[k] for k in indices]),
                           ReportContext())


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def unique_file_names(ids: Sequence[str], extension: str) -> list[str]:
    """A safe file name per submission id: letters, digits, ``_ . -``; no leading dot; unique."""
    names: list[str] = []
    taken: set[str] = set()
    for i in ids:
        stem = _UNSAFE.sub("_", i).lstrip(".")[:100] or "submission"
        name, k = f"{stem}{extension}", 1
        while name.lower() in taken:
            k += 1
            name = f"{stem}-{k}{extension}"
        taken.add(name.lower())
        names.append(name)
    return names


def _limits(args: argparse.Namespace):
    from harness.engine_side.guard import DEFAULT_FORBIDDEN
    from harness.running.runner import Limits

    user = None
    if args.user is not None:
        from harness.sandbox.privileges import resolve

        user = resolve(args.user)
    from harness.sandbox.modes import choose

    sandbox = choose(args.sandbox)  # only where engines run here: the autograder zip chooses where it runs
    if sandbox.warning:
        print(f"grade: warning: {sandbox.warning}", file=sys.stderr)
    return Limits(timeout=args.timeout, load_timeout=args.load_timeout, memory_mb=args.memory_mb or None,
                  output_mb=args.max_output_mb or None,
                  forbidden_imports=tuple(dict.fromkeys(DEFAULT_FORBIDDEN + tuple(args.forbid_import))),
                  user=user, sandbox=sandbox.mode, sandbox_warning=sandbox.warning,
                  notebook_mode=getattr(args, "notebook_mode", "defs"),
                  submission_timeout=getattr(args, "submission_timeout", None),
                  max_restarts=getattr(args, "max_restarts", 50))


def _graded(args: argparse.Namespace) -> tuple[list, list, list]:
    """The submissions to grade: (specs, as written, submission ids); --submissions is expanded once."""
    if getattr(args, "_expanded", None) is None:
        args._expanded = [s for target in args.submissions for s in _expand(target, args)]
    written = list(args.engine) + [s.source for s in args._expanded]
    ids: list[Any] = [None] * len(args.engine) + [s.id for s in args._expanded]
    specs = [_absolute(s) for s in args.engine] + [os.path.abspath(s.path) for s in args._expanded]
    return specs, written, ids


def _expand(target: str, args: argparse.Namespace) -> list:
    """The submissions of one --submissions folder or zip (an LMS download's grouped per student)."""
    import atexit
    import tempfile

    from harness import intake
    from harness.intake import lms

    if getattr(args, "_workdir", None) is None:
        args._workdir = tempfile.mkdtemp(prefix="grade-submissions-")
        os.chmod(args._workdir, 0o711)  # an engine process that dropped root (--user) reads its files
        atexit.register(_remove_workdir, args)
    found = lms.expand(target, Path(args._workdir))
    for s in found:
        if s.problem:
            intake.PROBLEMS[os.path.abspath(s.path)] = s.problem
    return found


def _remove_workdir(args: argparse.Namespace) -> None:
    """Remove what --submissions unpacked (LMS downloads, students' archives), once."""
    workdir = getattr(args, "_workdir", None)
    if workdir:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
        args._workdir = ""


def _absolute(spec: str) -> str:
    """A spec with its path made absolute (DIR::module: the folder), as the engine processes need it."""
    folder, sep, target = spec.partition("::")
    return os.path.abspath(folder) + sep + target if os.path.exists(folder) else spec


def _reporters(pm, name: str, option: str = "--format") -> dict:
    """Every report format, after checking that ``name`` is one (given to ``option``)."""
    from harness import plugins

    reporters = plugins.reporters(pm)
    if name not in reporters:
        from harness.errors import did_you_mean

        what = option if option == "--format" else f"{option} format"
        raise HarnessError(f"unknown {what} {name!r}{did_you_mean(name, reporters)}; "
                           f"choose from {', '.join(sorted(reporters))}")
    return reporters


def _check_unique(ids: list) -> None:
    seen: set = set()
    for i in ids:
        if i is not None and i in seen:
            raise HarnessError(f"two submissions are named {i!r} (a folder and a .py file?); "
                               "rename one so that every submission id is unique")
        seen.add(i)


def _spool(args: argparse.Namespace, original: dict, fmt: str = ""):
    """Where a run's results wait for the report, one submission at a time (``harness.running.spool``);
    each engine's source is stored as the user wrote it.  Freed once the report is written.

    When the report (``fmt``) or a ``--report`` is the built-in JSON one, for the instructor, each engine's
    entry is written where it is graded (in a batch's job process), so that writing the report after the
    batch copies it instead of encoding every case then, in ``grade`` alone."""
    from harness import plugins
    from harness.reporting import json as json_report
    from harness.reporting.audience import Audience, audience_for
    from harness.running.spool import Spool

    def restore(e) -> None:
        e.source = original.get(e.source, e.source)

    wanted = fmt == "json" or any(name == "json" for name, _ in args.report)
    piece = (json_report.engine_piece if wanted and audience_for("json", getattr(args, "audience", None))
             == Audience.INSTRUCTOR and plugins.reporters(plugins.installed_manager()).get("json")
             is json_report.render else None)
    spool = Spool(prepare=restore, piece=piece, kind=json_report.KIND)
    resources = getattr(args, "resources", None)
    if resources is not None:  # else: at exit
        resources.callback(spool.close)
    return spool


if __name__ == "__main__":
    sys.exit(main())
