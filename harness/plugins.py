"""The pluggy plugin manager: built-in plugins, installed plugins, and what they register."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Callable

import pluggy

from harness import hookspecs
from harness.errors import HarnessError, did_you_mean

ENTRY_POINT_GROUP = "harness"
PLUGINS_ENV = "HARNESS_PLUGINS"
BUILTIN_PLUGINS = ("harness.reporting.text", "harness.reporting.json", "harness.reporting.junit",
                   "harness.reporting.gradescope", "harness.reporting.csv", "harness.reporting.markdown",
                   "harness.reporting.html", "harness.reporting.dot")
HOOK_NAMES = tuple(n for n in dir(hookspecs) if n.startswith("register_"))


@dataclass(frozen=True)
class OpSpec:
    """An extra op for case expressions: its name and arity.

    ``forward(*values)`` and ``derivatives(*values)`` (one local derivative per
    operand) let the reference engine compute it.
    """

    name: str
    arity: int
    forward: Callable | None = None
    derivatives: Callable | None = None


def new_manager() -> pluggy.PluginManager:
    """An empty manager that knows the harness hooks."""
    pm = pluggy.PluginManager("harness")
    pm.add_hookspecs(hookspecs)
    return pm


def check(pm: pluggy.PluginManager) -> None:
    """Fail loudly on a misspelled hook instead of ignoring it."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        plugin = getattr(e, "plugin", None)
        name = (pm.get_name(plugin) if plugin is not None else None) or "a plugin"
        bad = [impl.function.__name__ for caller in pm.hook.__dict__.values()
               if isinstance(caller, pluggy.HookCaller) and not caller.has_spec()
               for impl in caller.get_hookimpls()]
        hints = "".join(f"; {b!r} is not a hook{did_you_mean(b, HOOK_NAMES)}" for b in bad)
        raise HarnessError(f"plugin {name}: unknown hook{hints}; hooks are {', '.join(HOOK_NAMES)}") from None


def extra_plugin_names() -> list[str]:
    """Plugin modules named in the HARNESS_PLUGINS environment variable (comma-separated)."""
    return [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]


def installed_manager(entry_points: bool = True, builtins: bool = True) -> pluggy.PluginManager:
    """A manager with the built-in plugins, HARNESS_PLUGINS, and every installed one (built-ins and
    installed ones optional)."""
    pm = new_manager()
    for name in BUILTIN_PLUGINS if builtins else ():
        pm.register(importlib.import_module(name), name)
    for name in extra_plugin_names():
        if pm.get_plugin(name) is None:
            try:
                module = importlib.import_module(name)
            except ImportError as e:
                raise HarnessError(f"cannot import plugin {name!r}: {e}") from None
            pm.register(module, name)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    check(pm)
    return pm


def engines(pm: pluggy.PluginManager) -> list:
    """Every engine the manager's plugins register, in registration order."""
    found: list = []
    pm.hook.register_engines(register=found.append)
    return found


def reporters(pm: pluggy.PluginManager) -> dict:
    """Report formats by name: name -> render(run, context) -> str."""
    found: dict = {}
    pm.hook.register_reporters(register=lambda name, render: found.__setitem__(name, render))
    return found


def ops(pm: pluggy.PluginManager) -> dict:
    """Extra ops by name."""
    found: dict = {}
    pm.hook.register_ops(register=lambda spec: found.__setitem__(spec.name, spec))
    return found
