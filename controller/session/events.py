"""The one typed event stream every front end reads (CLI, ``--json`` lines, TUI, MQTT, history).

Every event has ``t`` (session seconds: negative during pre-conditioning, 0 when therapy
starts) and a ``type``. ``to_json()`` gives the documented JSON object (docs/events.md);
``event_from_json()`` reads one back, strictly, for clients of the event stream.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

from profiles.errors import RelieveError

__all__ = [
    "Alarm",
    "Event",
    "EventDecodeError",
    "Finished",
    "Notice",
    "Outcome",
    "PhaseChanged",
    "Prompt",
    "SessionStarted",
    "StateChanged",
    "Telemetry",
    "event_from_json",
]

Outcome = Literal["completed", "stopped", "aborted", "interrupted"]


@dataclass(frozen=True)
class Event:
    type: ClassVar[str] = "event"
    t: float

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for key, value in asdict(self).items():
            if value is not None:
                out[key] = round(value, 3) if isinstance(value, float) else value
        return out


@dataclass(frozen=True)
class SessionStarted(Event):
    type: ClassVar[str] = "started"
    profile: str
    title: str
    total_s: float
    devices: dict[str, str] = field(default_factory=dict)  # role -> "name (address)"
    simulated: bool = False
    speed: float = 1.0  # times real time; 0: virtual time (tests)


@dataclass(frozen=True)
class PhaseChanged(Event):
    """A new phase of the timeline (or ``off`` at the end and while pre-conditioning)."""

    type: ClassVar[str] = "phase"
    mode: Literal["heat", "cold", "massage", "stretch", "off", "preheat", "precool"]
    duration_s: float | None = None
    celsius: float | None = None
    rpm: int | None = None
    area: str | None = None
    label: str | None = None
    index: int | None = None  # position in the plan's phases
    count: int | None = None  # how many phases the plan has


@dataclass(frozen=True)
class Prompt(Event):
    """Something the person must do, shown ``heads_up_s`` before ``due``."""

    type: ClassVar[str] = "prompt"
    text: str
    due: float


@dataclass(frozen=True)
class Telemetry(Event):
    type: ClassVar[str] = "telemetry"
    role: str
    plate_celsius: float | None = None
    skin_celsius: float | None = None
    setpoint_celsius: float | None = None
    rpm: int | None = None
    battery: int | None = None


@dataclass(frozen=True)
class StateChanged(Event):
    """Paused, resumed, a link lost or back, the massage warning before the cap."""

    type: ClassVar[str] = "state"
    state: Literal["preconditioning", "running", "paused", "resumed", "link-lost", "link-restored"]
    reason: str | None = None


@dataclass(frozen=True)
class Notice(Event):
    """A warning that does not stop the session (e.g. one minute before the massage cap)."""

    type: ClassVar[str] = "notice"
    message: str
    level: Literal["info", "warning"] = "warning"


@dataclass(frozen=True)
class Alarm(Event):
    type: ClassVar[str] = "alarm"
    priority: Literal["high", "medium"]
    reason: str
    message: str
    role: str | None = None
    limit_id: str | None = None


@dataclass(frozen=True)
class Finished(Event):
    type: ClassVar[str] = "finished"
    outcome: Outcome
    reason: str | None = None
    delivered_s: float = 0.0
    devices_off: bool = True
    recorded: bool = True  # False: the history could not record this session (in full)


# --- decoding -------------------------------------------------------------------------------------


class EventDecodeError(RelieveError):
    """An event line that is not a valid event; the message says in one sentence what is wrong."""


# Every event type a decoder knows. A new event class must be added here (a test checks).
_EVENT_CLASSES: tuple[type[Event], ...] = (
    SessionStarted,
    PhaseChanged,
    Prompt,
    Telemetry,
    StateChanged,
    Notice,
    Alarm,
    Finished,
)


class _MismatchError(Exception):
    """A value that does not fit a field's type; ``str()`` is "expected ..., got ..."."""


_Convert = Callable[[object], object]
_MAX_SHOWN = 40  # characters of a string quoted in an error message


