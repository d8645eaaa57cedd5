"""Fuzz relieve's input interfaces at scale with hypothesis.

Each interface is fed generated input (raw bytes, and structured, plausible-looking input with
junk values) and every call is judged:

* **accepted**: it returned (for profiles: the profile loaded, compiled, and the plan passes
  the project's own limit checks, ``profiles.compiler.check_plan`` and
  ``profiles.limits.check_on_steps``);
* **rejected**: it raised the interface's typed error with a one-line, non-empty message;
* **failure**: anything else (another exception, a message of several lines, an accepted profile
  whose plan breaks a hard limit).

    python benchmarks/fuzz.py                       # 10,000 examples per interface, a table
    python benchmarks/fuzz.py --examples 500 --json # a JSON list
    python benchmarks/fuzz.py --interface daemon-request --seed 7

Exit status 1 when any interface has a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import inspect
import io
import json
import math
import pkgutil
import re
import string
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import drivers.codecs
from controller.cli.commands import build_parser
from controller.daemon.protocol import VERBS, ProtocolError, decode_request
from controller.library import ProfileLibrary, load_file
from controller.mqtt.config import ConfigError, MqttConfig, load_config
from controller.mqtt.topics import COMMANDS, CommandError, decode_command
from controller.session import events
from controller.session.events import EventDecodeError, event_from_json
from drivers.codecs.errors import DecodeError
from profiles.compiler import check_plan, compile_plan
from profiles.errors import ProfileError, RelieveError
from profiles.limits import check_on_steps
from profiles.models import KINDS
from profiles.plan import CONTRAST_PAD, Capabilities, Plan

DEFAULT_EXAMPLES = 10_000
SHOWN_MAX = 200  # characters of a failing input shown


class UnacceptedError(Exception):
    """An accepted result that breaks what the interface promises (a plan over a limit)."""


@dataclass(frozen=True)
class Interface:
    """One input interface: what to feed it, how to call it, and its typed error."""

    name: str
    strategy: st.SearchStrategy[Any]
    call: Callable[[Any], object]  # raises UnacceptedError when an accepted result is wrong
    typed: tuple[type[BaseException], ...]
    messages: Callable[[BaseException], list[str]] = field(default=lambda exc: [str(exc)])


@dataclass
class Result:
    name: str
    examples: int = 0
    seconds: float = 0.0
    accepted: int = 0
    rejected: int = 0
    failures: int = 0
    first_input: str | None = None
    first_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def judge(interface: Interface, value: Any) -> tuple[str, str | None]:
    """``("accepted" | "rejected" | "failure", what went wrong for a failure)``."""
    try:
        interface.call(value)
    except UnacceptedError as exc:
        return "failure", f"accepted but wrong: {exc}"
    except interface.typed as exc:
        for message in interface.messages(exc):
            if not message.strip() or "\n" in message or "\r" in message:
                return "failure", f"{type(exc).__name__} message is not one line: {message!r}"
        return "rejected", None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return "failure", f"{type(exc).__name__}: {exc}"[: SHOWN_MAX * 2]
    return "accepted", None


def fuzz(interface: Interface, examples: int, seed_value: int) -> Result:
    result = Result(interface.name)

    @seed(seed_value)
    @settings(
        max_examples=examples,
        database=None,
        derandomize=False,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
        report_multiple_bugs=False,
    )
    @given(interface.strategy)
    def run(value: Any) -> None:
        kind, detail = judge(interface, value)
        result.examples += 1
        if kind == "accepted":
            result.accepted += 1
        elif kind == "rejected":
            result.rejected += 1
        else:
            result.failures += 1
            if result.first_input is None:
                result.first_input = repr(value)[:SHOWN_MAX]
                result.first_error = detail

    start = time.perf_counter()
    run()
    result.seconds = round(time.perf_counter() - start, 3)
    return result


# --- shared strategies ----------------------------------------------------------------------

JUNK_TEXT = st.text(max_size=24) | st.sampled_from(
    ["", " ", "\n", "a\nb", "heat", "cold", "gun", "probe", "start", "low", "high", "x" * 5000]
)
NUMBERS = (
    st.integers()
    | st.integers(-3, 5000)
    | st.floats()
    | st.floats(-100, 5000)
    | st.sampled_from([0, 1, -1, 2**31, 2**63, 10**400, 0.5, 1e308, -0.0])
)
SCALARS = st.none() | st.booleans() | NUMBERS | JUNK_TEXT
JSON_JUNK: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(JUNK_TEXT, inner, max_size=4),
    max_leaves=12,
)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, allow_nan=True, default=str)


def _json_bytes(objects: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return objects.map(lambda obj: _dumps(obj).encode("utf-8", "surrogatepass"))


DEEP = st.integers(1, 30_000).flatmap(
    lambda n: st.sampled_from([b"[" * n + b"]" * n, b'{"request": ' + b"[" * n, b"{" * n])
)


@st.composite
def _mangled(draw: st.DrawFn, frames: st.SearchStrategy[bytes]) -> bytes:
    frame = bytearray(draw(frames))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["flip", "cut", "grow"]))
        if action == "flip" and frame:
            frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
        elif action == "cut":
            del frame[draw(st.integers(0, len(frame))) :]
        else:
            frame += draw(st.binary(min_size=1, max_size=4))
    return bytes(frame)


def mostly(good: st.SearchStrategy[Any], junk: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` nine times in ten, ``junk`` otherwise: structured input that often gets through."""
    return st.integers(0, 9).flatmap(lambda i: junk if i == 0 else good)


