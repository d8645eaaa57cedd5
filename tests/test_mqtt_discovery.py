"""Home Assistant discovery (controller/mqtt/discovery.py): golden payloads, the structure a
reviewer checks, and every value template rendered against the node's own payloads.

Goldens: ``tests/golden/discovery-bedroom.json`` (node ``bedroom``, no remote start) and
``tests/golden/discovery-bedroom-remote.json`` (remote start with the profiles
``contrast-quick`` and ``heat-soak``), compared exactly: pretty-printed JSON (two-space indent,
UTF-8, a final newline) in the module's key order. After a deliberate change, regenerate them and
read the diff before committing it:

    RELIEVE_UPDATE_GOLDENS=1 .venv/bin/python -m pytest -q tests/test_mqtt_discovery.py

Templates: rendered as Home Assistant renders a value template (sandboxed Jinja2, ``value`` and
``value_json`` from the payload, its ``to_json`` filter, the result stripped); jinja2 is a
development dependency of relieve for these tests only.

Every rendered value is then read as Home Assistant's MQTT platforms read it (``None`` is
unknown; an enum, a select, a binary sensor, a timestamp, a number or an event must be one it
accepts), so a template that would make Home Assistant log a warning fails here.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2.sandbox
import pytest

from controller.mqtt.discovery import (
    ACTIVE_STATES,
    ALARM_PRIORITIES,
    NO_PHASE,
    PHASES,
    REMOTE_START_COMPONENTS,
    STATES,
    TELEMETRY_EXPIRE_AFTER_S,
    discovery_payload,
    discovery_topic,
)
from controller.mqtt.topics import NodeTopics, StartPayload, decode_command

GOLDEN = Path(__file__).parent / "golden"
UPDATE_VARIABLE = "RELIEVE_UPDATE_GOLDENS"
REGENERATE = f"{UPDATE_VARIABLE}=1 .venv/bin/python -m pytest -q tests/test_mqtt_discovery.py"

NODE = "bedroom"
VERSION = "0.1.0"
PROFILES = ["contrast-quick", "heat-soak"]
LOCAL: dict[str, Any] = {"node": NODE, "version": VERSION}
REMOTE: dict[str, Any] = {**LOCAL, "remote_start": True, "start_profiles": PROFILES}
GOLDENS: dict[str, dict[str, Any]] = {
    "discovery-bedroom.json": LOCAL,
    "discovery-bedroom-remote.json": REMOTE,
}

ROLES = ("heat", "cold", "pad", "gun", "probe")
FORBIDDEN_PLATFORMS = {"switch", "climate", "water_heater", "number"}
# Home Assistant's entity id: <domain>.<object id>, lower-case letters, digits and single "_".
ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")


def payload(**kwargs: Any) -> dict[str, Any]:
    return discovery_payload(**{**LOCAL, **kwargs})


def remote_payload() -> dict[str, Any]:
    return discovery_payload(**REMOTE)


def entities(message: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The components that configure an entity (not the removals: a platform alone)."""
    return {key: c for key, c in message["cmps"].items() if set(c) != {"p"}}


def walk_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from walk_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_keys(item)


# --- goldens -------------------------------------------------------------------------------------


