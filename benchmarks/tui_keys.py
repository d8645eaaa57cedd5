"""Key latency of the terminal UI at x1 real time: how soon a key reaches the simulated pad.

The app (``tui.app.build_app``) runs headless with ``App.run_test`` at 80x24 on a simulated
heat pad, in real time (no clock of its own: the session's clock is a ``MonotonicClock``), with
a heat profile written to a temporary directory, the precautions confirmed (``yes=True``) and a
throw-away ledger (``Ledger.open_temporary``). Once the heat phase runs with the pad's output
ON, the benchmark presses ``space`` and measures real time from the key press to the simulated
pad itself reporting its output OFF, then ``space`` again to the pad reporting ON, N times;
then ``s`` and the time until every simulated output is OFF. The device's own state is read
through its state callbacks (``SimulatedDevice.register_callback``), stamped with
``time.perf_counter`` as each snapshot is published -- not what the driver believes.

Radios (``--radio``):

* ``in-process`` (default): the request has ``simulate=True``, as ``relieve tui --simulate``;
  the session's radio opens its own simulated world, read from ``Session.radio.world`` while
  the session runs. The link has no latency of its own.
* ``hci``: a world of the same device on a ``MonotonicClock``, served by an ``HciServer`` on a
  unix socket in the temporary directory, and ``simulator=`` its address (as ``relieve sim
  serve`` and the tests' rig): every command also crosses an HCI transport.

Figures: p50, p99 (nearest rank) and max in milliseconds for pause (key -> OFF), resume (key ->
ON) and stop (key -> every output OFF; one sample per session, ``--sessions`` for more), and
whether each meets the target: within 100 ms at x1.

    python benchmarks/tui_keys.py                    # a readable table
    python benchmarks/tui_keys.py --repeats 50       # 50 pauses and resumes (default 20)
    python benchmarks/tui_keys.py --sessions 3       # three sessions: three stop samples
    python benchmarks/tui_keys.py --radio hci        # over an HCI socket
    python benchmarks/tui_keys.py --json             # one JSON object

Each session first pre-heats the pad to within 1 °C of 40 °C in real time (about half a
minute), then presses its keys a quarter of a second apart. The exit status is 1 when a key
never reached the pad or a session did not end stopped with every device OFF; a figure over
the target is reported, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.ledger import Ledger
from controller.library import ProfileLibrary
from controller.session.service import Session, SessionRequest, SessionService
from drivers.core.clock import MonotonicClock
from simulators.devices.state import DeviceState
from simulators.hci_server import HciServer
from simulators.world import SimWorld
from tui.app import RelieveApp, build_app

REPEATS = 20  # pauses and resumes per session unless --repeats says otherwise
SESSIONS = 1
TARGET_MS = 100.0  # a key must reach the device within this, at x1
HEAT_PAD = "heat-pad"  # simulators.catalog
HEAT_PAD_ADDRESS = "C0:DE:00:00:00:02"
SIZE = (80, 24)
BETWEEN_KEYS_S = 0.25  # real seconds between one key's effect and the next key
KEY_TIMEOUT_S = 5.0  # real seconds a key may take to reach the pad before the run fails
READY_TIMEOUT_S = 240.0  # real seconds for binding and the pre-heat (at most 120 s of it)
FINISH_TIMEOUT_S = 15.0  # real seconds from every output OFF to the session's end
POLL_S = 0.01  # real seconds between looks at the app while waiting for it

PROFILE = """\
name = "tui-keys-heat"
title = "Key latency, heat"
kind = "heat"
area = "lower-back"

