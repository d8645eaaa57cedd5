"""Profile texts for tests: valid ones to start from, and a way to change one field."""

from __future__ import annotations

import tomllib
from typing import Any

CONTRAST = """
name = "my-contrast"
title = "My contrast"
kind = "contrast"
area = "lower-back"

[contrast]
heat_minutes = 4
cold_minutes = 4
cycles = 3
heat_celsius = 42
cold_celsius = 12
"""

MASSAGE = """
name = "my-massage"
title = "My massage"
kind = "massage"
area = "lower-back"

[massage]
minutes = 10
speed = "low"

[[massage.areas]]
name = "left-glute"
seconds = 60

[[massage.areas]]
name = "right-glute"
seconds = 60
"""

COLD = """
name = "my-cold"
title = "My cold pack"
kind = "cold"
area = "knee"

[cold]
minutes = 20
celsius = 12
repeat_every_minutes = 90
for_hours = 72
"""

HEAT = """
name = "my-heat"
title = "My heat"
kind = "heat"
area = "lower-back"

[heat]
minutes = 10
celsius = 40
"""


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the flat tables and arrays of tables profiles use."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and value and isinstance(value[0], dict)
        ):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}")
    for key, value in tables:
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            nested = []
            for k, v in value.items():
                if isinstance(v, list) and v and isinstance(v[0], dict):
                    nested.append((k, v))
                else:
                    lines.append(f"{k} = {_value(v)}")
            for k, items in nested:
                for item in items:
                    lines.append(f"[[{key}.{k}]]")
                    lines.extend(f"{ik} = {_value(iv)}" for ik, iv in item.items())
        else:
            for item in value:
                lines.append(f"[[{key}]]")
                lines.extend(f"{ik} = {_value(iv)}" for ik, iv in item.items())
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value)


def with_value(text: str, path: str, value: Any) -> str:
    """``text`` with the field at dotted ``path`` set to ``value`` (removed when None)."""
    data = tomllib.loads(text)
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return to_toml(data)
