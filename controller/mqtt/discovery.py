"""Home Assistant MQTT discovery for a node: one retained device-discovery message (pure).

Every Home Assistant detail of the bridge lives in this module: Home Assistant changes its MQTT
schema every few releases, and this is the one place to follow it. The topics and payloads it
describes are the node's own (:mod:`controller.mqtt.topics`, docs/mqtt.md); nothing here reads
or writes the network. The bridge publishes :func:`discovery_payload` as JSON, retained, on
:func:`discovery_topic`; an empty retained payload on the same topic removes the device and
every entity of it from Home Assistant.

The choices, and why:

* **Device discovery** (Home Assistant 2024.11 or later): one message on
  ``<prefix>/device/relieve_<node>/config`` carries the device (``dev``), the origin (``o``,
  required there), the options every entity shares (availability on ``relieve/<node>/status``,
  ``online`` / ``offline``; QoS 1) and the entities (``cmps``), each with its platform ``p`` and
  a stable ``unique_id`` ``relieve_<node>_<component>``. One message, so the entities appear
  and change together, and an update never leaves half a device behind.
* **Entity ids** come from ``default_entity_id`` (``sensor.relieve_<node>_state``; read from
  Home Assistant 2025.10, ignored before): ``object_id`` stopped working in 2026.4. They do not
  change when the device is renamed, so automations can name them.
* **Remote start off: its entities are removed, not just left out.** Home Assistant does not
  remove an entity that a later device message leaves out; a component given as its platform
  alone (``{"p": "button"}``) is removed, and is a no-op when it never existed. So without
  remote start the ``resume``, ``start`` and ``profile`` components are exactly that, and
  turning remote start off on a node removes its start controls from Home Assistant.
* **No heating controls but buttons.** No ``switch``, ``climate``, ``water_heater`` or
  ``number``: Home Assistant can stop, emergency-stop and pause a session (and, only with
  remote start, resume it, start the selected profile and select one of the allowed profiles);
  what a session does is the profile's, checked by the node against its safety limits.
* **Unknown is the rendered text ``None``.** Sensors, binary sensors and selects read a
  rendered ``None`` as unknown (a timestamp sensor too, since late 2024): the ends of a
  phase and of a session render ``None`` when the state has ``null``, a telemetry value absent
  from a message renders ``None``, the link is unknown while the node is idle.
* **Telemetry expires, events do not.** Telemetry arrives about once a second while a device
  is connected, so its sensors have ``expire_after`` (:data:`TELEMETRY_EXPIRE_AFTER_S`) and go
  unavailable when it stops; the state document is retained and changes on events, so its
  sensors never expire.
* **Alarms are an event entity** on the node's event topic, with event types ``high`` and
  ``medium`` and the alarm's reason and message as attributes. The template renders the JSON
  Home Assistant wants only for an alarm of those priorities, and an empty string for every
  other event on the topic (``started``, ``phase``, ``prompt`` ...): Home Assistant ignores an
  event payload that renders empty (as it ignores a retained one).
* **Entity categories:** ``diagnostic`` for the link, the gun's battery and today's exposure;
  ``config`` only on the profile select (Home Assistant refuses ``config`` on sensors and binary
  sensors).
* **Enum sensors** list every value they can take (``options``): the session state, and the
  phase with ``none`` for no phase.

The templates are Jinja2 as Home Assistant renders them: ``value_json`` is the payload's JSON,
the result is stripped, ``to_json`` is Home Assistant's filter. They use the node's documented
keys only and stay simple on purpose (tests/test_mqtt_discovery.py renders every one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from controller.mqtt.topics import NodeTopics, is_node_slug

__all__ = [
    "ACTIVE_STATES",
    "ALARM_PRIORITIES",
    "DEFAULT_PREFIX",
    "MIN_HOME_ASSISTANT",
    "NO_PHASE",
    "PHASES",
    "REMOTE_START_COMPONENTS",
    "STATES",
    "TELEMETRY_EXPIRE_AFTER_S",
    "discovery_payload",
    "discovery_topic",
]

DEFAULT_PREFIX: Final = "homeassistant"
MIN_HOME_ASSISTANT: Final = "2024.11"  # device discovery
TELEMETRY_EXPIRE_AFTER_S: Final = 30  # telemetry comes about once a second while connected

STATES: Final = ("idle", "starting", "preconditioning", "running", "paused", "link-lost")
ACTIVE_STATES: Final = ("starting", "preconditioning", "running", "paused", "link-lost")
PHASES: Final = ("heat", "cold", "massage", "stretch", "preheat", "precool", "off")
NO_PHASE: Final = "none"
ALARM_PRIORITIES: Final = ("high", "medium")
# Present only with remote start; without it, each is a removal: its platform alone.
REMOTE_START_COMPONENTS: Final = {"resume": "button", "start": "button", "profile": "select"}

MANUFACTURER: Final = "relieve"
MODEL: Final = "relieve node"
ORIGIN: Final = "relieve"
QOS: Final = 1
PRESS: Final = "{}"  # the command payloads are JSON objects; {} is "no arguments"

_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
_PROFILE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_RUNS = re.compile(r"[-_]+")

# --- value templates (Jinja2, rendered by Home Assistant) ---------------------------------------


def _jinja_list(items: Sequence[str]) -> str:
    """A Jinja list literal of plain words (no quotes or backslashes in them: checked)."""
    for item in items:
        if not re.fullmatch(r"[a-z0-9-]+", item):
            raise ValueError(f"{item!r} cannot go in a template list")
    return "[" + ", ".join(f"'{item}'" for item in items) + "]"


def _value(key: str) -> str:
    """A key of the payload; its JSON null renders ``None`` (unknown)."""
    return f"{{{{ value_json.{key} }}}}"


def _reading(key: str) -> str:
    """A key a message may leave out: absent or null, it renders ``None`` (unknown)."""
    return f"{{{{ value_json.{key} | default(None) }}}}"


STATE_TEMPLATE: Final = _value("state")
STATE_ATTRIBUTES_TEMPLATE: Final = (
    "{{ {'profile': value_json.profile, 'title': value_json.title, "
    "'phase_label': value_json.phase_label, 'last_outcome': value_json.last_outcome}"
    " | to_json }}"
)
PHASE_TEMPLATE: Final = f"{{{{ value_json.phase or '{NO_PHASE}' }}}}"
RUNNING_TEMPLATE: Final = (
    f"{{{{ 'ON' if value_json.state in {_jinja_list(ACTIVE_STATES)} else 'OFF' }}}}"
)
PROBLEM_TEMPLATE: Final = "{{ 'ON' if value_json.problem else 'OFF' }}"
LINK_TEMPLATE: Final = (
    "{{ 'None' if value_json.state == 'idle' or value_json.links_ok is none"
    " else ('ON' if value_json.links_ok else 'OFF') }}"
)
ALARM_TEMPLATE: Final = (
    "{{ {'event_type': value_json.priority, 'reason': value_json.reason | default(None), "
    "'message': value_json.message | default(None)} | to_json"
    f" if value_json.type == 'alarm' and value_json.priority in {_jinja_list(ALARM_PRIORITIES)}"
    " else '' }}"
)


def _profile_template(profiles: Sequence[str]) -> str:
    """The selected profile when it is one of the select's options, else unknown."""
    return (
        f"{{{{ value_json.selected_profile if value_json.selected_profile in "
        f"{_jinja_list(profiles)} else 'None' }}}}"
    )


