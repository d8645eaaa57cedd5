"""``relieve sim serve``, ``relieve sim list``: the handlers behind the CLI's ``sim`` command.

Both check their arguments and read the scenario before anything heavy is imported; ``sim
list`` never imports bumble (it prints the catalog). Errors are one sentence on stderr and exit
status 1 (2 for arguments argparse refuses), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import re
import sys
from typing import TYPE_CHECKING, TextIO

from drivers.core.base import SafetyClass
from profiles.errors import printable
from simulators.catalog import (
    CATALOG,
    COMMON_FAULTS,
    DeviceFamily,
    DeviceSpec,
    FaultKind,
    SimulatorError,
)
from simulators.serve import OUTPUT_OF_FAMILY, tcp_listen_spec, unix_listen_spec

if TYPE_CHECKING:
    from simulators.faults import Scenario
    from simulators.serve import SimServer

__all__ = [
    "MAX_SPEED",
    "PROTOCOL_OF_FAMILY",
    "EventPrinter",
    "device_rows",
    "list_devices",
    "parse_speed",
    "parse_tcp_address",
    "safety_class_of",
    "serve",
]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1

# Fastest clock a server accepts: connected (or watched) devices step every clock second, so
# x1000 is 1000 steps a real second per device, about what one event loop keeps up with.
MAX_SPEED = 1000.0

PROTOCOL_OF_FAMILY: dict[DeviceFamily, str] = {
    DeviceFamily.OPEN_THERMAL: "relieve open profile, thermal",
    DeviceFamily.OPEN_PERCUSSION: "relieve open profile, percussion",
    DeviceFamily.THERAGUN: "Theragun Gen-4 (0xFFE0)",
    DeviceFamily.HEATING_MAT: "BLE heating mat (0xFF01)",
    DeviceFamily.SKIN_PROBE: "SIG Health Thermometer (0x1809)",
}
"""The protocol each device family speaks, as ``relieve sim list`` names it."""


# --- argument types ----------------------------------------------------------------------


# Characters of a refused argument repeated back in its refusal (a longer one is cut, "...").
ARGUMENT_SHOWN_MAX = 40
# A port as typed: ASCII digits only (str.isdigit() also takes "²", which int() refuses), and
# few enough that int() never meets a number of thousands of digits.
_PORT = re.compile(r"[0-9]{1,5}")


def _quoted(text: str) -> str:
    """An argument as a refusal repeats it: quoted, every unprintable character escaped (a
    newline as ``\\n``, so the refusal stays one line), cut to :data:`ARGUMENT_SHOWN_MAX`."""
    return f"'{printable(text, ARGUMENT_SHOWN_MAX)}'"


def parse_speed(text: str) -> float:
    """``--speed N``: clock seconds per real second, more than 0 and at most MAX_SPEED."""
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_quoted(text)} is not a number (e.g. 10)") from None
    if not (math.isfinite(speed) and 0 < speed <= MAX_SPEED):
        raise argparse.ArgumentTypeError(
            f"{_quoted(text)} is not a clock speed: use a number above 0 and at most {MAX_SPEED:g}"
        )
    return speed


def parse_tcp_address(text: str) -> tuple[str, int]:
    """``--tcp HOST:PORT`` (``:PORT`` means 127.0.0.1; port 0 picks a free one). A host with
    a newline or another control character is no host name (nor one a refusal could show)."""
    host, colon, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if (
        not colon
        or not host.isprintable()
        or not _PORT.fullmatch(port_text)
        or int(port_text) > 65535
    ):
        raise argparse.ArgumentTypeError(
            f"{_quoted(text)} is not HOST:PORT with a port 0..65535 (e.g. 127.0.0.1:9100)"
        )
    return host or "127.0.0.1", int(port_text)


# --- sim list ----------------------------------------------------------------------------


def safety_class_of(spec: DeviceSpec) -> SafetyClass | None:
    """``lease`` or ``host-timed``; None for a probe (it has no output)."""
    if OUTPUT_OF_FAMILY[spec.family] == "probe":
        return None
    return SafetyClass.LEASE if spec.has_lease else SafetyClass.HOST_TIMED


def _faults_of(spec: DeviceSpec) -> list[str]:
    return [str(kind) for kind in FaultKind if kind in spec.faults]


def device_rows() -> list[dict[str, object]]:
    """One JSON-ready dict per simulated device type, in catalog order."""
    rows: list[dict[str, object]] = []
    for spec in CATALOG:
        safety = safety_class_of(spec)
        rows.append(
            {
                "key": spec.key,
                "name": spec.name,
                "address": spec.address,
                "kind": OUTPUT_OF_FAMILY[spec.family],
                "protocol": PROTOCOL_OF_FAMILY[spec.family],
                "safety_class": None if safety is None else str(safety),
                "summary": spec.summary,
                "heat_range_c": None if spec.heat_range_c is None else list(spec.heat_range_c),
                "cold_range_c": None if spec.cold_range_c is None else list(spec.cold_range_c),
                "model": spec.model,
                "faults": _faults_of(spec),
            }
        )
    return rows


def _table(rows: list[dict[str, object]]) -> str:
    columns = (
        ("KEY", "key"),
        ("NAME", "name"),
        ("ADDRESS", "address"),
        ("KIND", "kind"),
        ("SAFETY", "safety_class"),
        ("PROTOCOL", "protocol"),
    )
    cells = [[str(row[field] or "-") for _, field in columns] for row in rows]
    widths = [
        max(len(title), *(len(line[i]) for line in cells)) for i, (title, _) in enumerate(columns)
    ]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line([title for title, _ in columns]), *(line(c) for c in cells), ""]
    common = [str(kind) for kind in FaultKind if kind in COMMON_FAULTS]
    out.append(f"Faults every device can have: {', '.join(common)}.")
    for spec in CATALOG:
        extra = [str(kind) for kind in FaultKind if kind in spec.faults - COMMON_FAULTS]
        if extra:
            out.append(f"  {spec.key} also: {', '.join(extra)}")
    out.append("")
    out.append(
        "Serve them: relieve sim serve --socket PATH [--scenario FILE] "
        "(docs/sim-server.md, docs/simulators.md)."
    )
    return "\n".join(out)


def list_devices(args: argparse.Namespace) -> int:
    """``relieve sim list [--json]``."""
    rows = device_rows()
    if args.json:
        json.dump(rows, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(_table(rows) + "\n")
    return EXIT_OK


# --- sim serve ---------------------------------------------------------------------------


class EventPrinter:
    """Writes each event as one JSON line and flushes; stops quietly if the reader goes away."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.broken = False

    def __call__(self, event: dict[str, object]) -> None:
        if self.broken:
            return
        try:
            self.out.write(json.dumps(event, ensure_ascii=False) + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
            self.broken = True
            logger.warning("the reader of --events-json went away; events are no longer printed")
            with contextlib.suppress(OSError, ValueError):
                # point stdout at /dev/null so the interpreter's flush at exit does not fail
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.out.fileno())


