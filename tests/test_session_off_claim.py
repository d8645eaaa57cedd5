"""The session's last word, ``devices_off``: never true while an output still drives.

A device that ignores OFF but reports it (a silent stuck heater: no current sensing; a gun
whose motor runs on) shows it only in what it measures. After its final OFF the runner watches
an output that looked driven for a few clock seconds: a plate that keeps heating or a gun that
keeps reporting speed is not off, and the person is told to take the pad off and unplug it --
the same words as when the device itself says its output is stuck. A normal end costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.session.events import Alarm, Event, Finished, Notice, PhaseChanged
from drivers.core.base import is_thermal
from simulators.devices.percussion_core import GunCore
from simulators.faults import StuckHeater
from simulators.physics import step_gun
from tests.session_harness import CONTRAST_MINI, MASSAGE_MINI, Bench, assert_off, bench

PAD = "contrast-pad"
GUN = "massage-gun"
UNPLUG = "take the pad off now and unplug it"

HEAT_MINI = """
name = "heat-mini"
title = "Heat, two minutes"
kind = "heat"
area = "lower-back"

[heat]
minutes = 2
celsius = 42
"""


def _phase(mode: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, PhaseChanged) and e.mode == mode


def _notices(b: Bench) -> list[str]:
    return [e.message for e in b.of_type(Notice) if isinstance(e, Notice)]


def _finished_at(b: Bench) -> float:
    return b.stamp_of(lambda e: isinstance(e, Finished)).clock


def _plan_end(b: Bench) -> float:
    """When the plan ended (its last phase change: ``off`` with index == count)."""
    return b.stamp_of(
        lambda e: isinstance(e, PhaseChanged) and e.index is not None and e.index == e.count
    ).clock


async def _heat_with(b: Bench, fault: StuckHeater) -> Finished:
    await b.bind(heat=PAD, cold=PAD, probe="skin-probe")
    plan = b.plan_from(CONTRAST_MINI)
    b.watch_world()
    b.when(_phase("heat"), lambda: b.world.inject(PAD, fault))
    return await b.run(b.runner(plan))


async def test_a_silent_stuck_heater_is_not_claimed_off_and_the_person_is_told(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path) as b:
        finished = await _heat_with(b, StuckHeater(at=30, silent=True))
        assert finished.outcome == "aborted", finished
        assert "above its 42 °C setpoint" in (finished.reason or "")
        truth = b.world.pad(PAD).state
        assert not truth.output_on  # it took the OFF and says so, with no stuck flag ...
        assert "stuck-output" not in truth.flags
        assert truth.energised  # ... but the heater is welded on
        assert not finished.devices_off
        assert any(UNPLUG in n and "relieve Contrast Pad" in n for n in _notices(b))
        assert b.events[-1] == finished
        # the watch after OFF is short: a few clock seconds past the alarm
        alarm_at = b.stamp_of(lambda e: isinstance(e, Alarm) and e.priority == "high").clock
        assert _finished_at(b) - alarm_at <= 3.5


async def test_a_cooler_welded_on_in_cold_is_not_claimed_off_at_the_end(tmp_path: Path) -> None:
    # The pad does not know its Peltier is welded on: while cold is ON that looks like work.
    # After the final OFF its plate goes on cooling instead of warming towards the skin.
    async with bench(tmp_path) as b:
        await b.bind(heat=PAD, cold=PAD, probe="skin-probe")
        plan = b.plan_from(CONTRAST_MINI)
        b.watch_world()
        b.later(
            lambda e: isinstance(e, PhaseChanged) and e.mode == "cold",
            30,
            lambda: b.world.inject(PAD, StuckHeater(silent=True)),
        )
        finished = await b.run(b.runner(plan))
        assert finished.outcome == "completed"
        assert b.world.pad(PAD).state.energised  # still cooling
        assert not finished.devices_off
        assert any(UNPLUG in n for n in _notices(b))


async def test_the_loud_stuck_heater_gets_the_same_words(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        finished = await _heat_with(b, StuckHeater(at=30))
        assert finished.outcome == "aborted", finished
        assert not finished.devices_off
        assert b.world.pad(PAD).state.energised
        notices = [n for n in _notices(b) if UNPLUG in n]
        assert len(notices) == 1, _notices(b)
        assert notices[0].startswith("relieve Contrast Pad ")


@pytest.mark.parametrize(
    ("profile", "watched_s"),
    # a session that ends in cold waits for one plate reading after the OFF: a cooled plate
    # colder than skin must warm (or hold still) once its cooler is off; one still getting
    # colder is still cooled (a welded Peltier that does not know it)
    [(HEAT_MINI, 0.0), (CONTRAST_MINI, 1.0)],
    ids=["heat", "contrast"],
)
async def test_a_normal_session_ends_off_at_once_and_without_a_warning(
    tmp_path: Path, profile: str, watched_s: float
) -> None:
    async with bench(tmp_path) as b:
        await b.bind(heat=PAD, cold=PAD, probe="skin-probe")
        plan = b.plan_from(profile)
        b.watch_world()
        finished = await b.run(b.runner(plan))
        assert finished.outcome == "completed", finished
        assert finished.devices_off
        assert not [n for n in _notices(b) if UNPLUG in n]
        # the session ended at the end of its plan (a cold end: one reading later)
        assert _finished_at(b) == pytest.approx(_plan_end(b) + watched_s, abs=0.01)
        assert_off(b.world, PAD)


async def test_a_heat_step_down_is_watched_and_confirmed_off_when_the_plate_falls(
    tmp_path: Path,
) -> None:
    # stopped while the plate is still above a lower setpoint: beyond it, so watched; the
    # plate falls once the pad is off, so it is confirmed off within a telemetry interval
    async with bench(tmp_path) as b:
        await b.bind(heat=PAD, cold=PAD, probe="skin-probe")
        runner = b.runner(b.plan_from(CONTRAST_MINI))
        b.watch_world()
        pad = b.devices.for_role("heat")
        assert is_thermal(pad)
        stepped: list[asyncio.Task[None]] = []

        async def step_down() -> None:
            await pad.heat(38.0)  # the plate is at about 42 °C: beyond 38 + 1
            runner.stop("stopped by you")

        done = b.later(
            _phase("heat"), 60.0, lambda: stepped.append(asyncio.ensure_future(step_down()))
        )
        finished = await b.run(runner)
        assert finished.outcome == "stopped", finished
        assert finished.devices_off
        assert not [n for n in _notices(b) if UNPLUG in n]
        # watched until the plate fell: at most a telemetry interval and a bit
        assert 0 < _finished_at(b) - done[0].clock <= 1.5
        assert_off(b.world, PAD)


# --- the gun ---------------------------------------------------------------------------------


def weld_motor(core: GunCore, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the motor runs on at its last speed when stopped, while the gun reports it
    stopped (no current sensing): a welded motor driver."""
    step = core._step
    held: list[int] = []

    def welded(dt: float) -> None:
        if core.running:
            held[:] = [core.target_ppm]
            step(dt)
        elif held:
            core.motor = step_gun(core.motor, held[0], core.force_n, dt, core.params)
        else:
            step(dt)

    monkeypatch.setattr(core, "_step", welded)


