"""From TOML text to a validated :class:`~profiles.models.Profile`, or sentences saying why not.

Pure: the caller reads the file and passes its text and a ``source`` name for messages. Whatever
the text, the answer is a profile or a :class:`ProfileError` of sentences: text over
:data:`MAX_PROFILE_BYTES`, nesting too deep to parse, and numbers too long to read are refused like
any other mistake, never raised as RecursionError, MemoryError or ValueError.
"""

from __future__ import annotations

import math
import re
import sys
import tomllib
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from profiles.errors import ProfileError, ProfileProblem, printable
from profiles.models import Profile

__all__ = ["MAX_PROFILE_BYTES", "parse_profile", "problems_from_validation"]

# A profile is a few hundred bytes; a file a thousand times that is not one (and is not parsed).
MAX_PROFILE_BYTES = 1024 * 1024

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_SHOWN_MAX = 40  # characters of a rejected value repeated in a message


def parse_profile(text: str, source: str) -> Profile:
    """Parse and validate one profile. Raises :class:`ProfileError` listing every problem."""
    if len(text) > MAX_PROFILE_BYTES or len(text.encode("utf-8", "replace")) > MAX_PROFILE_BYTES:
        raise ProfileError(
            [
                _whole_file(
                    source,
                    f"is larger than {MAX_PROFILE_BYTES // 1024 // 1024} MiB, far too large for "
                    "a profile (a few hundred bytes); check that this is the profile you meant",
                )
            ]
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError([_toml_problem(exc, text, source)]) from None
    except ValueError:
        # tomllib reads integers with int(), which refuses more than sys.get_int_max_str_digits()
        raise ProfileError(
            [
                _whole_file(
                    source,
                    f"has a number with more than {sys.get_int_max_str_digits()} digits; "
                    "write an ordinary number",
                )
            ]
        ) from None
    except RecursionError:
        raise ProfileError([_too_deep(source)]) from None
    except MemoryError:
        raise ProfileError([_whole_file(source, "is too large to read as a profile")]) from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(problems_from_validation(exc, source)) from None
    except RecursionError:
        raise ProfileError([_too_deep(source)]) from None


def _whole_file(source: str, message: str) -> ProfileProblem:
    return ProfileProblem(source=source, field="", message=message)


def _too_deep(source: str) -> ProfileProblem:
    return _whole_file(
        source,
        "nests arrays or inline tables too deeply to read; a profile needs no more than "
        "[table] and [[array of tables]] headers, so write it that way",
    )


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
            name = printable(part, _SHOWN_MAX)  # a key may hold any character
            out += f".{name}" if out else name
    return out


def _show(value: Any) -> str:
    """A rejected value as it would be written in TOML, shortened when long. Never raises: a
    message about a bad value must not fail on the value (``nan``, ``inf``, a huge integer)."""
    try:
        text = _toml_text(value)
    except (ValueError, OverflowError):  # an integer too long for str(), say
        text = "a number too long to show"
    if len(text) > _SHOWN_MAX:
        text = text[: _SHOWN_MAX - 3] + "..."
    return text


def _toml_text(value: Any) -> str:
    if isinstance(value, str):
        return f'"{printable(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value.is_integer():
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
