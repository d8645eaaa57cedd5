"""The simulator server behind ``relieve sim serve``: every simulated device behind an HCI socket.

::

    async with await SimServer.start("unix:/tmp/relieve.sock", clock=ScaledClock(10)) as server:
        print(server.ready_message())        # clients: --simulator unix:/tmp/relieve.sock
        ...

A :class:`SimServer` is a :class:`~simulators.world.SimWorld` of every device type (on the
injected clock, with an optional fault scenario) and a :class:`~simulators.hci_server.HciServer`
on a unix or TCP socket: each connecting process gets its own virtual controller on the world's
radio; when a process goes away (even ``kill -9``) its links end and the devices advertise
again. :func:`serve` runs one until SIGINT/SIGTERM (or a given event) and stops it cleanly.

With an event callback the server reports device state changes as JSON-ready dicts
(:func:`event_line`, documented in docs/sim-server.md). A "change" is a change of what a person
would read off the device: mode, on/off, setpoint, flags, faults, link, a temperature by
0.1 degC, a speed by 10 per minute, the battery by 1 %; not every clock second's drift of a
countdown.

Importing this module does not import bumble (the world and the HCI server are imported when
a server starts), so the command line can check its arguments first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

from profiles.errors import printable
from simulators.catalog import DeviceFamily, SimulatorError, spec_for

if TYPE_CHECKING:
    from types import TracebackType

    from drivers.core.clock import Clock
    from simulators.devices.state import DeviceState
    from simulators.faults import Scenario
    from simulators.hci_server import HciServer
    from simulators.world import SimWorld

__all__ = [
    "OUTPUT_OF_FAMILY",
    "EventCallback",
    "EventStream",
    "ServeError",
    "SimServer",
    "change_key",
    "event_line",
    "serve",
    "tcp_listen_spec",
    "unix_listen_spec",
]

logger = logging.getLogger(__name__)

# Real seconds to wait for an existing socket file to accept a probe connection: a live
# server on the same machine accepts at once; one that does not answer in this time is
# treated as busy (in use), never deleted.
SOCKET_PROBE_TIMEOUT_S = 0.5
# Event-loop turns given, on shutdown, for the devices to hear their links end (link loss
# turns a running output OFF) and report it, before they are taken off the air: a link's end
# travels server -> controller -> device in a few turns.
SHUTDOWN_SETTLE_TURNS = 20

# Resolutions below which a reading is "the same" for --events-json (what a display shows):
TEMPERATURE_STEP_C = 0.1  # plate, skin and sensor temperatures
SPEED_STEP_PPM = 10.0  # measured gun speed, percussions per minute
FORCE_STEP_N = 1.0  # measured gun load
BATTERY_STEP_PCT = 1.0  # battery charge
TIMER_STEP_S = 3600.0  # the heating mat's timer reports whole hours

OUTPUT_OF_FAMILY: dict[DeviceFamily, str] = {
    DeviceFamily.OPEN_THERMAL: "thermal",
    DeviceFamily.HEATING_MAT: "thermal",
    DeviceFamily.OPEN_PERCUSSION: "percussion",
    DeviceFamily.THERAGUN: "percussion",
    DeviceFamily.SKIN_PROBE: "probe",
}
"""What kind of output a device family drives (``probe``: none, it only measures)."""

EventCallback = Callable[[dict[str, object]], None]
"""Receives one JSON-ready event (:func:`event_line`); must not block for long."""


class ServeError(SimulatorError):
    """The simulator server cannot start (socket in use, address not available, ...)."""


# --- where to listen ---------------------------------------------------------------------


def unix_listen_spec(path: str | Path) -> str:
    """The listen string of a unix socket at ``path`` (made absolute, so clients can use it)."""
    return f"unix:{Path(path).expanduser().absolute()}"


def tcp_listen_spec(host: str, port: int) -> str:
    """The listen string of a TCP socket (port 0 picks a free one)."""
    if not 0 <= port <= 65535:
        raise ServeError(f"A TCP port is 0..65535, not {port}.")
    return f"tcp-server:{host or '127.0.0.1'}:{port}"


def _unix_path(listen: str) -> Path | None:
    scheme, _, where = listen.partition(":")
    return Path(where) if scheme in ("unix", "unix-server") and where else None


def _what_is_at(path: Path) -> Literal["nothing", "socket", "directory", "other"]:
    """What the file system holds at ``path``.

    A stat is a metadata-only, local operation: fine on the loop thread.
    """
    if not path.exists():
        return "nothing"
    if path.is_socket():
        return "socket"
    return "directory" if path.is_dir() else "other"


async def _check_socket_path(path: Path) -> None:
    """Refuse a path that is not a socket, is in no directory, or that a live server answers on.

    A socket file nobody answers on is left by a server that was killed; asyncio replaces it.
    """
    found = _what_is_at(path)
    if found == "nothing":
        if _what_is_at(path.parent) != "directory":
            raise ServeError(
                f"Cannot listen on {printable(str(path))}: there is no directory "
                f"{printable(str(path.parent))}; create it, "
                "or choose another --socket path."
            )
        return
    if found != "socket":
        raise ServeError(
            f"{printable(str(path))} exists and is not a socket: choose another --socket path."
        )
    try:
        async with asyncio.timeout(SOCKET_PROBE_TIMEOUT_S):
            _, writer = await asyncio.open_unix_connection(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        logger.info("replacing the stale socket %s (nobody answers on it)", path)
        return
    except (OSError, TimeoutError) as exc:
        raise ServeError(
            f"Something holds the socket {printable(str(path))} and does not answer "
            f"({exc or 'time-out'}): "
            "stop it, or choose another --socket path."
        ) from exc
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    raise ServeError(
        f"Another simulator is already serving on {printable(str(path))}: stop it, or choose "
        "another --socket path."
    )


def _bound(listen: str, hci: HciServer) -> str:
    """``listen`` with the port the system picked (``tcp-server:127.0.0.1:0`` asks for one)."""
    scheme, _, where = hci.client_spec.partition(":")
    return f"tcp-server:{where}" if scheme == "tcp-client" else listen


def _listen_error(listen: str, exc: OSError) -> ServeError:
    # asyncio's bind error repeats the address in its text: say the errno's meaning instead
    if isinstance(exc, socket.gaierror) or not exc.errno or exc.errno < 0:
        reason = exc.strerror or str(exc)  # a name lookup, or an error without an errno
    else:
        reason = os.strerror(exc.errno)
    reason = reason.rstrip(".")
    path = _unix_path(listen)
    if path is not None:
        return ServeError(
            f"Cannot listen on {printable(str(path))}: {reason}; choose another --socket path."
        )
    where = listen.partition(":")[2]
    return ServeError(
        f"Cannot listen on {printable(where)}: {reason}; choose another --tcp HOST:PORT."
    )


# --- events ------------------------------------------------------------------------------


def _clean(value: float | None, digits: int) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, digits)


def _step(value: float | None, step: float) -> int | str | None:
    """``value`` on a grid of ``step`` (what a display of that resolution would show)."""
    if value is None:
        return None
    if not math.isfinite(value):
        return str(value)
    return round(value / step)


def event_line(state: DeviceState, started_at: float) -> dict[str, object]:
    """One ``--events-json`` line: ``state`` with ``t`` counted from ``started_at`` (clock s)."""
    family = spec_for(state.key).family
    output = OUTPUT_OF_FAMILY[family]
    celsius = state.skin_c if output == "probe" else state.plate_c
    return {
        "t": round(state.time - started_at, 3),
        "device": state.key,
        "output": output,
        "on": state.output_on,
        "celsius": _clean(celsius, 2),
        "mode": state.mode,
        "setpoint": _clean(state.setpoint_c, 2),
        "energised": state.energised,
        "skin_celsius": _clean(state.skin_c, 2),
        "sensor_celsius": _clean(state.sensor_c, 2),
        "rpm": _clean(state.speed_ppm, 0),
        "target_rpm": state.target_speed_ppm,
        "force_n": _clean(state.force_n, 1),
        "level": state.level,
        "timer_s": _clean(state.timer_remaining_s, 1),
        "run_time_s": _clean(state.run_time_s, 1),
        "lease_s": _clean(state.lease_remaining_s, 3),
        "battery": _clean(state.battery_pct, 1),
        "connected": state.connected,
        "advertising": state.advertising,
        "powered": state.powered,
        "flags": list(state.flags),
        "faults": list(state.faults),
        "placed_under": state.placed_under,
        "address": state.address,
    }


def change_key(state: DeviceState) -> tuple[object, ...]:
    """What must differ between two snapshots of a device for the second to be reported."""
    return (
        state.powered,
        state.advertising,
        state.connected,
        state.output_on,
        state.energised,
        state.mode,
        state.setpoint_c,
        state.target_speed_ppm,
        state.level,
        state.flags,
        state.faults,
        state.placed_under,
        _step(state.plate_c, TEMPERATURE_STEP_C),
        _step(state.skin_c, TEMPERATURE_STEP_C),
        _step(state.sensor_c, TEMPERATURE_STEP_C),
        _step(state.speed_ppm, SPEED_STEP_PPM),
        _step(state.force_n, FORCE_STEP_N),
        _step(state.battery_pct, BATTERY_STEP_PCT),
        None
        if state.timer_remaining_s is None
        else math.ceil(state.timer_remaining_s / TIMER_STEP_S),
    )


class EventStream:
    """A world state callback that hands on each device's *changes* as event lines."""

    def __init__(self, started_at: float, emit: EventCallback) -> None:
        self.started_at = started_at
        self._emit = emit
        self._last: dict[str, tuple[object, ...]] = {}

    def __call__(self, state: DeviceState) -> None:
        key = change_key(state)
        if self._last.get(state.key) == key:
            return
        self._last[state.key] = key
        self._emit(event_line(state, self.started_at))