# --- the message ---------------------------------------------------------------------------------


def discovery_topic(node: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Where node ``node``'s discovery message is published (retained):
    ``<prefix>/device/relieve_<node>/config``."""
    _check_node(node)
    if not _PREFIX.match(prefix):
        raise ValueError(f"{prefix!r} is not a discovery prefix; use e.g. homeassistant")
    return f"{prefix}/device/{_device_id(node)}/config"


def discovery_payload(
    node: str,
    *,
    version: str,
    remote_start: bool = False,
    start_profiles: Sequence[str] = (),
    name: str | None = None,
) -> dict[str, Any]:
    """Node ``node``'s device-discovery message, to publish as JSON (retained).

    ``version`` is relieve's; ``name`` the device's name in Home Assistant (default
    ``relieve <node>``). ``remote_start`` adds the resume and start buttons and the profile
    select, whose options are ``start_profiles`` (at least one, and only with remote start, as
    the ``[mqtt]`` table requires). The same arguments give the same dictionary, keys in the same
    order.
    """
    _check_node(node)
    if not version.strip():
        raise ValueError("the version is empty")
    if name is not None and not name.strip():
        raise ValueError("the device name is empty")
    profiles = list(dict.fromkeys(start_profiles))
    for profile in profiles:
        if not isinstance(profile, str) or not _PROFILE.match(profile):
            raise ValueError(f"{profile!r} is not a profile name")
    if remote_start and not profiles:
        raise ValueError("remote start needs at least one start profile")
    if profiles and not remote_start:
        raise ValueError("start profiles are given but remote start is off")

    topics = NodeTopics(node)
    build = _Builder(node)
    state = topics.state

    components: dict[str, dict[str, Any]] = {
        "state": build.entity(
            "sensor",
            "state",
            "State",
            device_class="enum",
            options=list(STATES),
            icon="mdi:progress-clock",
            state_topic=state,
            value_template=STATE_TEMPLATE,
            json_attributes_topic=state,
            json_attributes_template=STATE_ATTRIBUTES_TEMPLATE,
        ),
        "phase": build.entity(
            "sensor",
            "phase",
            "Phase",
            device_class="enum",
            options=[*PHASES, NO_PHASE],
            icon="mdi:thermometer-lines",
            state_topic=state,
            value_template=PHASE_TEMPLATE,
        ),
        "phase_ends": build.entity(
            "sensor",
            "phase_ends",
            "Phase ends",
            device_class="timestamp",
            state_topic=state,
            value_template=_value("phase_ends"),
        ),
        "session_ends": build.entity(
            "sensor",
            "session_ends",
            "Session ends",
            device_class="timestamp",
            state_topic=state,
            value_template=_value("session_ends"),
        ),
        **{
            f"{role}_plate": build.telemetry(
                f"{role}_plate",
                f"{label} plate temperature",
                topics.telemetry(role),
                "plate_celsius",
                device_class="temperature",
                unit_of_measurement="°C",
                suggested_display_precision=1,
            )
            for role, label in (("heat", "Heat"), ("cold", "Cold"), ("pad", "Pad"))
        },
        "skin": build.telemetry(
            "skin",
            "Skin temperature",
            topics.telemetry("probe"),
            "skin_celsius",
            device_class="temperature",
            unit_of_measurement="°C",
            suggested_display_precision=1,
        ),
        "gun_speed": build.telemetry(
            "gun_speed",
            "Gun speed",
            topics.telemetry("gun"),
            "rpm",
            unit_of_measurement="rpm",
            icon="mdi:rotate-right",
        ),
        "gun_battery": build.telemetry(
            "gun_battery",
            "Gun battery",
            topics.telemetry("gun"),
            "battery",
            entity_category="diagnostic",
            device_class="battery",
            unit_of_measurement="%",
        ),
        "running": build.entity(
            "binary_sensor",
            "running",
            "Session running",
            device_class="running",
            state_topic=state,
            value_template=RUNNING_TEMPLATE,
        ),
        "problem": build.entity(
            "binary_sensor",
            "problem",
            "Problem",
            device_class="problem",
            state_topic=state,
            value_template=PROBLEM_TEMPLATE,
        ),
        "link": build.entity(
            "binary_sensor",
            "link",
            "Device link",
            entity_category="diagnostic",
            device_class="connectivity",
            state_topic=state,
            value_template=LINK_TEMPLATE,
        ),
        "alarm": build.entity(
            "event",
            "alarm",
            "Alarm",
            event_types=list(ALARM_PRIORITIES),
            icon="mdi:alarm-light",
            state_topic=topics.event,
            value_template=ALARM_TEMPLATE,
        ),
        **{
            f"{kind}_today": build.entity(
                "sensor",
                f"{kind}_today",
                f"{kind.capitalize()} today",
                entity_category="diagnostic",
                device_class="duration",
                state_class="total_increasing",
                unit_of_measurement="min",
                suggested_display_precision=0,
                state_topic=state,
                value_template=_reading(f"exposure_today.{kind}_min"),
            )
            for kind in ("heat", "cold", "massage")
        },
        "stop": build.button("stop", "Stop", topics.command("stop"), "mdi:stop"),
        "emergency_stop": build.button(
            "emergency_stop",
            "Emergency stop",
            topics.command("emergency-stop"),
            "mdi:alert-octagon",
        ),
        "pause": build.button("pause", "Pause", topics.command("pause"), "mdi:pause"),
    }
    if remote_start:
        components["resume"] = build.button(
            "resume", "Resume", topics.command("resume"), "mdi:play"
        )
        components["start"] = build.button(
            "start", "Start", topics.command("start"), "mdi:play-circle"
        )
        components["profile"] = build.entity(
            "select",
            "profile",
            "Profile",
            entity_category="config",
            options=profiles,
            icon="mdi:format-list-bulleted",
            state_topic=state,
            value_template=_profile_template(profiles),
            command_topic=f"{topics.base}/set/profile",
        )
    else:
        components.update({key: {"p": p} for key, p in REMOTE_START_COMPONENTS.items()})

    return {
        "dev": {
            "identifiers": [_device_id(node)],
            "name": name if name is not None else f"relieve {node}",
            "manufacturer": MANUFACTURER,
            "model": MODEL,
            "sw_version": version,
        },
        "o": {"name": ORIGIN, "sw": version},
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": QOS,
        "cmps": components,
    }


class _Builder:
    """The components of one node: ids, entity ids and the common keys, in one order."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.entity_node = _RUNS.sub("_", node)  # entity ids: letters, digits, single "_"

    def entity(self, platform: str, component: str, name: str, **options: Any) -> dict[str, Any]:
        return {
            "p": platform,
            "name": name,
            "unique_id": f"{_device_id(self.node)}_{component}",
            "default_entity_id": f"{platform}.relieve_{self.entity_node}_{component}",
            **options,
        }

    def telemetry(
        self, component: str, name: str, topic: str, key: str, **options: Any
    ) -> dict[str, Any]:
        """A sensor of one reading of a telemetry topic: a measurement that expires."""
        return self.entity(
            "sensor",
            component,
            name,
            **options,
            state_class="measurement",
            state_topic=topic,
            value_template=_reading(key),
            expire_after=TELEMETRY_EXPIRE_AFTER_S,
        )

    def button(self, component: str, name: str, topic: str, icon: str) -> dict[str, Any]:
        return self.entity(
            "button", component, name, icon=icon, command_topic=topic, payload_press=PRESS
        )


def _device_id(node: str) -> str:
    return f"relieve_{node}"


def _check_node(node: str) -> None:
    if not is_node_slug(node):
        raise ValueError(f"{node!r} is not a node id; use e.g. bedroom")
