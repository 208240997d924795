"""The pluggy plugin manager, grader side: built-in plugins, installed plugins, and what they register.

Collecting is shared with the engine process (``harness.engine_side.collector``);
this module adds the built-in reporters and turns a broken plugin into a usage error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pluggy

from harness.engine_side import collector
from harness.engine_side.collector import (  # noqa: F401 (part of this module's API)
    ENTRY_POINT_GROUP,
    HOOK_NAMES,
    PLUGINS_ENV,
    engines,
    extra_plugin_names,
    hook_functions,
    new_manager,
    ops,
)
from harness.errors import HarnessError
from harness.ops import OpSpec  # noqa: F401 (plugins written before harness.OpSpec import it from here)

BUILTIN_PLUGINS = ("harness.reporting.text", "harness.reporting.json", "harness.reporting.junit",
                   "harness.reporting.gradescope", "harness.reporting.csv", "harness.reporting.markdown",
                   "harness.reporting.html", "harness.reporting.dot")


def check(pm: pluggy.PluginManager) -> None:
    """Fail loudly (HarnessError) on a misspelled hook instead of ignoring it."""
    try:
        collector.check(pm)
    except collector.PluginError as e:
        raise HarnessError(str(e)) from None


_MANAGERS: dict[tuple, pluggy.PluginManager] = {}


def installed_manager(entry_points: bool = True, builtins: bool = True) -> pluggy.PluginManager:
    """A manager with the built-in plugins, HARNESS_PLUGINS, and every installed one (built-ins and
    installed ones optional).

    One per process for the same plugins and import path: finding the installed ones reads every installed
    distribution's metadata, and grade asks several times (formats, ops, trusted engine names).
    """
    key = (entry_points, builtins, tuple(collector.extra_plugin_names()), tuple(sys.path))
    if key not in _MANAGERS:
        try:
            _MANAGERS[key] = collector.installed_manager(entry_points, BUILTIN_PLUGINS if builtins else ())
        except collector.PluginError as e:
            raise HarnessError(str(e)) from None
    return _MANAGERS[key]


def reporters(pm: pluggy.PluginManager) -> dict[str, Callable]:
    """Report formats by name: name -> render(run, context) -> str."""
    found: dict = {}
    pm.hook.register_reporters(register=lambda name, render: found.__setitem__(name, render))
    return found
