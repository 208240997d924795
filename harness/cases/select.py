"""Which cases a run grades: ``-k`` expressions, ``--tag`` and ``--exclude-tag``.

A ``-k`` expression is pytest's: names joined by ``and``, ``or`` and ``not``, with parentheses.
A name matches a case when it is a substring of the case's id (``suite::name``), case-sensitively,
as the ids are written.  The empty expression matches every case.

    expr     := and_expr ("or" and_expr)*
    and_expr := not_expr ("and" not_expr)*
    not_expr := "not" not_expr | "(" expr ")" | NAME
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

#: What a name may hold: pytest's characters (word characters and ``: + - . [ ] \\ /``).
_TOKEN = re.compile(r"\s*(?:(?P<paren>[()])|(?P<name>(?:\w|[:+\-.\[\]\\/])+)|(?P<bad>\S))")
_KEYWORDS = ("and", "or", "not")
_MAX_DEPTH = 100  # nested 'not's and parentheses: enough for any hand-written expression


class ExpressionError(ValueError):
    """A ``-k`` expression that does not parse; the message names the column (1-based)."""


class Selectable(Protocol):
    """What selection reads from a case."""

    @property
    def id(self) -> str: ...

    @property
    def tags(self) -> Sequence[str]: ...


C = TypeVar("C", bound=Selectable)


@dataclass(frozen=True)
class _Name:
    text: str

    def matches(self, case_id: str) -> bool:
        return self.text in case_id


@dataclass(frozen=True)
class _Not:
    operand: _Node

    def matches(self, case_id: str) -> bool:
        return not self.operand.matches(case_id)


@dataclass(frozen=True)
class _And:
    operands: tuple[_Node, ...]

    def matches(self, case_id: str) -> bool:
        return all(o.matches(case_id) for o in self.operands)


@dataclass(frozen=True)
class _Or:
    operands: tuple[_Node, ...]

    def matches(self, case_id: str) -> bool:
        return any(o.matches(case_id) for o in self.operands)


_Node = _Name | _Not | _And | _Or


@dataclass(frozen=True)
class Expression:
    """A compiled ``-k`` expression."""

    text: str
    _tree: _Node | None  # None: the empty expression, which matches everything

    @classmethod
    def compile(cls, text: str) -> Expression:
        """Parse ``text``; raises ExpressionError naming the column of the problem."""
        tokens = _tokenize(text)
        if not tokens:
            return cls(text, None)
        parser = _Parser(text, tokens)
        tree = parser.expr()
        parser.expect_end()
        return cls(text, tree)

    def matches(self, case_id: str) -> bool:
        """Whether the case with this id is selected."""
        return self._tree is None or self._tree.matches(case_id)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class _Token:
    kind: str  # "(", ")", "and", "or", "not" or "name"
    text: str
    column: int  # 1-based


def _tokenize(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        column = m.start(m.lastgroup or 0) + 1
        if m.group("bad") is not None:
            raise ExpressionError(f"at column {column}: unexpected character {m.group('bad')!r}")
        word = m.group("paren") or m.group("name")
        kind = word if word in ("(", ")") or word in _KEYWORDS else "name"
        tokens.append(_Token(kind, word, column))
        pos = m.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens, one method per rule of the grammar."""

    def __init__(self, text: str, tokens: list[_Token]):
        self.text, self.tokens, self.i, self.depth = text, tokens, 0, 0

    def _peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _accept(self, kind: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == kind:
            self.i += 1
            return True
        return False

    def _fail(self, expected: str) -> ExpressionError:
        token = self._peek()
        if token is None:
            return ExpressionError(f"at column {len(self.text) + 1}: expected {expected}; "
                                   "got the end of the expression")
        return ExpressionError(f"at column {token.column}: expected {expected}; got {token.text!r}")

    def expr(self) -> _Node:
        operands = [self.and_expr()]
        while self._accept("or"):
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else _Or(tuple(operands))

    def and_expr(self) -> _Node:
        operands = [self.not_expr()]
        while self._accept("and"):
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else _And(tuple(operands))

    def not_expr(self) -> _Node:
        token = self._peek()
        if token is not None and token.kind in ("not", "("):
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise ExpressionError(f"at column {token.column}: nested more than {_MAX_DEPTH} deep")
            if self._accept("not"):
                node: _Node = _Not(self.not_expr())
            else:
                self._accept("(")
                node = self.expr()
                if not self._accept(")"):
                    raise self._fail("')'")
            self.depth -= 1
            return node
        token = self._peek()
        if token is not None and token.kind == "name":
            self.i += 1
            return _Name(token.text)
        raise self._fail("a name, 'not' or '('")

    def expect_end(self) -> None:
        if self._peek() is not None:
            raise self._fail("'and', 'or' or the end")


def select(cases: Iterable[C], keywords: Sequence[Expression] = (), tags: Sequence[str] = (),
           exclude_tags: Sequence[str] = ()) -> list[C]:
    """The cases matching any of ``keywords`` and any of ``tags`` (each only when given), and none of
    ``exclude_tags``, in their order."""
    return [c for c in cases
            if (not keywords or any(k.matches(c.id) for k in keywords))
            and (not tags or any(t in c.tags for t in tags))
            and not any(t in c.tags for t in exclude_tags)]
