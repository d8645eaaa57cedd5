"""From TOML text to a validated :class:`~profiles.models.Profile`, or sentences saying why not.

Pure: the caller reads the file and passes its text and a ``source`` name for messages.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from profiles.errors import ProfileError, ProfileProblem
from profiles.models import Profile

__all__ = ["parse_profile", "problems_from_validation"]

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def parse_profile(text: str, source: str) -> Profile:
    """Parse and validate one profile. Raises :class:`ProfileError` listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError([_toml_problem(exc, text, source)]) from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(problems_from_validation(exc, source)) from None


def _toml_problem(exc: tomllib.TOMLDecodeError, text: str, source: str) -> ProfileProblem:
    message = str(exc)
    line = getattr(exc, "lineno", None)
    column = getattr(exc, "colno", None)
    match = _TOML_POSITION.search(message)
    if match:
        line, column = int(match[1]), int(match[2])
    elif "end of document" in message:
        line = text.count("\n") + 1
        column = len(text) - text.rfind("\n")
        message = message.replace(" (at end of document)", " at the end of the file")
    message = getattr(exc, "msg", None) or _TOML_POSITION.sub("", message)
    return ProfileProblem(
        source=source,
        field="",
        message=f"this is not valid TOML: {message[0].lower()}{message[1:]}; fix the file there",
        line=line,
        column=column,
    )


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value):
        return f"{value:g}"
    return str(value)


_FRIENDLY = {
    "missing": "is required; add it",
    "extra_forbidden": "is not a setting relieve knows; check the spelling or remove it",
    "float_type": "must be a number",
    "int_type": "must be a whole number",
    "string_type": "must be text in quotes",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "model_type": "must be a table",
    "dict_type": "must be a table",
    "too_short": "must not be empty",
}


def problems_from_validation(exc: ValidationError, source: str) -> list[ProfileProblem]:
    """One :class:`ProfileProblem` per pydantic error, in the profile's own terms."""
    problems: list[ProfileProblem] = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        loc = list(error["loc"])
        if "field" in ctx:
            loc.extend(str(ctx["field"]).split("."))
        field = _path(loc)
        value = ctx.get("value", error.get("input"))
        kind = error["type"]
        if kind in ("safety_limit", "bad_value"):
            message = str(ctx["message"])
        elif kind == "literal_error":
            message = f"must be one of {ctx.get('expected')}"
        elif kind in _FRIENDLY:
            message = _FRIENDLY[kind]
        else:
            message = error["msg"][0].lower() + error["msg"][1:]
        shown = None if kind == "missing" or isinstance(value, dict | list) else _show(value)
        problems.append(
            ProfileProblem(
                source=source,
                field=field,
                value=shown,
                message=message,
                limit_id=ctx.get("limit_id"),
            )
        )
    return problems
