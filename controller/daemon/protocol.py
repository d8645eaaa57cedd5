"""The node daemon's control protocol: JSON lines over a unix socket (pure: no I/O here).

A client writes one request per line; the daemon writes lines of three shapes, in order:

* a **reply** to each request, ``{"reply": <verb>, "id": <the request's id>, "ok": true, ...}``
  or ``{"reply": <verb>, "ok": false, "error": "<one sentence>", "code": "<kind>"}``;
* the session's **events**, exactly as ``relieve run --json`` prints them (they have ``type``);
* a **question** while a session runs (``{"question": n, "text": "..."}``), which an attached
  client answers with an ``answer`` request.

Every request is an object with ``request`` (the verb) and optionally ``id`` (a number or a
short string, echoed in the reply). Unknown keys, wrong types, numbers that are not finite and
lines longer than :data:`MAX_LINE_BYTES` are refused with an error reply; they change nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from profiles.errors import RelieveError, printable

__all__ = [
    "CONFIRMATION_IDS",
    "MAX_LINE_BYTES",
    "SOCKET_NAME",
    "AnswerRequest",
    "ArmRequest",
    "AttachRequest",
    "CheckRequest",
    "ControlRequest",
    "LineSplitter",
    "ProtocolError",
    "Request",
    "StartRequest",
    "StatusRequest",
    "decode_line",
    "decode_request",
    "encode",
    "error_reply",
    "reply",
]

SOCKET_NAME = "relieve.sock"  # in the node's data directory
MAX_LINE_BYTES = 16 * 1024  # a request is a few hundred bytes; a longer line is refused
MAX_TEXT = 4096  # a profile name or path
MAX_ID = 64

# What a start request confirms, by id: the precautions and the massage extension. The texts
# are the session service's; a client shows them (from ``check``) and sends back the ids.
CONFIRMATION_IDS = ("heat", "cold", "gun", "extension")

_ROLE = Literal["heat", "cold", "gun", "probe"]
_FRONT_END = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


class ProtocolError(RelieveError):
    """A line the daemon (or a client) cannot take; the message says what is wrong."""

    def __init__(
        self,
        message: str,
        code: str = "bad-request",
        *,
        verb: str | None = None,
        request_id: int | str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.verb = verb  # the request's verb and id, when they could be read: the error
        self.request_id = request_id  # reply names them, so a client waiting for it gets it


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: int | Annotated[str, Field(max_length=MAX_ID)] | None = None


class StatusRequest(_Strict):
    """The node and its session, if any."""

    request: Literal["status"]


class AttachRequest(_Strict):
    """Stream the running session's events (those so far first) and every later session's."""

    request: Literal["attach"]


class CheckRequest(_Strict):
    """What a start of ``profile`` would ask, and whether it may start now."""

    request: Literal["check"]
    profile: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    extend: bool = False
    lift: Annotated[list[Annotated[str, Field(max_length=8)]], Field(max_length=16)] = []


class StartRequest(_Strict):
    """Start a session; the client has asked the person what ``check`` listed."""

    request: Literal["start"]
    profile: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    roles: Annotated[dict[_ROLE, Annotated[str, Field(min_length=1, max_length=64)]], Field()] = {}
    extend: bool = False
    lift: Annotated[list[Annotated[str, Field(max_length=8)]], Field(max_length=16)] = []
    confirmed: Annotated[
        list[Literal["heat", "cold", "gun", "extension"]], Field(max_length=4)
    ] = []
    health_answers: (
        Annotated[dict[Annotated[str, Field(max_length=32)], bool], Field(max_length=32)] | None
    ) = None
    started_by: Annotated[str, Field(pattern=_FRONT_END.pattern)] = "cli"
    attach: bool = True


class ControlRequest(_Strict):
    """Pause, resume, stop or emergency-stop the running session. ``by``: who asks, for the
    reason recorded (``relieve stop``, ``the TUI``); the daemon adds the client's pid."""

    request: Literal["pause", "resume", "stop", "emergency-stop"]
    by: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9 ()'._-]+$")] = (
        "a client"
    )


class ArmRequest(_Strict):
    """Arm remote start: the person confirmed, here, the precautions of every profile a remote
    start may run (``confirmed``: their ids). Without them the reply lists what to confirm."""

    request: Literal["arm"]
    confirmed: Annotated[list[Literal["heat", "cold", "gun"]], Field(max_length=3)] = []


