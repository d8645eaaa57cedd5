"""Every built-in profile, run to the end on simulated devices through the real runner.

contrast-lower-back on the contrast pad is in test_session_engine.py; the massage profiles on
the open-profile gun are in test_session_massage.py. Each session here must complete, leave
every device OFF by the simulator's own account, and leave ledger phases that match the plan.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.session.events import (
    Alarm,
    Finished,
    PhaseChanged,
    Prompt,
    SessionStarted,
    StateChanged,
)
from tests.session_harness import (
    Bench,
    assert_off,
    assert_same_phases,
    bench,
    planned_phases,
    recorded_phases,
)

HEAT_S = 180.0  # contrast-quick: 3 minutes heat, 3 minutes cold
PRECOOL_S = 90.0  # profiles.compiler.PRECOOL_S, what a user of separate pads sees

CASES = [
    # (profile, role -> simulated device, roles left to the person: passive packs)
    pytest.param(
        "contrast-quick",
        {"heat": "contrast-pad", "cold": "contrast-pad", "probe": "skin-probe"},
        (),
        id="contrast-quick-contrast-pad",
    ),
    pytest.param(
        "cold-pack-acute",
        {"cold": "cold-pad", "probe": "skin-probe"},
        (),
        id="cold-pack-acute-cold-pad",
    ),
    pytest.param("massage-lower-back", {"gun": "theragun"}, (), id="massage-lower-back-theragun"),
    pytest.param("stretch-lower-back", {}, (), id="stretch-no-device"),
]


async def _run_to_the_end(
    b: Bench, name: str, roles: dict[str, str], manual: tuple[str, ...]
) -> Finished:
    await b.bind(
        heat=roles.get("heat"),
        cold=roles.get("cold"),
        gun=roles.get("gun"),
        probe=roles.get("probe"),
        manual=manual,
    )
    plan = b.plan(name)
    b.watch_world()
    finished = await b.run(b.runner(plan))
    assert finished.outcome == "completed", finished
    assert finished.devices_off
    assert b.events[-1] == finished
    # the timeline as planned: every phase announced at its offset, in order
    announced = [
        (e.mode, e.t)
        for e in b.of_type(PhaseChanged)
        if isinstance(e, PhaseChanged) and e.index is not None and e.index < (e.count or 0)
    ]
    assert announced == [(p.mode, p.start_s) for p in plan.phases]
    therapy_s = sum(s for _, s in planned_phases(plan))
    assert abs(finished.delivered_s - therapy_s) <= 1.0
    assert not b.of_type(Alarm)
    for key in set(roles.values()):
        assert_off(b.world, key)
    session = b.ledger.sessions()[0]
    assert session.outcome == "completed"
    assert session.alarms == ()
    assert_same_phases(recorded_phases(session), planned_phases(plan))
    return finished


@pytest.mark.parametrize(("name", "roles", "manual"), CASES)
async def test_built_in_profile_completes_with_every_device_off(
    tmp_path: Path, name: str, roles: dict[str, str], manual: tuple[str, ...]
) -> None:
    world = tuple(dict.fromkeys(roles.values())) or ("skin-probe",)
    async with bench(tmp_path, devices=world) as b:
        await _run_to_the_end(b, name, roles, manual)


async def test_routine_with_manual_packs_prompts_for_them_and_switches_only_the_gun(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, devices=("massage-gun",)) as b:
        await _run_to_the_end(b, "routine-lower-back", {"gun": "massage-gun"}, ("heat", "cold"))
        started = b.events[0]
        assert isinstance(started, SessionStarted)
        assert started.devices == {
            "heat": "manual",
            "cold": "manual",
            "gun": "relieve Massage Gun (C0:DE:00:00:00:04)",
        }
        texts = [e.text for e in b.of_type(Prompt) if isinstance(e, Prompt)]
        assert any("fabric layer" in t for t in texts)  # the passive heat pack
        assert any("thin towel" in t for t in texts)  # the ice pack
        # the gun ran during the massage part only, and is off at the end
        t0 = b.stamp_of(lambda e: isinstance(e, StateChanged) and e.state == "running").clock
        running = [s.time - t0 for s in b.history("massage-gun") if s.output_on]
        assert running
        assert min(running) >= 0.0
        assert max(running) <= 600.0
        assert_off(b.world, "massage-gun")


async def test_heating_mat_heats_at_the_level_for_the_setpoint_with_its_own_timer_set(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, devices=("heating-mat",)) as b:
        # heat-soak asks for 40 °C: level 5 of the mat's 36..42 °C
        await _run_to_the_end(b, "heat-soak", {"heat": "heating-mat"}, ())
        on = [s for s in b.history("heating-mat") if s.output_on]
        assert on
        assert {s.level for s in on} == {5}
        # host-timed: the mat's own timer is the backstop while it heats (H4)
        assert all(s.timer_remaining_s is not None and s.timer_remaining_s <= 3600 for s in on)


async def test_separate_heat_and_cold_pads_pre_cool_the_cold_pad_and_swap(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, devices=("heat-pad", "cold-pad", "skin-probe")) as b:
        await _run_to_the_end(
            b, "contrast-quick", {"heat": "heat-pad", "cold": "cold-pad", "probe": "skin-probe"}, ()
        )
        t0 = b.stamp_of(lambda e: isinstance(e, StateChanged) and e.state == "running").clock
        cooling = [s.time - t0 for s in b.history("cold-pad") if s.mode == "cold"]
        heating = [s.time - t0 for s in b.history("heat-pad") if s.mode == "heat"]
        # 3 min heat, 3 min cold: the cold pad starts cooling 90 s before it goes on, while the
        # heat pad still heats; the heat pad rests while the cold pad is on
        assert min(cooling) == pytest.approx(HEAT_S - PRECOOL_S, abs=1.0)
        assert not [t for t in heating if HEAT_S + 1.0 < t < 2 * HEAT_S - 1.0]
        texts = [e.text for e in b.of_type(Prompt) if isinstance(e, Prompt)]
        assert sum(t.startswith("Swap pads") for t in texts) == 5
