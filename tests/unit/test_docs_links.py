"""The docs hold together: every relative link and #anchor resolves, and the README stays an entry page."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")),
        "benchmarks/README.md"]
MANUAL = ["cli.md", "cases.md", "plugins.md", "ci-and-gradescope.md", "feedback.md", "security.md"]
README_MAX_LINES = 350

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=[\"']([^\"']+)[\"']", re.I)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return kept.replace(" ", "-")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m and (fence is None or m[1] == fence):
            fence = m[1] if fence is None else None
            continue
        if fence is None:
            out.append((number, line))
    return out


def anchors(path: Path) -> set[str]:
    """Every anchor a markdown file defines: its headings' slugs (numbered on repeats) and <a id=...>."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(HTML_ANCHOR.findall(line))
        if m := HEADING.match(line):
            base = slug(m[2])
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image in the file's prose."""
    out = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        if m := REFERENCE_DEF.match(line):
            out.append((number, m[1]))
            continue
        out.extend((number, target) for target in LINK.findall(INLINE_CODE.sub("", line)))
    return out


def broken_links(path: Path) -> list[str]:
    """One line per relative link or anchor of `path` that does not resolve."""
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
            continue  # http:, https:, mailto: ...
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{number}: {target!r}"
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not file_part and not anchor:
            problems.append(f"{where}: empty link")
        elif not dest.exists():
            problems.append(f"{where}: no such file {file_part}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where}: no heading with anchor #{anchor} in {dest.name}")
    return problems


def section(text: str, title: str) -> list[str]:
    """The lines under the level-2 heading `title`, up to the next level-1 or level-2 heading."""
    lines = text.splitlines()
    start = lines.index(f"## {title}") + 1
    end = next((i for i in range(start, len(lines)) if re.match(r"^##?\s", lines[i])), len(lines))
    return lines[start:end]


def shell_commands(lines: list[str]) -> list[str]:
    """The commands in the shell code blocks of `lines`: continuations joined, comments and blanks dropped."""
    commands, fence, pending = [], None, ""
    for line in lines:
        m = re.match(r"^\s*(```|~~~)\s*(\S*)", line)
        if m and fence is None:
            fence = m[2] or "sh"
            continue
        if m:
            fence = None
            continue
        if fence not in ("sh", "bash", "shell", "console"):
            continue
        stripped = line.strip().removeprefix("$ ")
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
        else:
            commands.append(pending)
            pending = ""
    return commands


# -- the checks ----------------------------------------------------------------------------------------------


def test_the_manual_pages_and_the_benchmarks_page_exist():
    for page in MANUAL:
        assert (ROOT / "docs" / page).is_file(), f"docs/{page} is missing"
    assert (ROOT / "benchmarks" / "README.md").is_file()


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_and_anchor_resolves(doc):
    assert broken_links(ROOT / doc) == []


def test_the_readme_links_to_every_page_of_the_manual():
    targets = {target.partition("#")[0] for _, target in links(ROOT / "README.md")}
    missing = [page for page in [*(f"docs/{p}" for p in MANUAL), "benchmarks/README.md"] if page not in targets]
    assert missing == []


def test_the_readme_is_an_entry_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    count = len(text.splitlines())
    assert count <= README_MAX_LINES, f"README.md has {count} lines; keep it to {README_MAX_LINES}, move the rest to docs/"


def test_the_quickstart_has_exactly_two_commands_each_setting_itself_up():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Quickstart" in text.splitlines()
    commands = shell_commands(section(text, "Quickstart"))
    assert len(commands) == 2, commands
    for command in commands:
        assert command.startswith("python3 -m venv "), f"not self-contained on a fresh machine: {command}"
        assert " pip install " in command, command
    grading, testing = commands
    example = re.search(r"grade --engine (\S+)", grading)
    assert example and (ROOT / example[1]).is_file(), grading
    assert "'.[test]'" in testing and "python -m pytest" in testing, testing


# -- the checker itself ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("heading, expected", [
    ("CI and Gradescope", "ci-and-gradescope"),
    ("Fuzzing: `--fuzz N --seed S`", "fuzzing---fuzz-n---seed-s"),
    ("Pictures: `--format html` and `--graph dot`", "pictures---format-html-and---graph-dot"),
    ("Generated expectations: `reference`", "generated-expectations-reference"),
    ("`register_engines(register)`", "register_enginesregister"),
    ("The [JSON](x.md) report", "the-json-report"),
    ("10⁶ nodes", "10⁶-nodes"),
])
def test_slugs_follow_github(heading, expected):
    assert slug(heading) == expected


def test_the_checker_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / "other.md").write_text("# Title\n## Same\n## Same\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Here\n"
        "[ok](other.md#title) [ok](other.md#same-1) [ok](#here) [ok](https://x.org/nowhere) `[code](nope.md)`\n"
        "[gone](missing.md) [bad anchor](other.md#same-2) ![img](pic.png) [self](#nowhere)\n"
        "```\n[in a fence](fenced.md)\n```\n"
        "[ref]: also-missing.md\n")
    problems = broken_links(page)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "'missing.md': no such file missing.md",
        "'other.md#same-2': no heading with anchor #same-2 in other.md",
        "'pic.png': no such file pic.png",
        "'#nowhere': no heading with anchor #nowhere in page.md",
        "'also-missing.md': no such file also-missing.md",
    ]


def test_the_command_counter_joins_continuations_and_skips_comments():
    lines = ["```sh", "# a comment", "pip install . && \\", "  grade --engine e.py", "", "$ python -m pytest",
             "```", "text", "```yaml", "not: a command", "```"]
    assert shell_commands(lines) == ["pip install . && grade --engine e.py", "python -m pytest"]
