"""Load YAML case files into validated Case records (case file -> parsed case).

Files are read with PyYAML's safe loader only, with YAML 1.2 core-schema scalars
(``harness.cases.yaml12``: ``1e-6`` is a float, ``010`` is 10, ``1:30`` is text).
Every problem raises CaseFileError naming the file, the line, the case and the fix.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import yaml

from harness.cases.expr import CALL_OPS, Expr, parse
from harness.cases.yaml12 import FastLoader, Loader, yaml11_hint
from harness.errors import CaseFileError, ExprError, did_you_mean

#: The JSON Schema of case files: the single source of their field names, enums and defaults.
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "case-file.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
_DEFS = SCHEMA["$defs"]

SUITE_FIELDS = tuple(SCHEMA["properties"])
CASE_FIELDS = tuple(_DEFS["caseFields"]["properties"])
EXPECT_FIELDS = tuple(_DEFS["expect"]["properties"])
TOLERANCE_FIELDS = tuple(_DEFS["tolerance"]["properties"])
REPEAT_FIELDS = tuple(_DEFS["repeat"]["properties"])
VISIBILITIES = tuple(_DEFS["caseFields"]["properties"]["visibility"]["enum"])
REFERENCE = _DEFS["reference"]["const"]  # an expectation taken from the reference engine
DEFAULTS = {k: v["default"] for k, v in _DEFS["caseFields"]["properties"].items() if "default" in v}

#: Largest document a case file may expand to (YAML aliases included).
MAX_YAML_NODES = 1_000_000

_CASE_NAME = re.compile(_DEFS["name"]["pattern"])
_IDENT = re.compile(_DEFS["identifier"]["pattern"])


@dataclass(frozen=True)
class Tolerance:
    """Pass when |got - want| <= abs + rel * |want|."""

    rel: float = _DEFS["tolerance"]["properties"]["rel"]["default"]
    abs: float = _DEFS["tolerance"]["properties"]["abs"]["default"]


@dataclass(frozen=True)
class Assign:
    """A step ``name: expr``."""

    name: str
    expr: Expr
    line: int | None = None


@dataclass(frozen=True)
class Repeat:
    """A step that runs a block of steps ``count`` times."""

    count: int
    steps: tuple
    line: int | None = None


@dataclass(frozen=True)
class Expect:
    """What a case expects; numbers, or REFERENCE to ask the reference engine."""

    value: float | str | None = None
    grad: dict | str | None = None
    args: tuple | None = None
    local_derivatives: tuple | None = None
    raises: bool = False


@dataclass(frozen=True)
class Case:
    """One parsed, validated case."""

    suite: str
    name: str
    inputs: dict
    steps: tuple
    output: Expr
    expect: Expect
    backward: int = 1
    description: str = ""
    tags: tuple = ()
    points: float = 1.0
    visibility: str = "visible"
    timeout: float | None = None
    tolerance: Tolerance = field(default_factory=Tolerance)
    path: str = ""
    line: int | None = None

    @property
    def id(self) -> str:
        """``<suite>::<name>``."""
        return f"{self.suite}::{self.name}"

    @property
    def bound_names(self) -> tuple:
        """Inputs then step names, in the order they are first bound."""
        names = list(self.inputs)
        for step in walk_assigns(self.steps):
            if step.name not in names:
                names.append(step.name)
        return tuple(names)


@dataclass(frozen=True)
class Suite:
    """A case file: its suite name and cases."""

    name: str
    path: str
    cases: tuple
    description: str = ""


def builtin_cases_dir() -> Path:
    """Where the built-in suites live: inside the wheel, or the source tree's cases/."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_cases"
    return packaged if packaged.is_dir() else here.parent / "cases"


