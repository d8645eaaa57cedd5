"""The MQTT topics of a node and the payloads of its commands (pure: no I/O here).

Every node publishes under ``relieve/<node>/``:

* ``status``: ``online`` / ``offline``, retained (the will is ``offline``);
* ``state``: retained JSON, what the node does now (:func:`controller.mqtt.state` builds it);
* ``telemetry/<role>``: a device's readings, at most once a second per role, not retained;
* ``event``: the session's events (alarms, prompts, started, finished ...), never retained;
* ``cmd/<command>``: commands in (``stop``, ``emergency-stop``, ``pause``, ``resume``,
  ``start``), each answered on ``cmd/result`` with ``{"command", "accepted", "reason"}``;
* ``set/profile``: the profile a ``start`` without one runs (remote start only).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from profiles.errors import RelieveError, printable

__all__ = [
    "BASE",
    "COMMANDS",
    "MAX_PAYLOAD_BYTES",
    "CommandError",
    "EmptyPayload",
    "NodeTopics",
    "StartPayload",
    "decode_command",
    "is_node_slug",
    "node_slug",
]

BASE = "relieve"
COMMANDS = ("stop", "emergency-stop", "pause", "resume", "start")
MAX_PAYLOAD_BYTES = 1024
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")


class CommandError(RelieveError):
    """A command payload the bridge refuses; the message is the ``reason`` it answers."""


def node_slug(name: str) -> str:
    """``name`` (a host name, a room) as a node id: lower-case letters, digits, ``-`` and
    ``_``, at most 64; anything else becomes ``-``. Raises when nothing usable is left."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_text.lower()).strip("-_")[:64].strip("-_")
    if not _SLUG.match(slug):
        raise RelieveError(
            f"{name!r} cannot name a node: use letters, digits, '-' or '_' (e.g. bedroom)."
        )
    return slug


def is_node_slug(text: str) -> bool:
    return bool(_SLUG.match(text))


class NodeTopics:
    """The topics of node ``node``."""

    def __init__(self, node: str) -> None:
        if not is_node_slug(node):
            raise RelieveError(f"{node!r} is not a node id; use e.g. bedroom.")
        self.node = node
        self.base = f"{BASE}/{node}"
        self.status = f"{self.base}/status"
        self.state = f"{self.base}/state"
        self.event = f"{self.base}/event"
        self.result = f"{self.base}/cmd/result"
        self.commands = f"{self.base}/cmd/+"
        self.select_profile = f"{self.base}/set/profile"  # the profile a start button runs

    def telemetry(self, role: str) -> str:
        return f"{self.base}/telemetry/{role}"

    def command(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    def command_name(self, topic: str) -> str | None:
        """The command a topic of this node carries (None: not a command topic of ours)."""
        prefix = f"{self.base}/cmd/"
        if not topic.startswith(prefix):
            return None
        name = topic[len(prefix) :]
        return name if name in COMMANDS else None


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class StartPayload(_Payload):
    """``cmd/start``: the profile to run (one of the node's ``start_profiles``); ``{}``: the
    one chosen on ``set/profile``."""

    profile: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")] | None
    ) = None


class EmptyPayload(_Payload):
    """``cmd/stop`` and the others: nothing, or ``{}``."""


def decode_command(name: str, payload: bytes) -> StartPayload | EmptyPayload:
    """A command's payload, checked strictly; :class:`CommandError` says what is wrong."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError(f"the payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    text = payload.strip()
    if name != "start" and text in (b"", b"{}"):
        return EmptyPayload()
    try:
        obj: Any = json.loads(text.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CommandError("the payload is not JSON") from None
    if not isinstance(obj, dict):
        raise CommandError("the payload is not a JSON object")
    model: type[StartPayload] | type[EmptyPayload] = (
        StartPayload if name == "start" else EmptyPayload
    )
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        where = printable(".".join(str(part) for part in error["loc"]), 60) or "the payload"
        raise CommandError(f"'{where}': {' '.join(str(error['msg']).split()).lower()}") from None


def _no_constants(name: str) -> Any:
    raise ValueError(name)