async def test_a_gun_that_keeps_reporting_speed_after_stop_is_not_claimed_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with bench(tmp_path, devices=(GUN,)) as b:
        await b.bind(gun=GUN)
        runner = b.runner(b.plan_from(MASSAGE_MINI))
        b.watch_world()
        weld_motor(b.world.gun().core, monkeypatch)
        b.later(lambda e: isinstance(e, PhaseChanged) and e.index == 1, 30.0, runner.stop)
        finished = await b.run(runner)
        assert finished.outcome == "stopped", finished
        truth = b.world.gun().state
        assert not truth.output_on  # it reports the STOP ...
        assert (truth.speed_ppm or 0) > 1000  # ... but the motor runs on
        assert not finished.devices_off
        notices = [n for n in _notices(b) if "did not stop when told to: put it down" in n]
        assert len(notices) == 1, _notices(b)
        stopped = b.stamp_of(lambda e: isinstance(e, PhaseChanged) and e.index == 1).clock + 30
        assert _finished_at(b) - stopped <= 3.5 + 0.01


async def test_a_normal_massage_ends_off_once_the_gun_reports_standstill(tmp_path: Path) -> None:
    async with bench(tmp_path, devices=(GUN,)) as b:
        await b.bind(gun=GUN)
        finished = await b.run(b.runner(b.plan_from(MASSAGE_MINI)))
        assert finished.outcome == "completed", finished
        assert finished.devices_off
        assert not [n for n in _notices(b) if "did not stop when told to" in n]
        # the gun reports standstill at its next measurement after spinning down
        assert _finished_at(b) - _plan_end(b) <= 2.0
        assert_off(b.world, GUN)