def _keyed(
    keys: Sequence[str], values: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(list(keys)) | JUNK_TEXT, values, max_size=len(keys) + 1)


# --- 1. daemon-request ----------------------------------------------------------------------

REQUEST_KEYS = (
    "id", "profile", "extend", "lift", "roles", "confirmed", "health_answers",
    "started_by", "attach", "by", "question", "yes",
)  # fmt: skip
REQUEST_VALUES = (
    JSON_JUNK
    | st.lists(st.sampled_from(["heat", "cold", "gun", "extension", "probe"]), max_size=5)
    | st.dictionaries(st.sampled_from(["heat", "cold", "gun", "probe", "x"]), JUNK_TEXT, max_size=3)
    | st.sampled_from(["cli", "tui", "a client", "contrast-quick", "Bad!"])
)


@st.composite
def _request_dict(draw: st.DrawFn) -> dict[str, Any]:
    obj = draw(_keyed(REQUEST_KEYS, REQUEST_VALUES)) if draw(st.booleans()) else {}
    if draw(st.integers(0, 4)) == 0:
        obj["profile"] = draw(st.sampled_from(["contrast-quick", "x"]))
    if draw(st.integers(0, 9)):
        obj["request"] = draw(mostly(st.sampled_from(VERBS), JSON_JUNK))
    return obj


def daemon_request() -> Interface:
    requests = _json_bytes(_request_dict())
    return Interface(
        "daemon-request",
        st.binary(max_size=200) | requests | _mangled(requests) | _json_bytes(JSON_JUNK) | DEEP,
        decode_request,
        (ProtocolError,),
    )


# --- 2. mqtt-command ------------------------------------------------------------------------


def mqtt_command() -> Interface:
    objects = _keyed(["profile"], JSON_JUNK | st.from_regex(r"[a-z0-9-]{0,70}", fullmatch=True))
    payloads = (
        st.binary(max_size=120)
        | _json_bytes(objects)
        | _mangled(_json_bytes(objects))
        | _json_bytes(JSON_JUNK)
        | st.sampled_from([b"", b"{}", b" {} ", b"\n", b"x" * 1025, b"{" * 3000])
        | DEEP
    )
    return Interface(
        "mqtt-command",
        st.tuples(st.sampled_from(COMMANDS), payloads),
        lambda args: decode_command(*args),
        (CommandError,),
    )


# --- 3. event-json --------------------------------------------------------------------------

EVENT_CLASSES = [
    obj
    for obj in vars(events).values()
    if inspect.isclass(obj) and issubclass(obj, events.Event) and obj is not events.Event
]
EVENT_FIELDS = sorted({f.name for cls in EVENT_CLASSES for f in dataclasses.fields(cls)})
EVENT_VALUES = JSON_JUNK | st.sampled_from(
    ["heat", "cold", "massage", "off", "running", "paused", "high", "medium", "info", "completed"]
)

EVENT_GOOD = (
    st.floats(0, 1e6)
    | st.integers(0, 5000)
    | st.sampled_from(["heat", "running", "high", "completed", "stopped", "hi"])
    | st.booleans()
    | st.none()
    | st.dictionaries(st.sampled_from(["heat", "gun"]), JUNK_TEXT, max_size=2)
)