def case_files(paths) -> list[Path]:
    """Expand files and folders (searched recursively) into sorted YAML files."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise CaseFileError(p, "no such file or folder; --cases takes a YAML file or a folder of them")
    return files


def load_suites(paths=None, call_ops: dict | None = None) -> list[Suite]:
    """Load every suite under ``paths`` (default: the built-in suites)."""
    files = case_files(paths if paths else [builtin_cases_dir()])
    suites = [load_suite(f, call_ops) for f in files]
    seen: dict[str, str] = {}
    for s in suites:
        if s.name in seen:
            raise CaseFileError(s.path, f"suite name {s.name!r} is also used by {seen[s.name]}; "
                                        "set a different 'suite:'")
        seen[s.name] = s.path
    return suites


#: Suites parsed in this process, by file, contents and call ops: parsing is a pure function of them, and a
#: process that loads the same file again (the pytest plugin, a long-lived process that forks grade runs)
#: gets the same immutable Suite without parsing it again.
_PARSED: dict[tuple, Suite] = {}
_PARSED_MAX = 64


def load_suite(path, call_ops: dict | None = None) -> Suite:
    """Parse one case file into a Suite, or raise CaseFileError."""
    path = Path(path)
    raw = _read_bytes(path)
    ops = call_ops or CALL_OPS
    key = (str(path), hashlib.sha256(raw).digest(), tuple(sorted(ops.items())))
    suite = _PARSED.get(key)
    if suite is None:
        data, root = _read_yaml(path, raw)
        suite = _SuiteParser(path, root, ops).suite(data)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = suite
    return suite


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CaseFileError(path, f"cannot read the file: {e.strerror or e}") from None


def _read_yaml(path: Path, raw: bytes):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise CaseFileError(path, f"not valid UTF-8 (byte {e.start}); save the file as UTF-8",
                            line=line) from None
    if not text.strip():
        raise CaseFileError(path, "the file is empty; a case file needs a 'cases:' list", line=1)
    if FastLoader.__bases__ != (yaml.SafeLoader,):  # libyaml's parser reads a file about ten times faster
        try:
            return _compose(path, text, FastLoader)
        except CaseFileError:
            pass  # re-read below, so every message comes from one parser
    return _compose(path, text, Loader)


def _compose(path: Path, text: str, loader_class):
    loader = loader_class(text)
    root = None
    try:
        root = loader.get_single_node()
        if root is None:
            raise CaseFileError(path, "the file holds no YAML document; it needs a 'cases:' list", line=1)
        if "&" in text or len(text) > MAX_YAML_NODES // 2:  # no anchor, no alias: a small file is small
            _check_size(root, path)
        data = loader.construct_document(root)
    except yaml.constructor.ConstructorError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        tag = re.search(r"tag '([^']*)'", str(e.problem))
        what = f"the YAML tag {tag.group(1)!r}" if tag else "a YAML tag"
        raise CaseFileError(path, f"{what} is not allowed: case files hold plain data "
                                  "(numbers, strings, lists, mappings)", line=line,
                            case=_case_at(text, root, line)) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        started = e.context_mark.line + 1 if e.context_mark else None
        context = f"{e.context} (line {started})" if e.context and started and started != line else e.context
        problem = " ".join(p for p in (context, e.problem) if p)
        raise CaseFileError(path, f"YAML syntax error: {problem}", line=line,
                            case=_case_at(text, None, line)) from None
    except yaml.YAMLError as e:
        raise CaseFileError(path, f"YAML error: {e}") from None
    except (ValueError, OverflowError, RecursionError) as e:
        raise CaseFileError(path, f"unreadable YAML value: {e}") from None
    finally:
        loader.dispose()
    return data, root


_CASE_START = re.compile(r"\s*-\s+\{?\s*name:\s*['\"]?([A-Za-z0-9_-]+)")


def _case_at(text: str, root, line: int | None) -> str | None:
    """The name of the case holding ``line``: from the YAML nodes, or (unparsable YAML) from the text."""
    if line is None:
        return None
    if isinstance(root, yaml.MappingNode):
        cases = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "cases"), None)
        if isinstance(cases, yaml.SequenceNode):
            holding = [c for c in cases.value if c.start_mark.line < line]
            if holding and isinstance(holding[-1], yaml.MappingNode):
                for k, v in holding[-1].value:
                    if isinstance(k, yaml.ScalarNode) and k.value == "name" and isinstance(v, yaml.ScalarNode):
                        return v.value
        return None
    lines = text.splitlines()[:line]
    if not any(re.match(r"cases\s*:", ln) for ln in lines):
        return None
    for ln in reversed(lines):
        if re.match(r"cases\s*:", ln):
            return None
        m = _CASE_START.match(ln)
        if m:
            return m.group(1)
    return None


def _check_size(root, path: Path) -> None:
    """Reject documents whose aliases expand past MAX_YAML_NODES (alias bombs)."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        kids = _yaml_children(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            if size[key] > MAX_YAML_NODES:
                raise CaseFileError(path, f"the document expands to more than {MAX_YAML_NODES:,} nodes "
                                          "through YAML aliases; remove the nested '*' references",
                                    line=node.start_mark.line + 1)
            continue
        if key in size:
            continue
        if key in on_path:
            raise CaseFileError(path, "a YAML alias refers to itself", line=node.start_mark.line + 1)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)


