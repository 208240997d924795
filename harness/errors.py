"""Errors the harness reports to users: one clear message, never a traceback."""

from __future__ import annotations


class HarnessError(Exception):
    """A problem with the user's input that stops the command (exit code 2)."""


class CaseFileError(HarnessError):
    """A malformed case file: names the file, the line, the case and the fix."""

    def __init__(self, path, problem: str, *, line: int | None = None, case: str | None = None):
        self.path, self.problem, self.line, self.case = str(path), problem, line, case
        where = self.path if line is None else f"{self.path}:{line}"
        in_case = f" case {case!r}:" if case else ""
        super().__init__(f"{where}:{in_case} {problem}")


class ExprError(HarnessError):
    """An expression that is not in the case language (column is 0-based)."""

    def __init__(self, problem: str, col: int | None = None):
        self.problem, self.col = problem, col
        super().__init__(problem)


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'x'?)' for a near miss among choices, else ''."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