def _event_good(name: str) -> st.SearchStrategy[Any]:
    if name in ("t", "total_s", "due", "duration_s", "delivered_s", "speed") or "celsius" in name:
        return st.floats(0, 1e6)
    if name in ("rpm", "battery", "index", "count", "question"):
        return st.integers(0, 5000)
    if name in ("simulated", "devices_off", "recorded"):
        return st.booleans()
    if name == "devices":
        return st.dictionaries(st.sampled_from(["heat", "gun"]), st.just("pad (AA)"), max_size=2)
    return EVENT_GOOD


@st.composite
def _event(draw: st.DrawFn) -> Any:
    cls = draw(st.sampled_from(EVENT_CLASSES))
    names = [f.name for f in dataclasses.fields(cls)]
    obj: dict[str, Any] = {}
    for name in names:
        if draw(st.integers(0, 5)) > 0:  # mostly present, so whole events decode too
            obj[name] = draw(mostly(_event_good(name), EVENT_VALUES))
    obj.update(draw(_keyed(EVENT_FIELDS, EVENT_VALUES)) if draw(st.integers(0, 4)) == 0 else {})
    if draw(st.integers(0, 9)) > 0:
        obj["type"] = cls.type
    else:
        obj["type"] = draw(JSON_JUNK)
    return obj


def event_json() -> Interface:
    return Interface("event-json", _event() | JSON_JUNK, event_from_json, (EventDecodeError,))


