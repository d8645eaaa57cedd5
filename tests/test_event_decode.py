"""``event_from_json``: the strict inverse of ``Event.to_json()`` for clients of the event stream.

The input is untrusted (a line read from the node daemon's socket): whatever it is, the decoder
returns an event or raises ``EventDecodeError`` with one line, never anything else.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.session.events import (
    Alarm,
    Event,
    EventDecodeError,
    Finished,
    Notice,
    PhaseChanged,
    Prompt,
    SessionStarted,
    StateChanged,
    Telemetry,
    event_from_json,
)
from profiles.errors import RelieveError

FULL: list[Event] = [
    SessionStarted(
        t=-120.0,
        profile="contrast-lower-back",
        title="Contrast therapy, lower back",
        total_s=1800.0,
        devices={"heat": "relieve Contrast Pad (C0:DE:00:00:00:01)", "cold": "manual"},
        simulated=True,
        speed=60.0,
    ),
    PhaseChanged(
        t=0.0,
        mode="heat",
        duration_s=300.0,
        celsius=42.5,
        rpm=1800,
        area="lower-back",
        label="Heat",
        index=0,
        count=6,
    ),
    Prompt(t=-31.5, text="Put the pad on your lower back.", due=0.0),
    Telemetry(
        t=1.25,
        role="heat",
        plate_celsius=41.6,
        skin_celsius=35.125,
        setpoint_celsius=42.0,
        rpm=0,
        battery=100,
    ),
    StateChanged(t=12.0, state="link-lost", reason="heat pad out of range"),
    Notice(t=1740.0, message="One minute until the massage cap.", level="info"),
    Alarm(
        t=300.5,
        priority="high",
        reason="over-temperature",
        message="The pad is too hot.",
        role="heat",
        limit_id="T1",
    ),
    Finished(
        t=1800.0,
        outcome="aborted",
        reason="over-temperature",
        delivered_s=300.5,
        devices_off=False,
        recorded=False,
    ),
]

MINIMAL: list[Event] = [
    SessionStarted(t=-1.0, profile="p", title="T", total_s=60.0),
    PhaseChanged(t=0.0, mode="off"),
    Prompt(t=5.0, text="", due=10.0),
    Telemetry(t=2.0, role="probe"),
    StateChanged(t=0.0, state="running"),
    Notice(t=3.0, message="m"),
    Alarm(t=4.0, priority="medium", reason="link-lost", message="Lost the link."),
    Finished(t=60.0, outcome="completed"),
]


def wire(event: Event) -> object:
    """The event as a client reads it: encoded, written as a JSON line, parsed."""
    return json.loads(json.dumps(event.to_json()))


def test_the_examples_cover_every_event_type() -> None:
    subclasses = set(Event.__subclasses__())
    assert {type(e) for e in FULL} == subclasses
    assert {type(e) for e in MINIMAL} == subclasses


@pytest.mark.parametrize("event", FULL + MINIMAL, ids=lambda e: f"{e.type}")
def test_round_trip_of_every_event_type(event: Event) -> None:
    decoded = event_from_json(wire(event))
    assert decoded == event
    assert type(decoded) is type(event)


def test_whole_numbers_in_float_fields_become_floats() -> None:
    decoded = event_from_json({"type": "prompt", "t": -31, "text": "x", "due": 0})
    assert decoded == Prompt(t=-31.0, text="x", due=0.0)
    assert isinstance(decoded.t, float)
    assert isinstance(decoded, Prompt)
    assert isinstance(decoded.due, float)


def decode_error(obj: object) -> str:
    with pytest.raises(EventDecodeError) as caught:
        event_from_json(obj)
    return str(caught.value)


def test_the_error_is_a_relieve_error() -> None:
    assert issubclass(EventDecodeError, RelieveError)


def test_bool_t_is_refused() -> None:
    message = decode_error({"type": "prompt", "t": True, "text": "x", "due": 0})
    assert message == "event 'prompt' has a bad 't': expected a finite number, got true"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_t_is_refused(bad: float) -> None:
    message = decode_error({"type": "prompt", "t": bad, "text": "x", "due": 0})
    assert message.startswith("event 'prompt' has a bad 't': expected a finite number, got ")


def test_nan_t_from_a_json_line_is_refused() -> None:
    obj = json.loads('{"type": "notice", "t": NaN, "message": "m"}')
    assert decode_error(obj) == "event 'notice' has a bad 't': expected a finite number, got NaN"


def test_unknown_type_is_refused() -> None:
    assert decode_error({"type": "foo", "t": 0}) == "event line has unknown type 'foo'"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"t": 0}, "event line has no 'type'"),
        ({"type": 3, "t": 0}, "event line has a bad 'type': expected a string, got 3"),
        ({"type": "event", "t": 0}, "event line has unknown type 'event'"),
        ([1, 2], "event line is a list, not an object"),
        ("started", "event line is 'started', not an object"),
        (None, "event line is null, not an object"),
    ],
)
def test_what_is_not_an_event_line(obj: object, message: str) -> None:
    assert decode_error(obj) == message


def test_phase_mode_lava_is_refused() -> None:
    message = decode_error({"type": "phase", "t": 0, "mode": "lava"})
    assert message.startswith("event 'phase' has a bad 'mode': expected one of 'heat', 'cold'")
    assert message.endswith(", got 'lava'")


def test_missing_outcome_on_finished_is_refused() -> None:
    message = decode_error({"type": "finished", "t": 1800, "delivered_s": 1800})
    assert message == "event 'finished' is missing 'outcome'"


def test_an_extra_key_is_ignored() -> None:
    obj = {"type": "finished", "t": 10, "outcome": "stopped", "new_in_v2": {"x": [1]}}
    assert event_from_json(obj) == Finished(t=10.0, outcome="stopped")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"type": "phase", "t": 0, "mode": "heat", "rpm": 1.0},
            "event 'phase' has a bad 'rpm': expected a whole number or null, got 1.0",
        ),
        (
            {"type": "telemetry", "t": 0, "role": "gun", "battery": False},
            "event 'telemetry' has a bad 'battery': expected a whole number or null, got false",
        ),
        (
            {"type": "finished", "t": 0, "outcome": "completed", "devices_off": 1},
            "event 'finished' has a bad 'devices_off': expected true or false, got 1",
        ),
        (
            {"type": "finished", "t": 0, "outcome": "completed", "delivered_s": None},
            "event 'finished' has a bad 'delivered_s': expected a finite number, got null",
        ),
        (
            {"type": "started", "t": 0, "profile": "p", "title": "T", "total_s": 1e400},
            "event 'started' has a bad 'total_s': expected a finite number, got Infinity",
        ),
        (
            {"type": "started", "t": 0, "profile": "p", "title": "T", "total_s": 10**400},
            "event 'started' has a bad 'total_s': expected a finite number,"
            " got a very large number",
        ),
        (
            {"type": "started", "t": 0, "profile": "p", "title": "T", "total_s": 1, "devices": []},
            "event 'started' has a bad 'devices': expected an object of strings to strings,"
            " got a list",
        ),
        (
            {
                "type": "started",
                "t": 0,
                "profile": "p",
                "title": "T",
                "total_s": 1,
                "devices": {"heat": 7},
            },
            "event 'started' has a bad 'devices': entry 'heat': expected a string, got 7",
        ),
        (
            {"type": "prompt", "t": 0, "text": "x" * 1000 + "\n", "due": "soon"},
            "event 'prompt' has a bad 'due': expected a finite number, got 'soon'",
        ),
        (
            {"type": "notice", "t": 0, "message": ["line one\nline two"]},
            "event 'notice' has a bad 'message': expected a string, got a list",
        ),
    ],
)
def test_bad_fields_are_named_in_one_sentence(obj: object, message: str) -> None:
    assert decode_error(obj) == message


def test_a_long_string_is_shortened_in_the_message() -> None:
    message = decode_error({"type": "alarm", "t": 0, "priority": "x\n" * 500})
    assert "\n" not in message
    assert len(message) < 200


# --- properties -----------------------------------------------------------------------------------

rounded_floats = st.floats(allow_nan=False, allow_infinity=False).map(lambda x: round(x, 3))


def strategy_for(hint: object) -> st.SearchStrategy[Any]:
    """Valid values of a field's type, with floats already rounded as ``to_json`` rounds them."""
    simple: dict[object, st.SearchStrategy[Any]] = {
        float: rounded_floats,
        int: st.integers(),
        str: st.text(),
        bool: st.booleans(),
    }
    if hint in simple:
        return simple[hint]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Literal:
        return st.sampled_from(args)
    if origin is types.UnionType:
        return st.one_of(*(st.none() if a is type(None) else strategy_for(a) for a in args))
    if origin is dict:
        return st.dictionaries(strategy_for(args[0]), strategy_for(args[1]), max_size=4)
    raise AssertionError(f"no strategy for {hint!r}")


