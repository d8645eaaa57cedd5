"""The history never blocks a session's timing and never fails silently (S3).

* A write lock held by another process for 20 s during heat delays no lease renewal: the
  session's records wait on their own thread while the pad is kept on its lease (real time: a
  frozen event loop only shows against real time).
* A write that fails mid-phase (here a full disk: the file-size limit of the process) ends the
  session at once with every output OFF, outcome ``aborted``, one sentence saying the history
  cannot be written, and a non-zero exit.
* A history that stops answering altogether ends the session after the stall limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from controller.cli.console import LiveView
from controller.ledger import Ledger
from controller.ledger.writer import LedgerWriter
from controller.session.bindings import SessionDevices
from controller.session.events import Alarm, Event, Finished, PhaseChanged, StateChanged
from controller.session.runner import SessionRunner
from controller.session.simulation import open_radio
from drivers.core.clock import MonotonicClock
from drivers.core.factory import open_device
from profiles.compiler import compile_plan
from profiles.parse import parse_profile
from simulators.devices.state import DeviceState
from tests.session_harness import ADDRESSES, LIBRARY, assert_off, bench, file_size_limit

HEAT_PAD = "heat-pad"
LOCK_S = 20.0
TIMEOUT_S = 60.0

# 34 °C is within a degree of the resting plate, so pre-heat ends at once and the real-time
# test spends its time in the heat phase.
HEAT_WARM = """
name = "heat-warm"
title = "Warm, one minute"
kind = "heat"
area = "lower-back"

[heat]
minutes = 1
celsius = 34
"""

HEAT_TWO = """
name = "heat-two"
title = "Two minutes of heat"
kind = "heat"
area = "lower-back"

[heat]
minutes = 2
celsius = 40
"""

# Another process that takes the ledger's write lock, says so, and holds it.
HOLD_LOCK = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
    """
)


async def _hold_lock(path: Path, seconds: float) -> asyncio.subprocess.Process:
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD_LOCK,
        str(path),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert await asyncio.wait_for(holder.stdout.readline(), TIMEOUT_S) == b"locked\n"
    return holder


async def test_a_write_lock_held_for_20_s_during_heat_delays_no_lease_renewal(
    tmp_path: Path,
) -> None:
    clock = MonotonicClock()
    seen: list[tuple[float, DeviceState]] = []
    events: list[Event] = []
    running = asyncio.Event()

    def emit(event: Event) -> None:
        events.append(event)
        if isinstance(event, StateChanged) and event.state == "running":
            running.set()

    async with open_radio(simulate=True, clock=clock, devices=(HEAT_PAD,)) as radio:
        assert radio.world is not None
        world = radio.world
        world.register_callback(lambda state: seen.append((time.monotonic(), state)))
        with Ledger.open(tmp_path / "data", simulated=True) as ledger:
            pad = await open_device(ADDRESSES[HEAT_PAD], backend=radio.backend, clock=clock)
            await pad.connect()
            try:
                devices = SessionDevices()
                devices.assign("heat", pad)
                profile = parse_profile(HEAT_WARM, "heat-warm.toml")
                plan = compile_plan(profile, devices.capabilities(), resolve=LIBRARY.get)
                recorder = ledger.start_session(plan.name, plan.kind, started_at=ledger.now())
                runner = SessionRunner(plan, devices, clock, emit=emit, recorder=recorder)
                session = asyncio.ensure_future(runner.run())
                await asyncio.wait_for(running.wait(), TIMEOUT_S)
                holder = await _hold_lock(ledger.path, LOCK_S)
                locked_at = time.monotonic()
                await asyncio.wait_for(holder.wait(), TIMEOUT_S)
                released_at = time.monotonic()
                await asyncio.sleep(2.0)  # the records queued behind the lock are written
                runner.stop()
                finished = await asyncio.wait_for(session, TIMEOUT_S)
            finally:
                await pad.disconnect()
        assert_off(world, HEAT_PAD)

    assert released_at - locked_at >= LOCK_S - 0.5
    assert finished.outcome == "stopped", finished
    assert finished.recorded
    assert [e for e in events if isinstance(e, Alarm)] == []
    # the pad stayed on, its lease renewed all along: never less than two of its three seconds
    during = [s for t, s in seen if s.key == HEAT_PAD and locked_at <= t <= released_at]
    assert during, "the pad reported nothing while the ledger was locked"
    assert all(s.output_on for s in during)
    leases = [s.lease_remaining_s for s in during if s.lease_remaining_s is not None]
    assert leases
    assert min(leases) >= 1.5, min(leases)
    # and the history caught up: the heat phase covers the time the lock was held
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        (record,) = ledger.sessions()
    assert record.outcome == "stopped"
    (phase,) = record.phases
    assert phase.ended_at is not None
    assert (phase.ended_at - phase.started_at).total_seconds() >= LOCK_S