[heat]
minutes = 10
celsius = 40
"""


class BenchError(Exception):
    """A session of the benchmark did not do what it must (the message says what)."""


def output_off(state: DeviceState) -> bool:
    """The device reports its output OFF and nothing heats or cools (as tests/tui_rig.py)."""
    return not state.output_on and not state.energised


class Watch:
    """The latest state each watched simulated device published, and the real time (a
    ``perf_counter`` reading) at which a condition over them first held."""

    def __init__(self, world: SimWorld) -> None:
        self.states: dict[str, DeviceState] = {d.key: d.state for d in world}
        self._waiters: list[tuple[Callable[[Mapping[str, DeviceState]], bool], _Stamp]] = []
        self._unregister = world.register_callback(self._seen)

    def _seen(self, state: DeviceState) -> None:
        now = time.perf_counter()
        self.states[state.key] = state
        for condition, stamp in list(self._waiters):
            if not stamp.future.done() and condition(self.states):
                stamp.future.set_result(now)
                self._waiters.remove((condition, stamp))

    def expect(self, condition: Callable[[Mapping[str, DeviceState]], bool]) -> _Stamp:
        """A stamp for the first snapshot from now on for which ``condition`` holds (it must
        not hold yet: the key under test is what makes it so)."""
        if condition(self.states):
            raise BenchError("the condition already held before the key was pressed")
        stamp = _Stamp(asyncio.get_running_loop().create_future())
        self._waiters.append((condition, stamp))
        return stamp

    def close(self) -> None:
        self._unregister()


@dataclass
class _Stamp:
    future: asyncio.Future[float]

    async def after(self, pressed: float, what: str) -> float:
        """Milliseconds from ``pressed`` to the stamp."""
        try:
            seen = await asyncio.wait_for(self.future, KEY_TIMEOUT_S)
        except TimeoutError:
            raise BenchError(f"{what}: the pad did not follow within {KEY_TIMEOUT_S:g} s") from None
        return (seen - pressed) * 1000.0


def pad_on(states: Mapping[str, DeviceState]) -> bool:
    return states[HEAT_PAD].output_on


def every_output_off(states: Mapping[str, DeviceState]) -> bool:
    return all(output_off(state) for state in states.values())


@dataclass
class Samples:
    pause_ms: list[float] = field(default_factory=list)
    resume_ms: list[float] = field(default_factory=list)
    stop_ms: list[float] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)


# --- the radio ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _radio(
    kind: str, directory: Path
) -> AsyncIterator[tuple[SessionRequest, SimWorld | None]]:
    """The request for ``kind`` of radio, and its simulated world when the benchmark serves it
    (None: the session opens its own, read from ``Session.radio``)."""
    profile = directory / "tui-keys-heat.toml"
    profile.write_text(PROFILE, encoding="utf-8")
    roles = {"heat": HEAT_PAD_ADDRESS}
    if kind == "hci":
        world = SimWorld(clock=MonotonicClock(), devices=[HEAT_PAD])
        socket = directory / "sim.sock"
        async with world, await HciServer.start(world.link, f"unix:{socket}") as hci:
            request = SessionRequest(
                profile=str(profile), roles=roles, simulator=hci.client_spec, started_by="bench"
            )
            yield request, world
        return
    request = SessionRequest(
        profile=str(profile), roles=roles, simulate=True, world=(HEAT_PAD,), started_by="bench"
    )
    yield request, None


# --- one session -------------------------------------------------------------------------------


async def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            raise BenchError(f"{what} did not happen within {timeout_s:g} s")
        await asyncio.sleep(POLL_S)


def _in_heat(app: RelieveApp) -> bool:
    screen, session = app.session_screen, app.session
    if screen is None or session is None or not session.running or session.paused:
        return False
    phase = screen.model.phase
    return phase is not None and phase.mode == "heat"


async def one_session(kind: str, repeats: int, samples: Samples) -> None:
    """A session on a fresh world and ledger: ``repeats`` pauses and resumes, then a stop."""
    with tempfile.TemporaryDirectory(prefix="relieve-tui-keys-") as name:
        directory = Path(name)
        config = directory / "config"
        (config / "profiles").mkdir(parents=True)
        service = SessionService(ProfileLibrary(config), config_dir=config)
        async with _radio(kind, directory) as (request, served):
            with Ledger.open_temporary(simulated=True) as ledger:
                app = build_app(request, service=service, ledger=ledger, yes=True)
                async with app.run_test(size=SIZE) as pilot:

                    def world_of() -> SimWorld | None:
                        session = app.session  # in this process: no daemon is looked for
                        radio = session.radio if isinstance(session, Session) else None
                        return served or (radio.world if radio is not None else None)

                    await _until(lambda: world_of() is not None, READY_TIMEOUT_S, "the world")
                    world = world_of()
                    if world is None:
                        raise BenchError("the session's radio has no simulated world")
                    watch = Watch(world)
                    try:
                        await _until(
                            lambda: _in_heat(app) and world.device(HEAT_PAD).state.output_on,
                            READY_TIMEOUT_S,
                            "the heat phase with the pad ON",
                        )
                        for _ in range(repeats):
                            off = watch.expect(every_output_off)
                            pressed = time.perf_counter()
                            await pilot.press("space")
                            samples.pause_ms.append(await off.after(pressed, "pause"))
                            await asyncio.sleep(BETWEEN_KEYS_S)
                            on = watch.expect(pad_on)
                            pressed = time.perf_counter()
                            await pilot.press("space")
                            samples.resume_ms.append(await on.after(pressed, "resume"))
                            await asyncio.sleep(BETWEEN_KEYS_S)
                        off = watch.expect(every_output_off)
                        pressed = time.perf_counter()
                        await pilot.press("s")
                        samples.stop_ms.append(await off.after(pressed, "stop"))
                        await _until(
                            lambda: app.finished is not None and app.session is None,
                            FINISH_TIMEOUT_S,
                            "the end of the session",
                        )
                    finally:
                        watch.close()
                    finished = app.finished
                    if finished is None:
                        raise BenchError("the session ended without its Finished event")
                    samples.outcomes.append(finished.outcome)
                    if finished.outcome != "stopped" or not finished.devices_off:
                        raise BenchError(
                            f"the session ended {finished.outcome} "
                            f"({'every device OFF' if finished.devices_off else 'NOT all OFF'})"
                        )


# --- figures -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.99 -> p99) of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def figures(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None, "meets_target": False}
    p50, p99, top = statistics.median(values), percentile(values, 0.99), max(values)
    return {
        "n": len(values),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(top, 2),
        "meets_target": top <= TARGET_MS,
        "samples_ms": [round(v, 2) for v in values],
    }


async def run_all(kind: str, repeats: int, sessions: int) -> dict[str, Any]:
    samples = Samples()
    error: str | None = None
    try:
        for _ in range(sessions):
            await one_session(kind, repeats, samples)
    except BenchError as exc:
        error = str(exc)
    keys = {
        "pause": figures(samples.pause_ms),
        "resume": figures(samples.resume_ms),
        "stop": figures(samples.stop_ms),
    }
    return {
        "radio": kind,
        "speed": 1,
        "repeats": repeats,
        "sessions": sessions,
        "target_ms": TARGET_MS,
        "keys": keys,
        "all_meet_target": error is None and all(k["meets_target"] for k in keys.values()),
        "outcomes": samples.outcomes,
        "error": error,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


_WHAT = {
    "pause": "space -> pad OFF",
    "resume": "space -> pad ON",
    "stop": "s -> every output OFF",
}


def _table(results: dict[str, Any]) -> str:
    target = results["target_ms"]
    lines = [f"{'key':<30}{'n':>4}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}  target {target:g} ms"]
    for name, f in results["keys"].items():
        label = f"{name} ({_WHAT[name]})"
        if not f["n"]:
            lines.append(f"{label:<30}{0:>4}{'-':>9}{'-':>9}{'-':>9}  no samples")
            continue
        met = "met" if f["meets_target"] else "NOT met"
        numbers = f"{f['p50_ms']:>9.1f}{f['p99_ms']:>9.1f}{f['max_ms']:>9.1f}"
        lines.append(f"{label:<30}{f['n']:>4}{numbers}  {met}")
    lines.append(
        f"x1 real time, {results['radio']} radio, {results['repeats']} pauses and resumes in each "
        f"of {results['sessions']} session(s), app at {SIZE[0]}x{SIZE[1]}, {results['python']}."
    )
    if results["error"]:
        lines.append(f"FAILED: {results['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--repeats", type=int, default=REPEATS, help=f"pauses and resumes (default {REPEATS})"
    )
    parser.add_argument(
        "--sessions", type=int, default=SESSIONS, help=f"sessions, one stop each ({SESSIONS})"
    )
    parser.add_argument(
        "--radio", choices=("in-process", "hci"), default="in-process", help="see the docstring"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    results = asyncio.run(run_all(args.radio, args.repeats, args.sessions))
    sys.stdout.write((json.dumps(results, indent=2) if args.json else _table(results)) + "\n")
    if results["error"]:
        sys.stderr.write(f"tui_keys: {results['error']}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
