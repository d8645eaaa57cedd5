"""Whole sessions through the real runner, drivers and simulated devices, in virtual time."""

from __future__ import annotations

from pathlib import Path

from controller.session.events import Alarm, Finished, PhaseChanged, Prompt
from tests.session_harness import bench


async def test_contrast_lower_back_runs_to_the_end_and_leaves_the_pad_off(tmp_path: Path) -> None:
    async with bench(tmp_path) as b:
        await b.bind(heat="contrast-pad", cold="contrast-pad", probe="skin-probe")
        plan = b.plan("contrast-lower-back")
        finished = await b.run(b.runner(plan))
        assert finished.outcome == "completed"
        assert finished.devices_off
        assert abs(finished.delivered_s - 1800) < 1
        phases = [(e.mode, e.t) for e in b.of_type(PhaseChanged) if isinstance(e, PhaseChanged)]
        assert phases[0][0] == "preheat"
        therapy = [(m, t) for m, t in phases if m in ("heat", "cold")]
        assert [m for m, _ in therapy] == ["heat", "cold"] * 3
        assert [round(t) for _, t in therapy] == [0, 300, 600, 900, 1200, 1500]
        assert not b.of_type(Alarm)
        prompts = [e for e in b.of_type(Prompt) if isinstance(e, Prompt)]
        assert "fabric layer" in prompts[0].text
        pad = b.world.pad()
        assert not pad.state.output_on
        session = b.ledger.sessions()[0]
        assert session.outcome == "completed"
        assert [p.mode for p in session.phases] == ["heat", "cold"] * 3
        assert isinstance(b.events[-1], Finished)
