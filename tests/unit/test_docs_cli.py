"""docs/cli.md documents every option of every form of the grade command."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from harness import cli

ROOT = Path(__file__).resolve().parents[2]


def parsers() -> list[argparse.ArgumentParser]:
    """grade's parsers: the main one, grade merge's, and any subcommand's, found by walking them."""
    found, todo = [], [cli.build_parser()] + ([cli.build_merge_parser()] if hasattr(cli, "build_merge_parser") else [])
    while todo:
        parser = todo.pop()
        found.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return found


def options() -> set[str]:
    return {o for p in parsers() for a in p._actions for o in a.option_strings if o not in ("-h", "--help")}


def test_every_option_is_documented_in_docs_cli():
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(--?[A-Za-z][\w-]*)", page))
    assert options() - documented == set(), "document these options in docs/cli.md"


def test_the_option_finder_sees_the_options():
    assert {"--engine", "--cases", "--format", "--fail-under", "-k"} <= options()