class AnswerRequest(_Strict):
    """The answer to a question the daemon asked (resume after a long link loss?)."""

    request: Literal["answer"]
    question: Annotated[int, Field(ge=0, le=2**31)]
    yes: bool


Request = Annotated[
    StatusRequest
    | AttachRequest
    | CheckRequest
    | StartRequest
    | ControlRequest
    | AnswerRequest
    | ArmRequest,
    Field(discriminator="request"),
]
_REQUEST: TypeAdapter[Request] = TypeAdapter(Request)
VERBS = (
    "status",
    "attach",
    "check",
    "start",
    "pause",
    "resume",
    "stop",
    "emergency-stop",
    "answer",
    "arm",
)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def decode_line(line: bytes) -> Any:
    """One line as JSON (NaN and Infinity refused), or :class:`ProtocolError`."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("the line is not UTF-8 text; send one JSON object per line") from None
    try:
        return json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise ProtocolError("the line is not JSON; send one JSON object per line") from None


def decode_request(line: bytes) -> Request:
    """A request line, checked strictly; :class:`ProtocolError` says what is wrong."""
    obj = decode_line(line)
    if not isinstance(obj, dict):
        raise ProtocolError("a request is a JSON object with a 'request' key")
    raw_id = obj.get("id")
    request_id = (
        raw_id
        if (isinstance(raw_id, int) and not isinstance(raw_id, bool))
        or (isinstance(raw_id, str) and len(raw_id) <= MAX_ID)
        else None
    )
    verb = obj.get("request")
    if not isinstance(verb, str):
        raise ProtocolError(
            f"a request needs 'request', one of: {', '.join(VERBS)}", request_id=request_id
        )
    if verb not in VERBS:
        shown = verb if len(verb) <= 40 else verb[:40] + "..."
        raise ProtocolError(
            f"unknown request {shown!r}; use one of: {', '.join(VERBS)}",
            code="unknown-request",
            request_id=request_id,
        )
    try:
        return _REQUEST.validate_python(obj)
    except ValidationError as exc:
        problem = _first_problem(exc)
    except RecursionError:
        problem = "it is nested too deeply"
    raise ProtocolError(f"bad {verb} request: {problem}", verb=verb, request_id=request_id)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = printable(".".join(str(part) for part in error["loc"][1:]), 60) or "the request"
    message = " ".join(str(error["msg"]).split())
    return f"'{where}': {message[:1].lower()}{message[1:]}"


def _finite(value: Any) -> Any:
    """``value`` with every float that is not finite made None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def encode(obj: Mapping[str, Any]) -> bytes:
    """One line of strict JSON (never NaN or Infinity), ending in a newline."""
    return (json.dumps(_finite(dict(obj)), ensure_ascii=False, allow_nan=False) + "\n").encode()


def reply(verb: str, request_id: int | str | None, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"reply": verb}
    if request_id is not None:
        out["id"] = request_id
    out["ok"] = True
    out.update(fields)
    return out


def error_reply(
    verb: str | None, request_id: int | str | None, message: str, code: str = "refused"
) -> dict[str, Any]:
    out: dict[str, Any] = {"reply": verb if verb is not None else "error"}
    if request_id is not None:
        out["id"] = request_id
    out.update(ok=False, error=" ".join(message.split()), code=code)
    return out


class LineSplitter:
    """Bytes in, complete lines out; a line longer than ``limit`` is dropped whole.

    ``feed`` returns the lines completed by ``data``, each either ``bytes`` (without the
    newline) or None for a line that was too long (its bytes are skipped up to its newline).
    """

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes | None]:
        out: list[bytes | None] = []
        start = 0
        while start <= len(data):
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline
            piece = data[start:end]
            if not self._skipping:
                if len(self._buffer) + len(piece) > self.limit:
                    # said at once, not at the newline that may never come
                    self._buffer.clear()
                    self._skipping = True
                    out.append(None)
                else:
                    self._buffer += piece
            if newline < 0:
                return out
            if not self._skipping:
                out.append(bytes(self._buffer))
            self._buffer.clear()
            self._skipping = False
            start = newline + 1
        return out
