"""``relieve serve``, ``status``, ``stop`` and ``attach``: the node and its daemon.

A node is one data directory (one room, one radio). ``serve`` runs its daemon; the others work
with or without one: ``status`` and ``stop`` also find a session that a plain ``relieve run``
or ``relieve tui`` holds in another terminal (through the history's session locks), and stop
it by signalling that process, which then switches every device OFF as on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.cli.console import JsonLines, LiveView, clock_text
from controller.cli.keys import SessionKeys
from controller.cli.run import signal_handlers
from controller.daemon.client import DaemonConnection, RemoteSession, connect
from controller.daemon.server import DaemonError, NodeDaemon, Radio
from controller.ledger import Ledger
from controller.ledger.records import SessionRecord
from controller.ledger.store import LEDGER_FILE, SIMULATED_LEDGER_FILE, default_data_dir
from controller.library import ProfileLibrary
from controller.session.events import Event, Finished
from controller.session.service import SessionRequest, SessionService, clock_for

__all__ = ["arm", "attach", "serve", "status", "stop"]

EXIT_OK = 0
EXIT_FAILED = 1
STOP_WAIT_S = 60.0  # real seconds to wait for a stopped session to end with every device OFF

log = logging.getLogger("controller.daemon")


def data_dir_of(args: argparse.Namespace) -> Path:
    return Path(args.data_dir) if args.data_dir is not None else default_data_dir()


# --- relieve serve ----------------------------------------------------------------------------


class _JournalFormatter(logging.Formatter):
    """One line per record; under systemd (``JOURNAL_STREAM`` set) with the syslog priority
    prefix journald reads (``<3>`` error, ``<4>`` warning, ``<6>`` info, ``<7>`` debug) and no
    time (journald adds it); elsewhere with the time."""

    def __init__(self, journal: bool) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(record.getMessage().split())
        if record.exc_info:
            text += " | " + " | ".join(self.formatException(record.exc_info).splitlines()[-2:])
        if self.journal:
            return f"<{_priority(record.levelno)}>{text}"
        stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
        return f"{stamp} relieve serve: {record.levelname.lower()}: {text}"


def _priority(level: int) -> int:
    """The syslog priority of a logging level."""
    if level >= logging.ERROR:
        return 3
    if level >= logging.WARNING:
        return 4
    return 6 if level >= logging.INFO else 7


def _daemon_logging(verbose: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JournalFormatter(bool(os.environ.get("JOURNAL_STREAM"))))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    log.propagate = False


def serve(args: argparse.Namespace) -> int:
    """``relieve serve``: run the node daemon until SIGTERM / SIGINT."""
    radio = Radio(
        simulate=bool(args.simulate),
        simulator=args.simulator,
        speed=args.speed,
    )
    # a bad --speed (or --speed on real devices) is refused before anything is opened
    clock_for(
        SessionRequest(
            profile="", simulate=radio.simulate, simulator=radio.simulator, speed=radio.speed
        )
    )
    data_dir = data_dir_of(args)
    from controller.mqtt.config import load_config, read_password

    # the settings are checked before anything is opened: a problem is one sentence, exit 1
    settings = load_config(args.config_dir, getattr(args, "config", None))
    if settings.mqtt is not None:
        read_password(settings.mqtt)
    _daemon_logging(int(args.verbose))
    service = SessionService(ProfileLibrary(args.config_dir), config_dir=args.config_dir)

    async def main() -> None:
        from controller.cli.commands import version
        from controller.mqtt.bridge import MqttBridge, serve_with_bridge

        with Ledger.open(data_dir, simulated=radio.simulated) as ledger:
            for record in ledger.recovered:
                log.warning(
                    "session %d (%s) was interrupted before this start; recorded as such",
                    record.id,
                    record.profile,
                )
            daemon = NodeDaemon(service, ledger, data_dir, radio)
            bridge = None
            if settings.mqtt is not None:
                bridge = MqttBridge(daemon, settings.mqtt, version=version())
            await serve_with_bridge(daemon, bridge, settings=settings.path)

    asyncio.run(main())
    return EXIT_OK


# --- relieve status ---------------------------------------------------------------------------


def status(args: argparse.Namespace) -> int:
    """``relieve status [--json]``"""
    data_dir = data_dir_of(args)
    found = asyncio.run(_status(data_dir))
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
    else:
        for line in _status_lines(found):
            print(line)
    return EXIT_OK


async def _status(data_dir: Path) -> dict[str, Any]:
    connection = await connect(data_dir)
    if connection is not None:
        try:
            answer = await connection.request("status")
        finally:
            await connection.close()
        node = answer.get("node") or {}
        others = [r for r in _running_sessions(data_dir) if r.owner.pid != node.get("pid")]
        return {
            "data_dir": str(data_dir),
            "daemon": node,
            "session": answer.get("session"),
            "last": answer.get("last"),
            "other_sessions": [_held(record) for record in others],
        }
    held = [_held(record) for record in _running_sessions(data_dir)]
    return {
        "data_dir": str(data_dir),
        "daemon": None,
        "session": held[0] if held else None,
        "last": None,
        "other_sessions": held[1:],
    }


def _running_sessions(data_dir: Path) -> list[SessionRecord]:
    """Sessions other relieve processes on this host hold now, real and simulated (opening
    a history also records a session whose process is gone as interrupted)."""
    out: list[SessionRecord] = []
    host = socket.gethostname()
    for simulated, name in ((False, LEDGER_FILE), (True, SIMULATED_LEDGER_FILE)):
        if not (data_dir / name).exists():
            continue
        with Ledger.open(data_dir, simulated=simulated) as ledger:
            out += [r for r in ledger.running() if r.owner.host == host]
    return out


def _process_name(pid: int) -> str:
    """What the process holding a session runs, from ``relieve`` on (``relieve run X``)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "relieve"
    words = [word for word in raw.decode(errors="replace").split("\0") if word]
    # `.../python .../relieve run x`: from the relieve word on
    for i, word in enumerate(words):
        if Path(word).name == "relieve":
            words = ["relieve", *words[i + 1 :]]
            break
    text = " ".join(words)
    return text if len(text) <= 120 else text[:117] + "..."