def _fail(message: object) -> int:
    print(f"relieve: {message}", file=sys.stderr)
    return EXIT_FAILED


def _announce(server: SimServer) -> None:
    print(server.ready_message(), file=sys.stderr, flush=True)


def serve(args: argparse.Namespace) -> int:
    """``relieve sim serve (--socket PATH | --tcp HOST:PORT) [--scenario FILE] [--speed N]
    [--events-json]``: serve until SIGINT/SIGTERM, then exit 0."""
    from drivers.core.clock import Clock, MonotonicClock, ScaledClock
    from simulators.faults import ScenarioError, load_scenario
    from simulators.serve import serve as run_server

    if args.socket is not None:
        listen = unix_listen_spec(args.socket)
    else:
        host, port = args.tcp
        listen = tcp_listen_spec(host, port)
    scenario: Scenario | None = None
    if args.scenario is not None:
        try:
            scenario = load_scenario(args.scenario)
        except ScenarioError as exc:
            return _fail(exc)
    clock: Clock = MonotonicClock() if args.speed is None else ScaledClock(args.speed)
    printer = EventPrinter(sys.stdout) if args.events_json else None
    try:
        asyncio.run(
            run_server(listen, clock=clock, scenario=scenario, on_event=printer, on_ready=_announce)
        )
    except SimulatorError as exc:
        return _fail(exc)
    print("relieve simulator: stopped.", file=sys.stderr)
    return EXIT_OK