def _yaml_children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def walk_assigns(steps):
    """Every assignment in ``steps``, those inside ``repeat`` blocks included, in order."""
    for step in steps:
        if isinstance(step, Repeat):
            yield from walk_assigns(step.steps)
        else:
            yield step


def _is_number(x) -> bool:
    return type(x) in (int, float)


def _yaml11(x) -> str:
    """A hint for text that YAML 1.1 (but not YAML 1.2) reads as a number."""
    why = yaml11_hint(x)
    return f" ({why})" if why else ""


class _SuiteParser:
    """Validates one file's data, using its YAML nodes for line numbers."""

    def __init__(self, path: Path, root, call_ops: dict):
        self.path, self.root, self.call_ops = path, root, call_ops
        self.case_name: str | None = None

    def line(self, *keys) -> int | None:
        """The line of the field at ``keys`` (its key's line for a mapping field), or the nearest found."""
        node = self.root
        line = node.start_mark.line + 1
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                        line, node = k.start_mark.line + 1, v
                        break
                else:
                    return line
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    def fail(self, problem: str, *keys) -> NoReturn:
        raise CaseFileError(self.path, problem, line=self.line(*keys), case=self.case_name)

    def check_fields(self, mapping: dict, allowed, what: str, *keys) -> None:
        for key in mapping:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed) or f"; allowed: {', '.join(allowed)}"
                self.fail(f"unknown field {key!r} in {what}{hint}", *keys, key)

    def suite(self, data) -> Suite:
        if not isinstance(data, dict):
            self.fail("the top level must be a mapping with a 'cases:' list")
        self.check_fields(data, SUITE_FIELDS, "the suite")
        name = data.get("suite", self.path.stem)
        if not isinstance(name, str) or not _CASE_NAME.fullmatch(name):
            self.fail(f"'suite' must be a name made of letters, digits, '_' and '-', got {name!r}", "suite")
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, dict):
            self.fail("'defaults' must be a mapping of case fields", "defaults")
        if "name" in defaults:
            self.fail("'defaults' cannot set 'name': every case needs its own", "defaults", "name")
        self.check_fields(defaults, CASE_FIELDS, "'defaults'", "defaults")
        cases = data.get("cases")
        if cases is None:
            self.fail("missing 'cases:'; a case file needs a list of cases")
        if not isinstance(cases, list) or not cases:
            self.fail("'cases' must be a non-empty list of cases", "cases")
        parsed: list[Case] = []
        seen: dict[str, int | None] = {}
        for i, raw in enumerate(cases):
            case = self.case(name, raw, defaults, i)
            if case.name in seen:
                self.fail(f"duplicate case name {case.name!r} (first on line {seen[case.name]}); "
                          "names must be unique in a suite", "cases", i, "name")
            seen[case.name] = case.line
            parsed.append(case)
        self.case_name = None
        return Suite(name, str(self.path), tuple(parsed), str(data.get("description") or "").strip())

    def case(self, suite: str, raw, defaults: dict, i: int) -> Case:
        self.case_name = None
        at = ("cases", i)
        if not isinstance(raw, dict):
            self.fail(f"case #{i + 1} must be a mapping with 'name', 'inputs', 'output' and 'expect'", *at)
        name = raw.get("name")
        if not isinstance(name, str) or not _CASE_NAME.fullmatch(name):
            self.fail(f"case #{i + 1} needs a 'name' of letters, digits, '_' and '-', got {name!r}", *at)
        self.case_name = name
        self.check_fields(raw, CASE_FIELDS, "the case", *at)
        merged = {**defaults, **raw}
        merged["tags"] = self.tags(defaults.get("tags"), ("defaults",)) + tuple(
            t for t in self.tags(raw.get("tags"), at) if t not in self.tags(defaults.get("tags"), ("defaults",))
        )

        def key_at(key):  # where a merged field was written
            return at + (key,) if key in raw else ("defaults", key)

        for required in ("output", "expect"):
            if required not in merged:
                self.fail(f"missing '{required}'", *at)
        inputs = self.inputs(merged.get("inputs", {}), key_at("inputs"))
        bound = set(inputs)
        steps = self.steps(merged.get("steps") or [], bound, key_at("steps"))
        output = self.expr(merged["output"], bound, "output", key_at("output"))
        backward = merged.get("backward", DEFAULTS["backward"])
        if type(backward) is not int or backward < 0:
            self.fail(f"'backward' must be a whole number >= 0, got {backward!r}{_yaml11(backward)}",
                      *key_at("backward"))
        expect = self.expect(merged["expect"], bound, backward, key_at("expect"))
        return Case(
            suite=suite, name=name, inputs=inputs, steps=steps, output=output, expect=expect,
            backward=backward, description=str(merged.get("description") or "").strip(), tags=merged["tags"],
            points=self.number(merged.get("points", DEFAULTS["points"]), "points", key_at("points"), minimum=0),
            visibility=self.visibility(merged.get("visibility", DEFAULTS["visibility"]), key_at("visibility")),
            timeout=self.timeout(merged.get("timeout"), key_at("timeout")),
            tolerance=self.tolerance(merged.get("tolerance"), key_at("tolerance")),
            path=str(self.path), line=self.line(*at),
        )

    def tags(self, tags, at) -> tuple:
        if tags is None:
            return ()
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            self.fail("'tags' must be a list of words, e.g. [backprop, reuse]", *at, "tags")
        return tuple(tags)

    def number(self, x, what: str, at, minimum=None, positive=False, finite=True) -> float:
        if not _is_number(x) or (finite and not math.isfinite(self.expected(x, what, at))):
            self.fail(f"'{what}' must be a {'finite ' if finite else ''}number, got {x!r}{_yaml11(x)}", *at)
        if minimum is not None and x < minimum:
            self.fail(f"'{what}' must be >= {minimum}, got {x!r}", *at)
        if positive and x <= 0:
            self.fail(f"'{what}' must be > 0, got {x!r}", *at)
        return x

    def expected(self, x, what: str, at) -> float:
        """An expected number: .nan, .inf and -.inf are allowed."""
        if not _is_number(x):
            self.fail(f"'{what}' must be a number (or .nan, .inf, -.inf), got {x!r}{_yaml11(x)}", *at)
        try:
            return float(x)
        except OverflowError:
            self.fail(f"'{what}' is a {len(str(x))}-digit number, too large for a float; "
                      "write .inf for infinity", *at)

    def visibility(self, v, at) -> str:
        if v not in VISIBILITIES:
            self.fail(f"'visibility' must be one of {', '.join(VISIBILITIES)}, got {v!r}"
                      f"{did_you_mean(str(v), VISIBILITIES)}", *at)
        return v

    def timeout(self, t, at):
        if t is None:
            return None
        return float(self.number(t, "timeout", at, positive=True))

    def tolerance(self, tol, at) -> Tolerance:
        if tol is None:
            return Tolerance()
        if not isinstance(tol, dict):
            self.fail("'tolerance' must be a mapping like {rel: 1.0e-6, abs: 1.0e-9}", *at)
        self.check_fields(tol, TOLERANCE_FIELDS, "'tolerance'", *at)
        values = {k: float(self.number(v, f"tolerance.{k}", at + (k,), minimum=0)) for k, v in tol.items()}
        return Tolerance(**values)

    def name(self, name, what: str, at) -> str:
        if not isinstance(name, str) or not _IDENT.fullmatch(name) or keyword.iskeyword(name):
            self.fail(f"{what} {name!r} is not a valid name; use letters, digits and '_'", *at)
        if name in self.call_ops:
            self.fail(f"{what} {name!r} is the name of an op; pick another name", *at)
        return name

    def inputs(self, inputs, at) -> dict:
        if not isinstance(inputs, dict):
            self.fail("'inputs' must be a mapping of name: number, e.g. {a: 1, b: 2}", *at)
        for k, v in inputs.items():
            self.name(k, "input", at + (k,))
            if not _is_number(v):
                self.fail(f"input {k!r} must be a number, got {v!r}{_yaml11(v)}", *at, k)
        return dict(inputs)

    def expr(self, source, bound: set, what: str, at) -> Expr:
        if _is_number(source):
            source = repr(source)
        if not isinstance(source, str):
            self.fail(f"{what} must be an expression such as 'a + b * c', got {source!r}", *at)
        try:
            expr = parse(source, self.call_ops)
        except ExprError as e:
            col = "" if e.col is None else f" (column {e.col + 1})"
            self.fail(f"in {what} {source!r}: {e.problem}{col}", *at)
        for n in sorted(expr.names - bound):
            if not bound:
                self.fail(f"undefined name {n!r} in {what} {source!r}: the case has no 'inputs'; "
                          f"add them, e.g. inputs: {{{n}: 1.0}}", *at)
            known = ", ".join(sorted(bound))
            self.fail(f"undefined name {n!r} in {what} {source!r}{did_you_mean(n, bound)}; "
                      f"defined so far: {known}", *at)
        return expr

    def steps(self, steps, bound: set, at) -> tuple:
        if not isinstance(steps, list):
            self.fail("'steps' must be a list like [{I: a + b}, {H: a * I}]", *at)
        out: list[Assign | Repeat] = []
        for j, step in enumerate(steps):
            here = at + (j,)
            if isinstance(step, dict) and "repeat" in step:
                self.check_fields(step, REPEAT_FIELDS, "a repeat step", *here)
                count = step["repeat"]
                if type(count) is not int or count < 0:
                    self.fail(f"'repeat' must be a whole number >= 0, got {count!r}{_yaml11(count)}",
                              *here, "repeat")
                if not step.get("steps"):
                    self.fail("a 'repeat' step needs a non-empty 'steps' list", *here)
                body = self.steps(step["steps"], bound, here + ("steps",))
                out.append(Repeat(count, body, self.line(*here)))
                continue
            if not isinstance(step, dict) or len(step) != 1:
                self.fail("each step must be one 'name: expression' pair, or 'repeat: N' with 'steps'", *here)
            (name, source), = step.items()
            name = self.name(name, "step name", here)
            expr = self.expr(source, bound, f"step {name!r}", here + (name,))
            bound.add(name)
            out.append(Assign(name, expr, self.line(*here)))
        return tuple(out)

    def expect(self, expect, bound: set, backward: int, at) -> Expect:
        if not isinstance(expect, dict) or not expect:
            self.fail("'expect' must be a mapping with 'value', 'grad', 'args', "
                      "'local_derivatives' or 'raises'", *at)
        self.check_fields(expect, EXPECT_FIELDS, "'expect'", *at)
        value = expect.get("value")
        if value is not None and value != REFERENCE:
            value = self.expected(value, "expect.value", at + ("value",))
        grad = expect.get("grad")
        if grad is not None:
            if grad != REFERENCE:
                if not isinstance(grad, dict):
                    self.fail("'expect.grad' must be a mapping of name: number, or 'reference'", *at, "grad")
                for name in grad:
                    if name not in bound:
                        self.fail(f"expect.grad names {name!r}, which is not an input or step"
                                  f"{did_you_mean(str(name), bound)}; known: {', '.join(sorted(bound))}",
                                  *at, "grad", name)
                grad = {name: self.expected(g, f"expect.grad.{name}", at + ("grad", name))
                        for name, g in grad.items()}
            if backward == 0:
                self.fail("'expect.grad' needs 'backward' >= 1 (it is 0)", *at, "grad")
        structure = {}
        for key in ("args", "local_derivatives"):
            if key in expect:
                seq = expect[key]
                if not isinstance(seq, list) or not all(_is_number(x) for x in seq):
                    odd = next((x for x in seq if not _is_number(x)), None) if isinstance(seq, list) else None
                    self.fail(f"'expect.{key}' must be a list of numbers{_yaml11(odd)}", *at, key)
                structure[key] = tuple(self.expected(x, f"expect.{key}[{i}]", at + (key, i))
                                       for i, x in enumerate(seq))
        raises = expect.get("raises", False)
        if type(raises) is not bool:
            self.fail(f"'expect.raises' must be true or false, got {raises!r}", *at, "raises")
        if raises:
            others = [k for k in EXPECT_FIELDS if k != "raises" and k in expect]
            if others:
                self.fail(f"'expect.raises: true' means the engine must raise, so it cannot also expect "
                          f"{', '.join(others)}; split it into two cases", *at, others[0])
        return Expect(value=value, grad=grad, raises=raises, **structure)