def _held(record: SessionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "profile": record.profile,
        "state": "running",
        "simulated": record.simulated,
        "started_at": record.started_at.astimezone().isoformat(timespec="seconds"),
        "started_by": _process_name(record.owner.pid),
        "pid": record.owner.pid,
        "devices": {
            role: f"{d.name or d.driver} ({d.address})" for role, d in record.devices.items()
        },
    }


def _status_lines(found: dict[str, Any]) -> list[str]:
    lines = []
    daemon = found.get("daemon")
    if daemon is None:
        lines.append(f"node {found['data_dir']}: no daemon (relieve serve) runs here")
    else:
        attached = daemon.get("attached", 0)
        lines.append(
            f"node {found['data_dir']}: relieve serve runs (pid {daemon.get('pid')}, "
            f"{daemon.get('radio')}, since {_local(daemon.get('since'))}, "
            f"{attached} viewer{'' if attached == 1 else 's'} attached)"
        )
    session = found.get("session")
    if session is None:
        lines.append("no session is running")
    else:
        lines += _session_lines(session)
    for other in found.get("other_sessions") or []:
        lines += _session_lines(other)
    last = found.get("last")
    if isinstance(last, dict) and isinstance(last.get("finished"), dict):
        done = last["finished"]
        lines.append(
            f"last session: {last.get('profile')} {done.get('outcome')}"
            + (f" ({done['reason']})" if done.get("reason") else "")
            + f", {clock_text(float(done.get('delivered_s') or 0))} delivered"
        )
    return lines


