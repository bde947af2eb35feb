"""Checks of the workflow configuration that its JSON schema alone does not make.

Two things a user trips on, both found before the schema runs (``workflow/rules/common.smk``):

* **Misspelled keys.** A key the schema does not know (``spilts:``) would otherwise be ignored
  silently, the default used instead. :func:`unknown_keys` finds every such key, at any level the
  schema closes (``additionalProperties: false``), and suggests the closest known one.
* **Numbers given on the command line.** ``snakemake --config train='{"max_epochs": 2}'`` hands the
  nested values over as text (``"2"``). :func:`coerce_to_schema` reads text as YAML where the schema
  asks for a number, a boolean or null and the text is one, and leaves everything else for the
  schema to judge.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

_SCALAR_TYPES = {"integer", "number", "boolean", "null"}


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if kind is None:
        return set()
    return {kind} if isinstance(kind, str) else set(kind)


def _matches(value: Any, types: set[str]) -> bool:
    checks = {
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    return any(checks[t](value) for t in types if t in checks)


def coerce_to_schema(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` with text turned into the number, boolean or null the schema expects there
    (recursively through objects and arrays); text that does not parse as one stays text."""
    types = _types(schema)
    if isinstance(value, str) and types & _SCALAR_TYPES and "string" not in types:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if _matches(parsed, types) else value
    if isinstance(value, Mapping):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, Mapping) else None)
            out[key] = coerce_to_schema(item, sub) if sub else item
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [coerce_to_schema(item, schema["items"]) for item in value]
    return value


@dataclass(frozen=True)
class UnknownKey:
    """A config key the schema does not allow: where, which, and the closest known key."""

    path: str
    key: str
    suggestion: str | None
    known: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.path}." if self.path else ""
        if self.suggestion:
            return f"unknown key '{where}{self.key}': did you mean '{where}{self.suggestion}'?"
        section = f"'{self.path}'" if self.path else "the top level"
        return (f"unknown key '{where}{self.key}': {section} has only "
                f"{', '.join(self.known)}")


def unknown_keys(config: Any, schema: Mapping[str, Any], path: str = "") -> list[UnknownKey]:
    """Every key of ``config`` that its section of ``schema`` closes out, depth first."""
    found: list[UnknownKey] = []
    if not isinstance(config, Mapping):
        return found
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, value in config.items():
        if key in properties:
            sub = properties[key]
        elif isinstance(extra, Mapping):
            sub = extra
        elif extra is False:
            close = difflib.get_close_matches(str(key), list(properties), n=1, cutoff=0.6)
            found.append(UnknownKey(path, str(key), close[0] if close else None,
                                    tuple(properties)))
            continue
        else:
            continue
        found += unknown_keys(value, sub, f"{path}.{key}" if path else str(key))
    return found