# --- the server --------------------------------------------------------------------------


class SimServer:
    """A world of every simulated device, served over a socket (see :meth:`start`)."""

    def __init__(
        self,
        world: SimWorld,
        hci: HciServer,
        *,
        listen: str,
        started_at: float,
        unwatch: Callable[[], None] | None,
    ) -> None:
        self.world = world
        self.hci = hci
        self.listen = listen  # where it listens: unix:/path or tcp-server:host:port (bound)
        self.started_at = started_at  # world clock time of the start; events count from it
        self._unwatch = unwatch
        self._closed = False

    @classmethod
    async def start(
        cls,
        listen: str,
        *,
        clock: Clock | None = None,
        scenario: Scenario | None = None,
        on_event: EventCallback | None = None,
    ) -> SimServer:
        """Listen on ``unix:/path`` or ``tcp-server:host:port`` and put every device on the air.

        ServeError (one sentence) when the socket cannot be had; the scenario's faults count
        from the start.
        """
        path = _unix_path(listen)
        if path is not None:
            await _check_socket_path(path)
        # bumble is imported here, not when the command line starts.
        from simulators.hci_server import HciServer
        from simulators.world import SimWorld

        world = SimWorld(clock=clock, scenario=scenario)
        try:
            hci_server = await HciServer.start(world.link, listen)
        except OSError as exc:
            raise _listen_error(listen, exc) from exc
        except ValueError as exc:
            raise ServeError(str(exc)) from exc
        started_at = world.clock.now()
        unwatch = (
            world.register_callback(EventStream(started_at, on_event))
            if on_event is not None
            else None
        )
        try:
            await world.start()
        except BaseException:
            if unwatch is not None:
                unwatch()
            await hci_server.close()
            raise
        server = cls(
            world,
            hci_server,
            listen=_bound(listen, hci_server),
            started_at=started_at,
            unwatch=unwatch,
        )
        logger.info("simulator server: %d devices on %s", len(world), listen)
        return server

    @property
    def client_spec(self) -> str:
        """What a client passes to ``--simulator`` (``unix:/path`` or ``tcp-client:host:port``)."""
        return self.hci.client_spec

    @property
    def clients(self) -> int:
        """How many host processes are connected now."""
        return len(self.hci.sessions)

    def ready_message(self) -> str:
        """The line printed when the server is ready (scripts wait for it)."""
        extras = ""
        speed = self.world.clock.speed
        if speed != 1.0:
            extras += f", clock x{speed:g}"
        scenario = self.world.scenario
        if scenario is not None:
            extras += f", scenario {scenario.name or 'unnamed'!r}"
        return (
            f"relieve simulator: {len(self.world)} devices on {self.listen}{extras} "
            f"(connect with --simulator {self.client_spec})"
        )

    async def close(self) -> None:
        """Hang up on every client, let the devices see it, take them off the air (idempotent).

        The socket file of a unix socket is removed.
        """
        if self._closed:
            return
        self._closed = True
        await self.hci.close()
        for _ in range(SHUTDOWN_SETTLE_TURNS):
            await asyncio.sleep(0)
        if self._unwatch is not None:
            self._unwatch()
        await self.world.stop()
        logger.info("simulator server stopped")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def serve(
    listen: str,
    *,
    clock: Clock | None = None,
    scenario: Scenario | None = None,
    on_event: EventCallback | None = None,
    on_ready: Callable[[SimServer], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run a :class:`SimServer` until ``stop`` is set (default: until SIGINT or SIGTERM)."""
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform
                loop.add_signal_handler(signum, stop.set)
                handled.append(signum)
    try:
        async with await SimServer.start(
            listen, clock=clock, scenario=scenario, on_event=on_event
        ) as server:
            if on_ready is not None:
                on_ready(server)
            await stop.wait()
            logger.info("simulator server stopping")
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