def _session_lines(session: dict[str, Any]) -> list[str]:
    title = session.get("title")
    name = f"{title} ({session.get('profile')})" if title else str(session.get("profile"))
    by = session.get("started_by")
    where = f"process {session['pid']}, " if "pid" in session else ""
    lines = [
        f"session {session.get('id')}: {name}, started by {by} ({where}at "
        f"{_local(session.get('started_at'))})"
    ]
    state = [str(session.get("state"))]
    phase = session.get("phase")
    if isinstance(phase, dict) and phase.get("mode") not in (None, "off"):
        text = str(phase["mode"])
        if phase.get("celsius") is not None:
            text += f" at {phase['celsius']:g} °C"
        if phase.get("rpm") is not None:
            text += f" at {phase['rpm']}/min"
        if phase.get("index") is not None and phase.get("count"):
            text += f" ({phase['index'] + 1}/{phase['count']})"
        if session.get("phase_left_s") is not None:
            text += f", {clock_text(session['phase_left_s'])} left in it"
        state.append(f"phase {text}")
    if session.get("time_left_s") is not None:
        state.append(f"{clock_text(session['time_left_s'])} left in all")
    lines.append("  " + "; ".join(state))
    devices = session.get("devices") or {}
    if devices:
        lines.append("  devices: " + ", ".join(f"{r} {n}" for r, n in devices.items()))
    lines += [
        f"  alarm ({alarm.get('priority')}): {alarm.get('message')}"
        for alarm in session.get("alarms") or []
    ]
    return lines


def _local(stamp: object) -> str:
    if not isinstance(stamp, str):
        return "?"
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return stamp


# --- relieve stop -----------------------------------------------------------------------------


def stop(args: argparse.Namespace) -> int:
    """``relieve stop [--emergency]``"""
    data_dir = data_dir_of(args)
    emergency = bool(args.emergency)
    return asyncio.run(_stop(data_dir, emergency))


async def _stop(data_dir: Path, emergency: bool) -> int:
    connection = await connect(data_dir)
    if connection is not None:
        try:
            return await _stop_daemon_session(connection, emergency)
        finally:
            await connection.close()
    held = _running_sessions(data_dir)
    if not held:
        print("relieve: no session is running on this node; nothing to stop.", file=sys.stderr)
        return EXIT_OK
    code = EXIT_OK
    for record in held:
        code = max(code, await _stop_process_session(data_dir, record))
    return code