def pretty(message: Mapping[str, Any]) -> str:
    return json.dumps(message, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("file_name", sorted(GOLDENS))
def test_the_payload_is_its_golden(file_name: str) -> None:
    text = pretty(discovery_payload(**GOLDENS[file_name]))
    golden = GOLDEN / file_name
    if os.environ.get(UPDATE_VARIABLE) == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8", newline="\n")
        return
    if not golden.is_file():
        pytest.fail(f"no golden tests/golden/{file_name}; to make it: {REGENERATE}", pytrace=False)
    expected = golden.read_text(encoding="utf-8")
    if text != expected:
        diff = "\n".join(
            difflib.unified_diff(
                expected.splitlines(), text.splitlines(), "golden", "now", lineterm="", n=2
            )
        )
        pytest.fail(
            f"the payload differs from tests/golden/{file_name}:\n{diff}\n"
            f"If the change is meant, regenerate: {REGENERATE}",
            pytrace=False,
        )


def test_the_payload_is_deterministic_and_plain_json() -> None:
    first, second = remote_payload(), remote_payload()
    assert first == second
    assert pretty(first) == pretty(second)
    assert json.loads(json.dumps(first)) == first  # nothing but JSON types


# --- topic and device ----------------------------------------------------------------------------


def test_the_discovery_topic_is_the_device_topic() -> None:
    assert discovery_topic(NODE) == "homeassistant/device/relieve_bedroom/config"
    assert discovery_topic("living-room", "ha/test") == "ha/test/device/relieve_living-room/config"


@pytest.mark.parametrize(
    "prefix", ["", "/homeassistant", "homeassistant/", "home assistant", "a/+"]
)
def test_a_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        discovery_topic(NODE, prefix)


@pytest.mark.parametrize("node", ["", "Bedroom", "bed room", "-bedroom", "bed/room", "bed+"])
def test_a_bad_node_is_refused(node: str) -> None:
    with pytest.raises(ValueError, match="node"):
        discovery_topic(node)
    with pytest.raises(ValueError, match="node"):
        discovery_payload(node, version=VERSION)


def test_device_origin_and_shared_options() -> None:
    message = payload()
    assert list(message) == [
        "dev",
        "o",
        "availability_topic",
        "payload_available",
        "payload_not_available",
        "qos",
        "cmps",
    ]
    assert message["dev"] == {
        "identifiers": ["relieve_bedroom"],
        "name": "relieve bedroom",
        "manufacturer": "relieve",
        "model": "relieve node",
        "sw_version": VERSION,
    }
    assert message["o"] == {"name": "relieve", "sw": VERSION}
    assert message["availability_topic"] == NodeTopics(NODE).status
    assert (message["payload_available"], message["payload_not_available"]) == ("online", "offline")
    assert message["qos"] in (0, 1, 2)
    assert payload(name="Bedroom relief")["dev"]["name"] == "Bedroom relief"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"version": " "}, "version"),
        ({"name": ""}, "name"),
        ({"remote_start": True}, "at least one"),
        ({"start_profiles": ["heat-soak"]}, "remote start is off"),
        ({"remote_start": True, "start_profiles": ["Heat Soak"]}, "profile name"),
        ({"remote_start": True, "start_profiles": ["it's"]}, "profile name"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        payload(**kwargs)


def test_duplicate_start_profiles_are_one_option() -> None:
    message = payload(remote_start=True, start_profiles=["heat-soak", "heat-soak", "a"])
    assert message["cmps"]["profile"]["options"] == ["heat-soak", "a"]


# --- the components ------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [payload, remote_payload])
def test_every_component_has_a_platform_and_a_stable_unique_id(
    make: Callable[[], dict[str, Any]],
) -> None:
    message = make()
    unique_ids = []
    for key, component in message["cmps"].items():
        assert re.fullmatch(r"[a-z0-9_]+", key), key
        assert isinstance(component.get("p"), str), key
        if key not in entities(message):
            continue
        assert component["unique_id"] == f"relieve_{NODE}_{key}"
        assert component["unique_id"].startswith(f"relieve_{NODE}_")
        assert component["default_entity_id"] == f"{component['p']}.relieve_{NODE}_{key}"
        assert ENTITY_ID.match(component["default_entity_id"]), key
        assert component["name"], key
        unique_ids.append(component["unique_id"])
    assert len(unique_ids) == len(set(unique_ids))


def test_entity_ids_of_a_node_with_a_dash_use_underscores() -> None:
    message = payload(node="living--room_2")
    for key, component in entities(message).items():
        assert component["unique_id"] == f"relieve_living--room_2_{key}"
        assert component["default_entity_id"].endswith(f".relieve_living_room_2_{key}")
        assert ENTITY_ID.match(component["default_entity_id"]), key


@pytest.mark.parametrize("make", [payload, remote_payload])
def test_nothing_uses_object_id(make: Callable[[], dict[str, Any]]) -> None:
    keys = set(walk_keys(make()))
    assert not keys & {"object_id", "obj_id"}


@pytest.mark.parametrize("make", [payload, remote_payload])
def test_no_heating_controls_and_no_config_category_on_sensors(
    make: Callable[[], dict[str, Any]],
) -> None:
    for key, component in make()["cmps"].items():
        assert component["p"] not in FORBIDDEN_PLATFORMS, key
        category = component.get("entity_category")
        assert category in (None, "diagnostic", "config"), key
        if component["p"] in ("sensor", "binary_sensor"):
            assert category != "config", key


@pytest.mark.parametrize("make", [payload, remote_payload])
def test_only_telemetry_sensors_expire(make: Callable[[], dict[str, Any]]) -> None:
    telemetry = {NodeTopics(NODE).telemetry(role) for role in ROLES}
    expiring = set()
    for key, component in entities(make()).items():
        if component.get("state_topic") in telemetry:
            assert component["p"] == "sensor", key
            assert component["expire_after"] == TELEMETRY_EXPIRE_AFTER_S, key
            assert component["state_class"] == "measurement", key
            expiring.add(key)
        else:
            assert "expire_after" not in component, key
    assert expiring == {
        "heat_plate",
        "cold_plate",
        "pad_plate",
        "skin",
        "gun_speed",
        "gun_battery",
    }


@pytest.mark.parametrize("make", [payload, remote_payload])
def test_every_topic_is_one_of_the_nodes(make: Callable[[], dict[str, Any]]) -> None:
    topics = NodeTopics(NODE)
    states = {topics.state, topics.event, *(topics.telemetry(role) for role in ROLES)}
    commands = {topics.command(name) for name in ("stop", "emergency-stop", "pause")}
    commands |= {topics.command(name) for name in ("resume", "start")}
    commands.add(f"{topics.base}/set/profile")
    for key, component in make()["cmps"].items():
        for option, topic in component.items():
            if option.endswith("topic"):
                allowed = commands if option == "command_topic" else states
                assert topic in allowed, (key, option, topic)


def test_without_remote_start_only_stop_emergency_stop_and_pause_command() -> None:
    message = payload()
    topics = NodeTopics(NODE)
    buttons = {k: c for k, c in entities(message).items() if "command_topic" in c}
    assert {k: c["command_topic"] for k, c in buttons.items()} == {
        "stop": topics.command("stop"),
        "emergency_stop": topics.command("emergency-stop"),
        "pause": topics.command("pause"),
    }
    assert all(c["p"] == "button" and c["payload_press"] == "{}" for c in buttons.values())
    # remote start's components are removals (their platform alone): Home Assistant removes
    # them when a node turns remote start off, and ignores them when they never existed
    for key, platform in REMOTE_START_COMPONENTS.items():
        assert message["cmps"][key] == {"p": platform}


def test_with_remote_start_resume_start_and_the_profile_select_are_there() -> None:
    message = remote_payload()
    topics = NodeTopics(NODE)
    cmps = message["cmps"]
    assert set(REMOTE_START_COMPONENTS) <= set(entities(message))
    for key, platform in REMOTE_START_COMPONENTS.items():
        assert cmps[key]["p"] == platform
    assert cmps["resume"]["command_topic"] == topics.command("resume")
    assert cmps["start"]["command_topic"] == topics.command("start")
    assert cmps["start"]["payload_press"] == "{}"  # the selected profile
    select = cmps["profile"]
    assert select["command_topic"] == f"{topics.base}/set/profile"
    assert "command_template" not in select  # the option itself is the payload: a profile name
    assert select["state_topic"] == topics.state
    assert select["options"] == PROFILES
    assert select["entity_category"] == "config"
    # the same components as without remote start, and these three
    assert set(entities(message)) == set(entities(payload())) | set(REMOTE_START_COMPONENTS)


@pytest.mark.parametrize("name", ["stop", "emergency-stop", "pause", "resume"])
def test_the_buttons_payload_is_a_command_the_bridge_accepts(name: str) -> None:
    button = remote_payload()["cmps"][name.replace("-", "_")]
    assert button["command_topic"] == NodeTopics(NODE).command(name)
    decode_command(name, button["payload_press"].encode())


def test_the_start_buttons_payload_is_a_start_of_the_selected_profile() -> None:
    start = decode_command("start", remote_payload()["cmps"]["start"]["payload_press"].encode())
    assert isinstance(start, StartPayload)
    assert start.profile is None  # the bridge runs the profile chosen on set/profile


def test_the_component_kinds() -> None:
    cmps = remote_payload()["cmps"]
    assert cmps["state"]["device_class"] == "enum"
    assert cmps["state"]["options"] == list(STATES)
    assert cmps["phase"]["device_class"] == "enum"
    assert cmps["phase"]["options"] == [*PHASES, NO_PHASE]
    for key in ("phase_ends", "session_ends"):
        assert cmps[key]["device_class"] == "timestamp"
    for key in ("heat_plate", "cold_plate", "pad_plate", "skin"):
        assert (cmps[key]["device_class"], cmps[key]["unit_of_measurement"]) == (
            "temperature",
            "°C",
        )
    assert cmps["gun_speed"]["unit_of_measurement"] == "rpm"
    assert (cmps["gun_battery"]["device_class"], cmps["gun_battery"]["unit_of_measurement"]) == (
        "battery",
        "%",
    )
    for kind in ("heat", "cold", "massage"):
        today = cmps[f"{kind}_today"]
        assert (today["device_class"], today["unit_of_measurement"]) == ("duration", "min")
        assert today["entity_category"] == "diagnostic"
    assert cmps["running"]["p"] == "binary_sensor"
    assert cmps["problem"]["device_class"] == "problem"
    assert cmps["link"]["device_class"] == "connectivity"
    assert cmps["alarm"]["p"] == "event"
    assert cmps["alarm"]["event_types"] == list(ALARM_PRIORITIES)
    assert cmps["alarm"]["state_topic"] == NodeTopics(NODE).event
    # Home Assistant refuses options together with a unit or a state class
    for component in cmps.values():
        if "options" in component and component["p"] == "sensor":
            assert component["device_class"] == "enum"
            assert not {"unit_of_measurement", "state_class"} & set(component)


# --- the templates, rendered with Jinja as Home Assistant renders them ----------------------------


def _to_json(value: Any) -> str:
    """Home Assistant's ``to_json`` (orjson: compact, UTF-8 kept)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _variables(message: str) -> dict[str, Any]:
    """What Home Assistant gives a value template: the payload, and its JSON when it is JSON."""
    variables: dict[str, Any] = {"value": message}
    with contextlib.suppress(ValueError):
        variables["value_json"] = json.loads(message)
    return variables


def render(template: str, message: str) -> str:
    """``template`` rendered on the payload ``message`` as Home Assistant renders it: a
    sandboxed Jinja with ``value``, ``value_json`` and ``to_json``, the result stripped."""
    environment = jinja2.sandbox.ImmutableSandboxedEnvironment()
    environment.filters["to_json"] = _to_json
    return str(environment.from_string(template).render(**_variables(message))).strip()


# --- sample payloads of the node -----------------------------------------------------------------


RUNNING_STATE: dict[str, Any] = {
    "state": "running",
    "profile": "contrast-quick",
    "title": "Contrast, quick (3 rounds, 42 °C)",
    "phase": "heat",
    "phase_label": "Heat 1 of 3",
    "phase_ends": "2026-12-04T21:05:00+00:00",
    "session_ends": "2026-12-04T21:20:00+00:00",
    "devices": {"heat": {"name": "relieve Heat Pad (C0:DE:00:00:00:02)", "link": "linked"}},
    "links_ok": True,
    "problem": False,
    "alarm": None,
    "exposure_today": {"heat_min": 12.0, "cold_min": 0.0, "massage_min": 5.0},
    "last_outcome": None,
    "selected_profile": "contrast-quick",
    "remote_start": True,
    "armed_until": None,
}
IDLE_STATE: dict[str, Any] = {
    **RUNNING_STATE,
    "state": "idle",
    "profile": None,
    "title": None,
    "phase": None,
    "phase_label": None,
    "phase_ends": None,
    "session_ends": None,
    "devices": {},
    "exposure_today": {"heat_min": 0.0, "cold_min": 0.0, "massage_min": 0.0},
    "last_outcome": "completed",
    "selected_profile": None,
    "remote_start": False,
}
STATES_SAMPLES: dict[str, dict[str, Any]] = {
    "idle": IDLE_STATE,
    "starting": {**RUNNING_STATE, "state": "starting", "phase": None, "phase_ends": None},
    "preconditioning": {**RUNNING_STATE, "state": "preconditioning", "phase": "preheat"},
    "running": RUNNING_STATE,
    "paused": {**RUNNING_STATE, "state": "paused", "phase_ends": None},
    "link-lost": {
        **RUNNING_STATE,
        "state": "link-lost",
        "devices": {"heat": {"name": "relieve Heat Pad", "link": "lost"}},
        "links_ok": False,
        "problem": True,
    },
    "alarm": {**RUNNING_STATE, "problem": True, "alarm": "over-temperature", "phase": "off"},
    "idle, links unknown": {**IDLE_STATE, "links_ok": None, "selected_profile": "heat-soak"},
    "another profile selected": {**IDLE_STATE, "selected_profile": "ice-bath"},
    "no exposure known": {**IDLE_STATE, "exposure_today": None},
}
TELEMETRY_SAMPLES: dict[str, dict[str, Any]] = {
    "everything": {
        "plate_celsius": 41.5,
        "skin_celsius": 36.2,
        "setpoint_celsius": 42.0,
        "rpm": 2400,
        "battery": 80,
    },
    "nothing": {},
    "nulls": {"plate_celsius": None, "skin_celsius": None, "rpm": None, "battery": None},
    "a setpoint only": {"setpoint_celsius": 12.0},
}
EVENT_SAMPLES: dict[str, dict[str, Any]] = {
    "high alarm": {
        "type": "alarm",
        "priority": "high",
        "reason": "over-temperature",
        "message": "The heat pad is at 46 °C: every device is off.",
        "device": "heat",
    },
    "medium alarm": {
        "type": "alarm",
        "priority": "medium",
        "reason": "link-lost",
        "message": "The cold pack's link was lost; it is off.",
    },
    "alarm without a priority we show": {"type": "alarm", "priority": "low", "reason": "x"},
    "started": {"type": "started", "profile": "contrast-quick"},
    "phase": {"type": "phase", "phase": "cold", "label": "Cold 1 of 3"},
    "prompt": {"type": "prompt", "message": "Turn over", "priority": "high"},
    "finished": {"type": "finished", "outcome": "completed"},
}


def samples_for(component: Mapping[str, Any]) -> dict[str, str]:
    """The node's payloads on the component's state topic, by name, as JSON text."""
    topic = component["state_topic"]
    topics = NodeTopics(NODE)
    if topic == topics.state:
        chosen = STATES_SAMPLES
    elif topic == topics.event:
        chosen = EVENT_SAMPLES
    else:
        chosen = TELEMETRY_SAMPLES
    return {name: json.dumps(sample) for name, sample in chosen.items()}


def templates(message: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(component, option, template) of every template in the message."""
    for key, component in message["cmps"].items():
        for option, value in component.items():
            if option.endswith("template"):
                yield key, option, value


def home_assistant_reads(component: Mapping[str, Any], option: str, rendered: str) -> Any:
    """What Home Assistant's MQTT platform makes of a rendered value (None: unknown, or for an
    event, ignored); fails the test where Home Assistant would log a warning."""
    if option == "json_attributes_template":
        attributes = json.loads(rendered)
        assert isinstance(attributes, dict)
        return attributes
    platform = component["p"]
    if platform == "event":
        if rendered in ("", "None", "{}"):
            return None  # "Ignoring empty payload"
        event = json.loads(rendered)
        assert event["event_type"] in component["event_types"], rendered
        return event
    if platform == "binary_sensor":
        on, off = component.get("payload_on", "ON"), component.get("payload_off", "OFF")
        assert rendered in (on, off, "None"), rendered
        return None if rendered == "None" else rendered == on
    if platform == "select":
        if rendered.lower() == "none":
            return None
        assert rendered in component["options"], rendered
        return rendered
    assert platform == "sensor"
    if rendered == "None":
        return None
    if component.get("device_class") == "timestamp":
        moment = datetime.fromisoformat(rendered)
        assert moment.tzinfo is not None, rendered
        return moment
    if "options" in component:
        assert rendered in component["options"], rendered
        return rendered
    return float(rendered)  # a number: unit or state class (an empty one would be ignored)


# --- the templates: rendered ---------------------------------------------------------------------


def _every_rendering() -> Iterator[tuple[str, str, str, str, str]]:
    message = remote_payload()
    for key, option, template in templates(message):
        for name, sample in samples_for(message["cmps"][key]).items():
            yield key, option, template, name, sample


@pytest.mark.parametrize("key", sorted({key for key, _, _ in templates(remote_payload())}))
def test_every_template_gives_home_assistant_a_value_it_reads(key: str) -> None:
    message = remote_payload()
    component = message["cmps"][key]
    for option, template in ((o, t) for k, o, t in templates(message) if k == key):
        for name, sample in samples_for(component).items():
            rendered = render(template, sample)
            try:
                home_assistant_reads(component, option, rendered)
            except (AssertionError, ValueError, KeyError) as error:
                pytest.fail(f"{key}.{option} on {name}: {rendered!r} ({error!r})")


def test_the_state_templates_give_the_expected_values() -> None:
    cmps = remote_payload()["cmps"]

    def value(key: str, sample: str) -> str:
        return render(cmps[key]["value_template"], json.dumps(STATES_SAMPLES[sample]))

    for state in STATES:
        assert value("state", state) == state
        assert value("running", state) == ("ON" if state in ACTIVE_STATES else "OFF")
    assert value("phase", "running") == "heat"
    assert value("phase", "starting") == NO_PHASE
    assert value("phase", "alarm") == "off"
    assert value("phase_ends", "running") == "2026-12-04T21:05:00+00:00"
    assert value("phase_ends", "idle") == "None"
    assert value("session_ends", "idle") == "None"
    assert value("problem", "running") == "OFF"
    assert value("problem", "alarm") == "ON"
    assert value("link", "running") == "ON"
    assert value("link", "link-lost") == "OFF"
    assert value("link", "idle") == "None"
    assert value("link", "idle, links unknown") == "None"
    assert value("heat_today", "running") == "12.0"
    assert value("massage_today", "running") == "5.0"
    assert value("heat_today", "no exposure known") == "None"
    assert value("profile", "running") == "contrast-quick"
    assert value("profile", "idle, links unknown") == "heat-soak"
    assert value("profile", "idle") == "None"
    assert value("profile", "another profile selected") == "None"  # not an option: unknown
    attributes = render(
        cmps["state"]["json_attributes_template"], json.dumps(STATES_SAMPLES["running"])
    )
    assert json.loads(attributes) == {
        "profile": "contrast-quick",
        "title": "Contrast, quick (3 rounds, 42 °C)",
        "phase_label": "Heat 1 of 3",
        "last_outcome": None,
    }


def test_the_telemetry_templates_give_the_expected_values() -> None:
    cmps = remote_payload()["cmps"]
    everything, nothing, nulls = (
        json.dumps(TELEMETRY_SAMPLES[name]) for name in ("everything", "nothing", "nulls")
    )
    expected = {
        "heat_plate": "41.5",
        "cold_plate": "41.5",
        "pad_plate": "41.5",
        "skin": "36.2",
        "gun_speed": "2400",
        "gun_battery": "80",
    }
    for key, reading in expected.items():
        assert render(cmps[key]["value_template"], everything) == reading
        assert render(cmps[key]["value_template"], nothing) == "None"  # absent: unknown
        assert render(cmps[key]["value_template"], nulls) == "None"


def test_the_alarm_template_passes_alarms_and_nothing_else() -> None:
    template = remote_payload()["cmps"]["alarm"]["value_template"]
    high = json.loads(render(template, json.dumps(EVENT_SAMPLES["high alarm"])))
    assert high == {
        "event_type": "high",
        "reason": "over-temperature",
        "message": "The heat pad is at 46 °C: every device is off.",
    }
    medium = json.loads(render(template, json.dumps(EVENT_SAMPLES["medium alarm"])))
    assert medium["event_type"] == "medium"
    assert medium["reason"] == "link-lost"
    for name in ("alarm without a priority we show", "started", "phase", "prompt", "finished"):
        assert render(template, json.dumps(EVENT_SAMPLES[name])) == "", name
    bare = json.loads(render(template, '{"type": "alarm", "priority": "high"}'))
    assert bare == {"event_type": "high", "reason": None, "message": None}