async def test_a_full_disk_mid_phase_ends_the_session_with_every_output_off(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, devices=(HEAT_PAD,)) as b:
        await b.bind(heat=HEAT_PAD)
        b.watch_world()
        runner = b.runner(b.plan_from(HEAT_TWO))
        wal = Path(f"{b.ledger.path}-wal")
        limits = contextlib.ExitStack()
        filled = b.later(
            lambda e: isinstance(e, PhaseChanged) and e.mode == "heat",
            30.0,
            lambda: limits.enter_context(file_size_limit(wal.stat().st_size)),
        )
        with limits:
            finished = await b.run(runner)
        assert filled, "the disk was never filled"
        assert finished.outcome == "aborted", finished
        assert not finished.recorded
        assert finished.reason is not None
        assert "cannot be written" in finished.reason
        assert "full" in finished.reason or "I/O" in finished.reason, finished.reason
        assert finished.devices_off
        # the next heartbeat (10 s) fails, and the pad is OFF at once after it
        ended = b.stamp_of(lambda e: isinstance(e, Finished))
        assert ended.clock - filled[0].clock <= 10.0 + 1.0
        b.assert_off_within(HEAT_PAD, filled[0], 10.0 + 1.0)
        assert_off(b.world, HEAT_PAD)
        # what a person reads: one line, saying what happened and that it is not recorded
        out = io.StringIO()
        LiveView(out, tty=False)(finished)
        (line,) = out.getvalue().splitlines()
        assert "cannot be written" in line
        assert "NOT recorded" in line
        assert "every device is off" in line


HEAT_MINUTE = HEAT_TWO.replace("minutes = 2", "minutes = 1")


def test_relieve_run_on_a_full_disk_stops_in_one_sentence_and_exits_non_zero(
    tmp_path: Path,
) -> None:
    data, config = tmp_path / "data", tmp_path / "config"
    config.mkdir()
    profile = tmp_path / "heat.toml"
    profile.write_text(HEAT_MINUTE, encoding="utf-8")
    Ledger.open(data, simulated=True).close()  # the file exists; its log starts empty
    # room for the session's first few records only: it fails once the heat is on
    limit = (data / "ledger-simulated.sqlite3").stat().st_size

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "--data-dir",
            str(data),
            "--config-dir",
            str(config),
            "run",
            str(profile),
            "--simulate",
            "--speed",
            "600",
            "--yes",
            "--json",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        preexec_fn=full_disk,  # only signal and rlimit calls, before exec
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["type"] == "started"
    assert any(e["type"] == "phase" and e["mode"] in ("preheat", "heat") for e in events)
    finished = events[-1]
    assert finished["type"] == "finished"
    assert finished["outcome"] == "aborted", finished
    assert finished["recorded"] is False
    assert "cannot be written" in finished["reason"]
    assert finished["devices_off"] is True


async def test_a_history_that_stops_answering_ends_the_session_after_the_stall_limit(
    tmp_path: Path,
) -> None:
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        recorder = ledger.start_session("heat-soak", "heat", started_at=ledger.now())
        failures: list[str] = []
        writer = LedgerWriter(
            recorder, on_failure=failures.append, clock=MonotonicClock(), stall_limit_s=0.5
        )
        holder = await _hold_lock(ledger.path, 3.0)
        try:
            writer.heartbeat(ledger.now())
            await asyncio.sleep(0.2)
            writer.check_stall()
            assert failures == []  # behind, but not yet past the limit
            await asyncio.sleep(0.6)
            writer.check_stall()
            await asyncio.sleep(0)  # the report arrives on the loop
            assert len(failures) == 1
            assert "cannot be written (no write accepted for 1 s)" in failures[0]
        finally:
            await holder.wait()
        # once the lock is free the outcome is still written, and the lock file released
        assert await writer.close("aborted", ledger.now())
        assert ledger.session(recorder.id).outcome == "aborted"
        with pytest.raises(RuntimeError):
            writer.heartbeat(ledger.now())


async def test_a_phase_is_on_disk_before_it_is_announced_and_its_devices_go_on(
    tmp_path: Path,
) -> None:
    # S3: a controller killed right after a phase began (its event seen, its pad ON) must leave
    # that phase in the history, so recovery counts it
    async with bench(tmp_path, devices=(HEAT_PAD,)) as b:
        await b.bind(heat=HEAT_PAD)
        runner = b.runner(b.plan_from(HEAT_TWO))
        on_disk: list[list[str]] = []

        def read_the_history() -> None:
            with Ledger.open(b.ledger.data_dir, simulated=True) as other:
                on_disk.append([p.mode for s in other.sessions() for p in s.phases])

        b.when(lambda e: isinstance(e, PhaseChanged) and e.mode == "heat", read_the_history)
        finished = await b.run(runner)
    assert finished.outcome == "completed"
    assert on_disk == [["heat"]]
