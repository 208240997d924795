"""YAML loaders that read plain scalars by YAML 1.2's core schema, not PyYAML's YAML 1.1 rules.

PyYAML resolves plain scalars as YAML 1.1 does: ``010`` is octal 8, ``1:30`` is
the sexagesimal 90, ``1_000`` is 1000, ``yes`` is true, and ``1e-6`` (no dot) is
a string.  Case files follow YAML 1.2's core schema instead
(https://yaml.org/spec/1.2.2/#1032-tag-resolution):

- null: ``~``, ``null``, ``Null``, ``NULL`` and the empty scalar;
- bool: ``true``, ``True``, ``TRUE``, ``false``, ``False``, ``FALSE``;
- int: ``[-+]?[0-9]+`` (decimal, so ``010`` is 10), ``0o[0-7]+`` (octal), ``0x[0-9a-fA-F]+`` (hex);
- float: ``[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?`` (so ``1e-6`` is a float),
  ``[-+]?.inf`` (any of ``inf Inf INF``) and ``.nan`` (``nan NaN NAN``);
- everything else is a string: ``1:30``, ``1_000``, ``0b101``, ``yes``, ``2024-01-01``.

The merge key ``<<`` still works, as PyYAML users expect.  Only the resolver and
the int/float constructors change; parsing (libyaml's when PyYAML has it) and
the safe constructors are PyYAML's.
"""

from __future__ import annotations

import re

import yaml

INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")

#: YAML 1.1 number forms that YAML 1.2 reads as strings, with how to write them now.
_YAML11 = (
    (re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$"),
     "a YAML 1.1 base-60 number; YAML 1.2 reads it as text"),
    (re.compile(r"^[-+]?(?:[0-9][0-9_]*)?\.?[0-9_]*(?:[eE][-+]?[0-9]+)?$"),
     "digits with '_'; YAML 1.2 reads it as text: leave out the underscores"),
    (re.compile(r"^[-+]?0b[01_]+$"), "a YAML 1.1 binary number; YAML 1.2 reads it as text"),
)


def _int(loader, node) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text, 8)
    if text.startswith("0x"):
        return int(text, 16)
    return int(text, 10)


def _float(loader, node) -> float:
    text = loader.construct_scalar(node)
    low = text.lower()
    if low in (".inf", "+.inf"):
        return float("inf")
    if low == "-.inf":
        return float("-inf")
    if low == ".nan":
        return float("nan")
    return float(text)


def _bool(loader, node) -> bool:
    return loader.construct_scalar(node).lower() == "true"


def _core_schema(cls):
    """Give ``cls`` (a SafeLoader or CSafeLoader subclass) YAML 1.2 core-schema resolvers."""
    merge = [(tag, rx) for first in ("<",) for tag, rx in yaml.SafeLoader.yaml_implicit_resolvers.get(first, [])
             if tag == "tag:yaml.org,2002:merge"]
    cls.yaml_implicit_resolvers = {}
    cls.add_implicit_resolver(NULL, _NULL, ["~", "n", "N", ""])
    cls.add_implicit_resolver(BOOL, _BOOL, list("tTfF"))
    cls.add_implicit_resolver(INT, _INT, list("-+0123456789"))
    cls.add_implicit_resolver(FLOAT, _FLOAT, list("-+0123456789."))
    for tag, rx in merge:
        cls.add_implicit_resolver(tag, rx, ["<"])
    cls.add_constructor(INT, _int)
    cls.add_constructor(FLOAT, _float)
    cls.add_constructor(BOOL, _bool)
    return cls


@_core_schema
class Loader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, with YAML 1.2 core-schema scalars."""


@_core_schema
class FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser (when PyYAML has it), with YAML 1.2 core-schema scalars."""


def load(text: str):
    """``text`` as data, like ``yaml.safe_load`` but with YAML 1.2 core-schema scalars."""
    return yaml.load(text, Loader=FastLoader)


def yaml11_hint(value) -> str:
    """Why a string that YAML 1.1 would have read as a number is text under YAML 1.2 ('' if not)."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if not any(mark in text for mark in ("_", ":", "0b")):
        return ""
    return next((why for pattern, why in _YAML11 if pattern.match(text)), "")
