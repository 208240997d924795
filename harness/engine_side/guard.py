"""The import policy for untrusted submissions (runs in the engine process).

Before a submission is imported, the worker installs a meta path finder that
refuses the forbidden modules, and removes those already loaded from
``sys.modules`` and from their parent packages, so ``import``,
``from ... import`` and ``importlib.import_module`` all go through the finder.
It stops a submission from "submitting" the reference engine or reaching into
the harness; it is not a sandbox (see "Security and isolation" in the README).
"""

from __future__ import annotations

import importlib
import sys

#: Forbidden by default: the reference engine, and the harness itself...
DEFAULT_FORBIDDEN = ("reference_engine", "harness")
#: ...except its public plugin API: ``hookimpl``, ``Unsupported`` and ``OpSpec`` (in ``harness``), the op table
#: ``harness.ops`` that they come from, the adapters, and the contract (``harness.Engine`` and the other
#: protocols, the hookspecs), which ``harness`` and the hook collector import on first use.
PUBLIC_API = ("harness", "harness.ops", "harness.engine_side", "harness.engine_side.adapters", "harness.protocols",
              "harness.hookspecs")


class ForbiddenImport(ImportError):
    """A submission imported a module that the grader's import policy forbids."""


class ImportPolicy:
    """Modules a submission may not import (each with its submodules), minus the allowed ones."""

    __slots__ = ("forbidden", "allowed")  # a plain class: no engine process pays for importing dataclasses

    def __init__(self, forbidden: tuple = DEFAULT_FORBIDDEN, allowed: tuple = PUBLIC_API) -> None:
        self.forbidden, self.allowed = forbidden, allowed

    def refuses(self, name: str) -> bool:
        """Whether importing ``name`` is forbidden."""
        if name in self.allowed:
            return False
        return any(name == f or name.startswith(f + ".") for f in self.forbidden)

    def describe(self) -> str:
        """The policy in words, for error messages."""
        names = list(self.forbidden)
        text = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)
        return text + (f" (except the plugin API: {', '.join(self.allowed)})" if self.allowed else "")


class _Finder:  # a meta path finder; not importlib.abc's subclass, whose import costs every engine 10 ms
    """First on ``sys.meta_path``: raises ForbiddenImport for a forbidden module."""

    def __init__(self, policy: ImportPolicy):
        self.policy = policy

    def find_spec(self, fullname, path=None, target=None):
        if self.policy.refuses(fullname):
            raise ForbiddenImport(
                f"import of {fullname!r} refused by the grader's import policy: a submission may not "
                f"import {self.policy.describe()}", name=fullname)
        return None


_hidden: list = []  # modules taken out of sys.modules; the worker's own code still uses them


def install(policy: ImportPolicy) -> None:
    """Enforce ``policy`` for every import from now on, including modules already loaded."""
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder(policy))
    for name in sorted((n for n in sys.modules if policy.refuses(n)), key=len, reverse=True):
        module = sys.modules.pop(name)
        _hidden.append(module)
        parent, _, child = name.rpartition(".")
        holder = sys.modules.get(parent)
        if holder is not None and getattr(holder, child, None) is module:
            try:
                delattr(holder, child)
            except AttributeError:
                pass
    importlib.invalidate_caches()