# --- TOML text ------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: Any) -> str:
    """A TOML value for JSON-like data (inline tables and arrays)."""
    if value is None:
        return '""'  # TOML has no null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # TOML basic strings take JSON's escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def to_toml(document: dict[str, Any]) -> str:
    """Top-level keys, then ``[table]`` for dicts and ``[[table]]`` for lists of dicts."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for key, value in document.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
        ):
            tables.append((key, value))
        else:
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
    for key, value in tables:
        if isinstance(value, dict):
            lines.append(f"[{toml_key(key)}]")
            nested = []
            for k, v in value.items():
                if isinstance(v, list) and v and all(isinstance(i, dict) for i in v):
                    nested.append((k, v))
                else:
                    lines.append(f"{toml_key(k)} = {toml_value(v)}")
            for k, items in nested:
                for item in items:
                    lines.append(f"[[{toml_key(key)}.{toml_key(k)}]]")
                    lines += [f"{toml_key(a)} = {toml_value(b)}" for a, b in item.items()]
        else:
            for item in value:
                lines.append(f"[[{toml_key(key)}]]")
                lines += [f"{toml_key(a)} = {toml_value(b)}" for a, b in item.items()]
    return "\n".join(lines) + "\n"


class _TempFile:
    """One reusable temp file that each example overwrites."""

    def __init__(self, suffix: str) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="relieve-fuzz-")
        self.path = Path(self._dir.name) / f"fuzz{suffix}"

    def write(self, data: str | bytes) -> Path:
        raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
        self.path.write_bytes(raw)
        return self.path


# --- 4. mqtt-config -------------------------------------------------------------------------

MQTT_KEYS = sorted(MqttConfig.model_fields)


def mqtt_config() -> Interface:
    table = _keyed(MQTT_KEYS, JSON_JUNK | st.integers(-5, 70000) | st.sampled_from(["", "a.b"]))
    documents = st.dictionaries(
        st.sampled_from(["mqtt"]) | JUNK_TEXT, table | JSON_JUNK, min_size=0, max_size=2
    )
    texts = documents.map(to_toml)
    raw = st.binary(max_size=200) | _mangled(texts.map(lambda t: t.encode("utf-8", "replace")))
    file = _TempFile(".toml")
    return Interface(
        "mqtt-config",
        texts | raw,
        lambda data: load_config(None, file.write(data)),
        (ConfigError,),
    )


# --- 5. profile-toml ------------------------------------------------------------------------

PROFILE_NUMBERS = NUMBERS | st.floats(0, 60) | st.integers(0, 60)
SECTION_KEYS = {
    "contrast": ["heat_minutes", "cold_minutes", "cycles", "heat_celsius", "cold_celsius"],
    "massage": ["minutes", "speed", "rpm", "explicit_top_speed"],
    "cold": ["minutes", "celsius", "repeat_every_minutes", "for_hours"],
    "heat": ["minutes", "celsius"],
    "stretch": ["rounds", "rest_seconds"],
}
LIST_KEYS = {
    "massage": ("areas", ["name", "seconds", "label"]),
    "stretch": ("holds", ["name", "seconds"]),
}
PROFILE_VALUES = (
    PROFILE_NUMBERS
    | st.sampled_from(["low", "medium", "high", "lower-back", "left-glute", "knee", True, False])
    | JSON_JUNK
)
_MINUTES = st.floats(0, 90) | st.integers(0, 90)
_CELSIUS = st.floats(-5, 60) | st.integers(-5, 60)
PROFILE_GOOD: dict[str, st.SearchStrategy[Any]] = {
    "heat_minutes": _MINUTES, "cold_minutes": _MINUTES, "minutes": _MINUTES,
    "cycles": st.integers(0, 12), "rounds": st.integers(0, 6),
    "heat_celsius": _CELSIUS, "cold_celsius": _CELSIUS, "celsius": _CELSIUS,
    "speed": st.sampled_from(["low", "medium", "high", "top"]), "rpm": st.integers(500, 4000),
    "explicit_top_speed": st.booleans(), "repeat_every_minutes": _MINUTES | st.integers(0, 300),
    "for_hours": st.integers(0, 100), "rest_seconds": st.floats(0, 70),
    "name": st.sampled_from(["left-glute", "hamstring stretch", "x"]),
    "seconds": st.floats(0, 900) | st.integers(0, 900), "label": st.just("Left glute"),
}  # fmt: skip
BUILTIN_NAMES = ["contrast-quick", "heat-soak", "massage-lower-back", "stretch-lower-back", "nope"]


@st.composite
def _profile_document(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(mostly(st.sampled_from(list(KINDS)), JUNK_TEXT))
    doc: dict[str, Any] = {
        "name": draw(mostly(st.sampled_from(["fuzz", "my-profile"]), JUNK_TEXT)),
        "title": draw(mostly(st.sampled_from(["Fuzz"]), JUNK_TEXT)),
        "kind": kind,
    }
    if draw(st.booleans()):
        doc["area"] = draw(mostly(st.sampled_from(["lower-back", "knee"]), JUNK_TEXT))
    sections = [kind] if kind in SECTION_KEYS else []
    if draw(st.integers(0, 4)) == 0:
        sections += draw(st.lists(st.sampled_from(list(SECTION_KEYS)), max_size=2))
    for section in sections:
        keys = SECTION_KEYS[section]
        table: dict[str, Any] = {
            k: draw(mostly(PROFILE_GOOD[k], PROFILE_VALUES))
            for k in keys
            if draw(st.integers(0, 4))
        }
        table.update(draw(_keyed(keys, PROFILE_VALUES)) if draw(st.integers(0, 3)) == 0 else {})
        if section in LIST_KEYS:
            list_key, item_keys = LIST_KEYS[section]
            table[list_key] = draw(
                st.lists(
                    st.fixed_dictionaries(
                        {k: mostly(PROFILE_GOOD[k], PROFILE_VALUES) for k in item_keys[:2]}
                    ),
                    min_size=1,
                    max_size=6,
                )
            )
        doc[section] = table
    if kind == "routine" or draw(st.integers(0, 9)) == 0:
        doc["steps"] = draw(st.lists(mostly(st.sampled_from(BUILTIN_NAMES), JUNK_TEXT), max_size=4))
    if draw(st.integers(0, 9)) == 0:
        for key, value in draw(st.dictionaries(JUNK_TEXT, SCALARS, max_size=1)).items():
            doc.setdefault(key, value)
    return doc


CAPABILITIES = (
    CONTRAST_PAD,
    Capabilities(combined=False),
    Capabilities(heat="levels", heat_levels=(38.0, 42.0, 46.0), combined=False),
)


def _check_plan(plan: Plan) -> None:
    problems = [*check_plan(plan), *check_on_steps(plan)]
    if problems:
        raise UnacceptedError(f"plan {plan.name!r} breaks {problems[0].limit_id}: {problems[0]}")


def _profile_messages(exc: BaseException) -> list[str]:
    if isinstance(exc, ProfileError):  # one sentence per problem, a line each by design
        return [str(problem) for problem in exc.problems]
    return [str(exc)]


def profile_toml() -> Interface:
    library = ProfileLibrary(Path(tempfile.gettempdir()) / "relieve-fuzz-no-config")
    file = _TempFile(".toml")
    texts = _profile_document().map(to_toml)

    def call(data: str | bytes) -> None:
        profile = load_file(file.write(data))
        for caps in CAPABILITIES:
            for extended in (False, True):
                try:
                    plan = compile_plan(profile, caps, resolve=library.get, extended=extended)
                except RelieveError as exc:  # refused at compile time: a clean rejection
                    if "\n" in str(exc) or not str(exc).strip():
                        raise
                    continue
                _check_plan(plan)

    return Interface(
        "profile-toml",
        texts
        | _mangled(texts.map(lambda t: t.encode("utf-8", "replace")))
        | st.binary(max_size=200),
        call,
        (RelieveError,),
        _profile_messages,
    )


# --- 6. gatt-decoders -----------------------------------------------------------------------


def codec_decoders() -> dict[str, Callable[[Any], object]]:
    """Every ``from_bytes`` and ``decode_*`` the drivers.codecs modules define."""
    found: dict[str, Callable[[Any], object]] = {}
    for info in pkgutil.iter_modules(drivers.codecs.__path__):
        module = importlib.import_module(f"drivers.codecs.{info.name}")
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(obj) and "from_bytes" in vars(obj):
                frame: Any = obj
                found[f"{info.name}.{name}"] = frame.from_bytes
            elif inspect.isfunction(obj) and name.startswith("decode_"):
                found[f"{info.name}.{name}"] = obj
    return found


def gatt_decoders() -> Interface:
    decoders = codec_decoders()

    def call(args: tuple[str, bytes, bool]) -> None:
        name, data, as_bytearray = args
        decoders[name](bytearray(data) if as_bytearray else data)

    return Interface(
        "gatt-decoders",
        st.tuples(st.sampled_from(sorted(decoders)), st.binary(max_size=40), st.booleans()),
        call,
        (DecodeError,),
    )


# --- 7. cli-args ----------------------------------------------------------------------------


def _vocabulary(parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """Every option string and sub-command name of ``parser`` and its sub-parsers, and every
    choice an argument takes."""
    words: set[str] = set()
    choices: set[str] = set()
    pending = [parser]
    while pending:
        current = pending.pop()
        for action in current._actions:
            words.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    words.add(name)
                    pending.append(sub)
            elif action.choices is not None:
                choices.update(str(c) for c in action.choices)
    return sorted(words), sorted(choices)


def cli_args() -> Interface:
    parser = build_parser()
    words, choices = _vocabulary(parser)
    values = st.sampled_from(
        ["1", "0", "-1", "60", "1000", "1e309", "nan", "inf", "10m", "1h30m", "5s", "x", "", "42.5",
         "127.0.0.1:9100", "host:99999", ":", "-", "--", "a=b", "lower-back", "contrast-quick"]
    )  # fmt: skip
    token = (
        st.sampled_from(words)
        | st.sampled_from(choices or ["x"])
        | values
        | st.text(string.printable, max_size=12)
    )
    argv = st.lists(token, max_size=8)
    leading = st.sampled_from(words).flatmap(lambda w: argv.map(lambda rest: [w, *rest]))

    def call(args: list[str]) -> None:
        sink = io.StringIO()
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            try:
                build = parser.parse_args(args)
            except SystemExit as exc:
                if exc.code == 2:
                    raise _CliRejectedError(sink.getvalue().strip().splitlines()[-1]) from None
                if exc.code == 0:  # --help, --version
                    return
                raise
        del build

    return Interface("cli-args", argv | leading, call, (_CliRejectedError,))


class _CliRejectedError(RelieveError):
    """argparse refused the arguments (SystemExit(2)); the message is its last line."""


INTERFACES: dict[str, Callable[[], Interface]] = {
    "daemon-request": daemon_request,
    "mqtt-command": mqtt_command,
    "event-json": event_json,
    "mqtt-config": mqtt_config,
    "profile-toml": profile_toml,
    "gatt-decoders": gatt_decoders,
    "cli-args": cli_args,
}


def print_table(results: list[Result]) -> None:
    print(
        f"{'interface':16} {'examples':>8} {'seconds':>8} {'accepted':>8} {'rejected':>8} "
        f"{'failures':>8}"
    )
    for r in results:
        print(
            f"{r.name:16} {r.examples:>8} {r.seconds:>8.2f} {r.accepted:>8} {r.rejected:>8} "
            f"{r.failures:>8}"
        )
    for r in results:
        if r.failures:
            print(f"\nFAIL {r.name}: first failing input {r.first_input}\n  {r.first_error}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, metavar="N")
    parser.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    parser.add_argument(
        "--interface", action="append", choices=sorted(INTERFACES), metavar="NAME",
        help=f"only these (repeatable): {', '.join(INTERFACES)}",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, metavar="S")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    names = [n for n in INTERFACES if not args.interface or n in args.interface]
    results = [fuzz(INTERFACES[name](), args.examples, args.seed) for name in names]
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        print_table(results)
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