async def _stop_daemon_session(connection: DaemonConnection, emergency: bool) -> int:
    finished: asyncio.Future[Finished] = asyncio.get_running_loop().create_future()

    def on_event(event: Event) -> None:
        if isinstance(event, Finished) and not finished.done():
            finished.set_result(event)

    connection.on_event = on_event
    answer = await connection.request("attach")
    if answer.get("session") is None:
        print("relieve: no session is running on this node; nothing to stop.", file=sys.stderr)
        return EXIT_OK
    verb = "emergency-stop" if emergency else "stop"
    await connection.request(verb, by="relieve stop")
    try:
        done = await asyncio.wait_for(finished, STOP_WAIT_S)
    except TimeoutError:
        print(
            f"relieve: the node daemon took the stop but the session did not end within "
            f"{STOP_WAIT_S:g} s; check the devices and switch them off by hand.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"relieve: {_ended(done)}", file=sys.stderr)
    return EXIT_OK if done.devices_off else EXIT_FAILED


def _ended(done: Finished) -> str:
    off = "every device is off" if done.devices_off else "a device is NOT confirmed off: check it"
    reason = f" ({done.reason})" if done.reason else ""
    return f"session {done.outcome}{reason}; {clock_text(done.delivered_s)} delivered; {off}."


async def _stop_process_session(data_dir: Path, record: SessionRecord) -> int:
    pid = record.owner.pid
    if pid == os.getpid():
        return EXIT_OK
    try:
        # the process stops its session as on Ctrl-C: every device OFF, the outcome recorded
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return EXIT_OK  # it ended by itself meanwhile
    except PermissionError:
        print(
            f"relieve: session {record.id} belongs to process {pid} of another user; run "
            "relieve stop as that user.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        ended = await asyncio.to_thread(_outcome, data_dir, record)
        if ended is not None:
            print(
                f"relieve: session {record.id} ({record.profile}, process {pid}): {ended}.",
                file=sys.stderr,
            )
            return EXIT_OK
        await asyncio.sleep(0.1)
    print(
        f"relieve: process {pid} was told to stop session {record.id} but it has not ended "
        f"within {STOP_WAIT_S:g} s; check the devices and switch them off by hand.",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _outcome(data_dir: Path, record: SessionRecord) -> str | None:
    with Ledger.open(data_dir, simulated=record.simulated) as ledger:
        now = ledger.session(record.id)
    return None if now.outcome == "running" else now.outcome


# --- relieve attach ---------------------------------------------------------------------------


def attach(args: argparse.Namespace) -> int:
    """``relieve attach [--json]``: follow the daemon's session with the live view."""
    data_dir = data_dir_of(args)
    emit: Callable[[Event], None] = JsonLines() if args.json else LiveView()
    return asyncio.run(_attach(data_dir, emit, interactive=sys.stdin.isatty() and not args.json))


async def _attach(data_dir: Path, emit: Callable[[Event], None], *, interactive: bool) -> int:
    connection = await connect(data_dir)
    if connection is None:
        raise DaemonError(
            f"No node daemon (relieve serve) runs on {data_dir}; relieve attach follows a "
            "session the daemon runs (relieve status shows any other)."
        )
    try:
        keys = SessionKeys() if interactive else None
        person = _Watcher(keys)
        session = RemoteSession(connection, None, person, attach_only=True, by="relieve attach")
        session.subscribe(emit)
        with remote_signals(session), keys.attached(session) if keys else contextlib.nullcontext():
            finished = await session.run()
    finally:
        await connection.close()
    return EXIT_OK if finished.outcome != "aborted" else EXIT_FAILED


class _Watcher:
    """The person following a session: nothing to confirm; answers the daemon's questions at
    the terminal when there is one."""

    def __init__(self, keys: SessionKeys | None) -> None:
        self.keys = keys

    async def confirm(self, text: str) -> bool:
        return False

    def notice(self, text: str) -> None:
        print(f"relieve: warning: {text}", file=sys.stderr)

    async def health_answers(self) -> None:
        return None

    @property
    def ask_resume(self) -> Callable[[str], Any] | None:
        return self.keys.ask if self.keys is not None else None


def remote_signals(session: RemoteSession) -> contextlib.AbstractContextManager[None]:
    """Ctrl-C stops the daemon's session (every device OFF), as in a plain run; SIGTERM and
    SIGHUP (this client killed, its terminal closed) only detach: the session goes on."""
    return signal_handlers(
        (
            (signal.SIGINT, functools.partial(session.stop, "stopped by you (Ctrl-C)")),
            (signal.SIGTERM, session.detach),
            (signal.SIGHUP, session.detach),
        )
    )


# --- relieve arm ------------------------------------------------------------------------------


def arm(args: argparse.Namespace) -> int:
    """``relieve arm [--yes]``: confirm here the precautions a remote start needs."""
    data_dir = data_dir_of(args)
    yes = bool(args.yes)
    return asyncio.run(_arm(data_dir, yes=yes, interactive=sys.stdin.isatty()))


async def _arm(data_dir: Path, *, yes: bool, interactive: bool) -> int:
    from controller.cli.run import Terminal
    from controller.daemon.client import arm_remote_start

    armed, sentence = await arm_remote_start(data_dir, Terminal(yes=yes, interactive=interactive))
    print(f"relieve: {sentence}", file=sys.stderr)
    return EXIT_OK if armed else EXIT_FAILED