def event_strategy(cls: type[Event]) -> st.SearchStrategy[Event]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(cls)})


events = st.one_of(*(event_strategy(cls) for cls in Event.__subclasses__()))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=12,
)


@st.composite
def mangled_events(draw: st.DrawFn) -> dict[str, object]:
    """A valid event's JSON with one key (present or not) set to junk or removed."""
    event = draw(events)
    obj: dict[str, object] = event.to_json()
    keys = ["type", *(f.name for f in dataclasses.fields(event)), draw(st.text(max_size=5))]
    key = draw(st.sampled_from(keys))
    if draw(st.booleans()):
        obj.pop(key, None)
    else:
        obj[key] = draw(json_values)
    return obj


@settings(max_examples=200, deadline=None)
@given(events)
def test_decode_of_encode_is_the_event(event: Event) -> None:
    assert event_from_json(wire(event)) == event


def check_decodes_or_refuses(obj: object) -> None:
    try:
        decoded = event_from_json(obj)
    except EventDecodeError as error:
        message = str(error)
        assert message
        assert len(message.splitlines()) == 1
    else:
        assert isinstance(decoded, Event)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_value_decodes_or_is_refused(obj: object) -> None:
    check_decodes_or_refuses(obj)


@settings(max_examples=200, deadline=None)
@given(mangled_events())
def test_a_mangled_event_decodes_or_is_refused(obj: dict[str, object]) -> None:
    check_decodes_or_refuses(obj)
