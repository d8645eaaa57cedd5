"""Benchmark of whole therapy sessions run in virtual time (drivers.core.clock.VirtualClock).

Each session goes through the real code: the SessionRunner, the drivers, the simulated bleak
backend and simulated devices on the in-process bumble radio, with a ledger in a temporary
directory. Only the session itself is timed, in real (wall) time, from starting the runner to
its Finished; building the world and connecting the devices are not. Scenarios:

* ``contrast-lower-back`` (pre-heat, then 3 x (5 min heat + 5 min cold)) on the contrast pad
  (heat and cold) with the skin probe: the standard test session,
* the same profile on the contrast pad alone (no probe),
* ``routine-lower-back`` on the demo world (contrast pad for heat and cold, massage gun, skin
  probe): what ``relieve demo`` runs.

For each: wall seconds p50 / min / max, clock seconds (the clock's advance from start to
finish, and Finished's delivered seconds), clock seconds per wall second, events emitted and
the outcome (every run must complete; the exit status is 1 when one does not).

    python benchmarks/session_bench.py                # a readable table
    python benchmarks/session_bench.py --runs 10      # each scenario 10 times (default 5)
    python benchmarks/session_bench.py --json         # one JSON object
    python benchmarks/session_bench.py --ledger-dir /tmp   # the ledger on a disk instead

The ledger goes to a RAM disk (/dev/shm) when the machine has one: every heartbeat (each 10
clock seconds) is a synchronous SQLite commit, about 1 ms on a disk, and a session in virtual
time beats every few milliseconds of real time. ``--ledger-dir`` measures with it elsewhere.

Target (issue 5): a 30-minute session in well under a second of wall time (scenario 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.ledger import Ledger
from controller.library import ProfileLibrary
from controller.session.bindings import SessionDevices
from controller.session.events import Event, Finished
from controller.session.runner import SessionRunner
from controller.session.simulation import open_radio
from drivers.core.backend import BleBackend
from drivers.core.clock import VirtualClock
from drivers.core.factory import AnyDevice, open_device
from profiles.compiler import compile_plan

RUNS = 5  # sessions per scenario unless --runs says otherwise

# Built-in profiles only: a config directory that does not exist holds no user profiles.
LIBRARY = ProfileLibrary(Path("/nonexistent-relieve-config"))
# The simulated devices' addresses (simulators.catalog), as tests/session_harness.py has them.
ADDRESSES = {
    "contrast-pad": "C0:DE:00:00:00:01",
    "massage-gun": "C0:DE:00:00:00:04",
    "skin-probe": "C0:DE:00:00:00:07",
}
DISCONNECT_TIMEOUT_S = 3.0  # real seconds per device when letting go at the end


@dataclass(frozen=True)
class Scenario:
    name: str
    profile: str
    roles: Mapping[str, str]  # role (heat, cold, gun, probe) -> catalog key

    @property
    def world(self) -> tuple[str, ...]:
        """The simulated devices the world holds: each bound device once."""
        return tuple(dict.fromkeys(self.roles.values()))


SCENARIOS = (
    Scenario(
        "contrast-lower-back pad+probe",
        "contrast-lower-back",
        {"heat": "contrast-pad", "cold": "contrast-pad", "probe": "skin-probe"},
    ),
    Scenario(
        "contrast-lower-back pad",
        "contrast-lower-back",
        {"heat": "contrast-pad", "cold": "contrast-pad"},
    ),
    Scenario(
        "routine-lower-back demo world",
        "routine-lower-back",
        {
            "heat": "contrast-pad",
            "cold": "contrast-pad",
            "gun": "massage-gun",
            "probe": "skin-probe",
        },
    ),
)


@dataclass(frozen=True)
class RunResult:
    wall_s: float  # real seconds from starting the runner to its Finished
    clock_s: float  # clock.now() at Finished minus clock.now() at the start
    finished: Finished
    events: int


async def _bind(
    roles: Mapping[str, str], radio_backend: BleBackend, clock: VirtualClock
) -> SessionDevices:
    """Connect each simulated device once and give it its roles."""
    devices = SessionDevices()
    opened: dict[str, AnyDevice] = {}
    for role, key in roles.items():
        if key not in opened:
            opened[key] = await open_device(ADDRESSES[key], backend=radio_backend, clock=clock)
            await opened[key].connect()
        if not devices.assign(role, opened[key]):
            raise RuntimeError(f"{key} cannot take the {role} role")
    return devices


async def run_once(scenario: Scenario, data_dir: Path) -> RunResult:
    """One session of ``scenario`` on a fresh world, clock and ledger."""
    clock = VirtualClock()
    events: list[Event] = []
    async with open_radio(simulate=True, clock=clock, devices=scenario.world) as radio:
        ledger = Ledger.open(data_dir, simulated=True)
        devices = SessionDevices()
        try:
            devices = await _bind(scenario.roles, radio.backend, clock)
            plan = compile_plan(
                LIBRARY.get(scenario.profile), devices.capabilities(), resolve=LIBRARY.get
            )
            recorder = ledger.start_session(
                plan.name, plan.kind, started_at=ledger.now(), extended=plan.extended
            )
            runner = SessionRunner(
                plan, devices, clock, emit=events.append, recorder=recorder, simulated=True
            )
            clock_start = clock.now()
            wall_start = time.perf_counter()
            task = asyncio.ensure_future(runner.run())
            await clock.run(task)
            wall_s = time.perf_counter() - wall_start
            clock_s = clock.now() - clock_start
            finished = task.result()
        finally:
            for device in devices.all_devices():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(device.disconnect(), DISCONNECT_TIMEOUT_S)
            ledger.close()
    return RunResult(wall_s, clock_s, finished, len(events))


def _summary(runs: list[RunResult]) -> dict[str, Any]:
    walls = sorted(r.wall_s for r in runs)
    clocks = [r.clock_s for r in runs]
    p50 = statistics.median(walls)
    clock_p50 = statistics.median(clocks)
    outcomes = [r.finished.outcome for r in runs]
    return {
        "clock_s": round(clock_p50, 3),
        "clock_s_min": round(min(clocks), 3),
        "clock_s_max": round(max(clocks), 3),
        "delivered_s": sorted({r.finished.delivered_s for r in runs}),
        "wall_s": {
            "p50": round(p50, 4),
            "min": round(walls[0], 4),
            "max": round(walls[-1], 4),
            "samples": [round(r.wall_s, 4) for r in runs],
        },
        "clock_s_per_wall_s": round(clock_p50 / p50, 1) if p50 > 0 else None,
        "events": sorted({r.events for r in runs}),
        "outcomes": outcomes,
        "reasons": sorted({r.finished.reason for r in runs if r.finished.reason is not None}),
        "devices_off": all(r.finished.devices_off for r in runs),
        "completed": all(outcome == "completed" for outcome in outcomes),
    }


# A RAM disk for the ledger, where the machine has one (see the module's docstring).
RAM_DISK = Path("/dev/shm")  # noqa: S108 - only ever a parent for mkdtemp


def default_ledger_parent() -> Path | None:
    """The RAM disk when it is a writable directory, else None (the system's temp directory)."""
    try:
        with tempfile.TemporaryDirectory(dir=RAM_DISK):
            return RAM_DISK
    except OSError:
        return None


async def run_all(runs: int, ledger_parent: Path | None) -> dict[str, Any]:
    scenarios: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(
        prefix="relieve-session-bench-", dir=ledger_parent
    ) as directory:
        for number, scenario in enumerate(SCENARIOS, start=1):
            results = [
                await run_once(scenario, Path(directory) / f"scenario{number}-run{run}")
                for run in range(1, runs + 1)
            ]
            scenarios[scenario.name] = {"profile": scenario.profile, **_summary(results)}
    return {
        "scenarios": scenarios,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "runs": runs,
        "ledger_dir": str(ledger_parent or tempfile.gettempdir()),
        "completed": all(s["completed"] for s in scenarios.values()),
    }


def _joined(values: list[Any]) -> str:
    return "/".join(str(v) for v in values)


def _table(results: dict[str, Any]) -> str:
    lines = [
        f"{'scenario':<32}{'clock s':>9}{'delivered s':>13}{'wall p50':>11}{'min':>9}{'max':>9}"
        f"{'x real time':>13}{'events':>8}  outcome"
    ]
    for name, s in results["scenarios"].items():
        wall = s["wall_s"]
        outcome = _joined(sorted(set(s["outcomes"])))
        if s["reasons"]:
            outcome += f" ({'; '.join(s['reasons'])})"
        lines.append(
            f"{name:<32}{s['clock_s']:>9.1f}{_joined(s['delivered_s']):>13}"
            f"{wall['p50']:>9.3f} s{wall['min']:>7.3f} s{wall['max']:>7.3f} s"
            f"{s['clock_s_per_wall_s'] or 0:>12.0f}x{_joined(s['events']):>8}  {outcome}"
        )
    lines.append(
        f"{results['runs']} runs each, {results['python']}, ledger in {results['ledger_dir']}. "
        "Target (issue 5): a 30-minute session in well under a second of wall time (scenario 1)."
    )
    if not results["completed"]:
        lines.append("NOT every session completed: see the outcomes above.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=RUNS, help=f"per scenario (default {RUNS})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--ledger-dir",
        type=Path,
        help="where the sessions' ledgers go (default: /dev/shm when there is one)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.ledger_dir is not None and not args.ledger_dir.is_dir():
        parser.error(f"--ledger-dir {args.ledger_dir} is not a directory")
    ledger_parent = args.ledger_dir if args.ledger_dir is not None else default_ledger_parent()
    results = asyncio.run(run_all(args.runs, ledger_parent))
    sys.stdout.write((json.dumps(results, indent=2) if args.json else _table(results)) + "\n")
    if not results["completed"]:
        sys.stderr.write("session_bench: not every session completed\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