def _describe(value: object) -> str:
    """A short, single-line picture of a JSON value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**18 else "a very large number"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, str):
        if len(value) > _MAX_SHOWN:
            return repr(value[:_MAX_SHOWN]) + "..."
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _mismatch(expected: str, value: object) -> _MismatchError:
    return _MismatchError(f"expected {expected}, got {_describe(value)}")


def _to_float(value: object) -> object:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise _mismatch("a finite number", value)


def _to_int(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _mismatch("a whole number", value)


def _to_str(value: object) -> object:
    if isinstance(value, str):
        return value
    raise _mismatch("a string", value)


def _to_bool(value: object) -> object:
    if isinstance(value, bool):
        return value
    raise _mismatch("true or false", value)


_SCALARS: dict[object, tuple[_Convert, str]] = {
    float: (_to_float, "a finite number"),
    int: (_to_int, "a whole number"),
    str: (_to_str, "a string"),
    bool: (_to_bool, "true or false"),
}


_PLURALS: dict[object, str] = {
    float: "finite numbers",
    int: "whole numbers",
    str: "strings",
    bool: "true or false",
}


def _plural(hint: object, words: str) -> str:
    return _PLURALS.get(hint, f"({words})")


def _converter(hint: object) -> tuple[_Convert, str]:
    """A function that checks and converts a JSON value for a field of type ``hint``.

    Returns the function and what it expects, in words. Raises ``TypeError`` (at import time)
    for a type the decoder does not know, so that a new kind of field cannot go unchecked.
    """
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Literal:
        allowed = args
        expected = "one of " + ", ".join(repr(a) for a in allowed)

        def to_literal(value: object) -> object:
            for choice in allowed:
                if type(value) is type(choice) and value == choice:
                    return choice
            raise _mismatch(expected, value)

        return to_literal, expected
    if origin is types.UnionType or origin is typing.Union:
        nullable = type(None) in args
        arms = [_converter(a) for a in args if a is not type(None)]
        expected = " or ".join(words for _, words in arms) + (" or null" if nullable else "")

        def to_union(value: object) -> object:
            if value is None and nullable:
                return None
            for convert, _ in arms:
                try:
                    return convert(value)
                except _MismatchError:
                    continue
            raise _mismatch(expected, value)

        return to_union, expected
    if origin is dict and len(args) == 2:
        to_key, key_words = _converter(args[0])
        to_value, value_words = _converter(args[1])
        expected = f"an object of {_plural(args[0], key_words)} to {_plural(args[1], value_words)}"

        def to_dict(value: object) -> object:
            if not isinstance(value, dict):
                raise _mismatch(expected, value)
            out: dict[object, object] = {}
            for key, item in value.items():
                try:
                    out[to_key(key)] = to_value(item)
                except _MismatchError as error:
                    raise _MismatchError(f"entry {_describe(key)}: {error}") from None
            return out

        return to_dict, expected
    raise TypeError(f"event fields of type {hint!r} cannot be decoded")


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    convert: _Convert
    required: bool


def _field_specs(cls: type[Event]) -> tuple[_FieldSpec, ...]:
    hints = typing.get_type_hints(cls)
    return tuple(
        _FieldSpec(
            name=f.name,
            convert=_converter(hints[f.name])[0],
            required=f.default is MISSING and f.default_factory is MISSING,
        )
        for f in fields(cls)
    )


_REGISTRY: dict[str, tuple[type[Event], tuple[_FieldSpec, ...]]] = {
    cls.type: (cls, _field_specs(cls)) for cls in _EVENT_CLASSES
}


def event_from_json(obj: object) -> Event:
    """The event one JSON object of the event stream describes (the inverse of ``to_json()``).

    ``obj`` is whatever ``json.loads`` gave for one line, from a source not trusted: it must be
    an object with a known ``type`` and every field that event requires, each of its documented
    type (a number is never ``true``/``false``, nor NaN or infinite; a whole number is never
    ``1.5`` or ``1.0``; an optional field may be left out or ``null``). Keys the event does not
    have are ignored, so that a client keeps reading a stream from a newer daemon that adds keys.

    Raises :class:`EventDecodeError`, and nothing else, with one sentence when ``obj`` is not a
    valid event.
    """
    if not isinstance(obj, dict):
        raise EventDecodeError(f"event line is {_describe(obj)}, not an object")
    if "type" not in obj:
        raise EventDecodeError("event line has no 'type'")
    kind = obj["type"]
    if not isinstance(kind, str):
        raise EventDecodeError(f"event line has a bad 'type': {_mismatch('a string', kind)}")
    entry = _REGISTRY.get(kind)
    if entry is None:
        raise EventDecodeError(f"event line has unknown type {_describe(kind)}")
    cls, specs = entry
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in obj:
            if spec.required:
                raise EventDecodeError(f"event {kind!r} is missing {spec.name!r}")
            continue
        try:
            values[spec.name] = spec.convert(obj[spec.name])
        except _MismatchError as error:
            raise EventDecodeError(f"event {kind!r} has a bad {spec.name!r}: {error}") from None
    return cls(**values)
