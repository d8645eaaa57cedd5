"""benchmarks/fault_process.py: two real-time cells of the fault matrix, and the judge on them.

Real processes in real time, as the matrix runs them: `relieve sim serve --events-json` and
`relieve run` against it, the controller signalled mid-session. What is asserted is what the
simulated device itself reported (every output OFF within the bound), what the history recorded
(never less than the device delivered) and the sentence the person was told.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from benchmarks import fault_process
from benchmarks.fault_cells import COVER_TOLERANCE_S, Cell


@pytest.fixture(scope="module")
def sigterm_in_heat(tmp_path_factory: pytest.TempPathFactory) -> Cell:
    workdir = tmp_path_factory.mktemp("fault-process")
    cells = fault_process.run_process_cells(["sigterm"], ["heat"], workdir=workdir, quick=True)
    assert len(cells) == 1
    cell: Cell = cells[0]
    return cell


@pytest.mark.timeout(60)
def test_sigterm_in_heat_turns_the_pad_off_at_once_and_records_what_it_delivered(
    sigterm_in_heat: Cell,
) -> None:
    cell = sigterm_in_heat
    assert cell.verdict() == [], cell.to_json()
    assert (cell.row, cell.column, cell.applies) == ("sigterm", "heat", True)
    assert cell.outcome == "stopped"
    assert cell.off_clock == "real"
    assert cell.bound_s == 1.0
    # the pad reported ON before the signal and OFF after it, within the second relieve allows
    assert cell.off_after_s is not None
    assert 0.0 <= cell.off_after_s <= cell.bound_s
    assert not cell.left_on
    assert cell.claimed_off is True
    # the signal came a second into heat: the pad delivered about that, the history has it all
    assert 0.5 <= cell.delivered_s <= 4.0, cell.delivered_s
    assert cell.recorded_s + COVER_TOLERANCE_S >= cell.delivered_s
    assert cell.recorded_s <= cell.delivered_s + 2.0, "a stop records what was delivered"
    assert "session stopped (terminated)" in cell.sentence
    assert cell.sentence.endswith("every device is off."), cell.sentence
    assert cell.wall_s < 20.0


@pytest.mark.timeout(60)
def test_the_judge_fails_the_same_cell_with_an_output_late_or_under_recorded(
    sigterm_in_heat: Cell,
) -> None:
    late = dataclasses.replace(sigterm_in_heat, off_after_s=sigterm_in_heat.bound_s + 0.2)
    assert not late.passed
    assert any("after the fault" in failure for failure in late.verdict())
    left = dataclasses.replace(sigterm_in_heat, left_on=True)
    assert left.verdict() == ["an output was left ON"]
    short = dataclasses.replace(
        sigterm_in_heat, recorded_s=sigterm_in_heat.delivered_s - COVER_TOLERANCE_S - 0.5
    )
    assert any("the ledger records" in failure for failure in short.verdict())


@pytest.mark.timeout(60)
def test_sigkill_of_a_massage_leaves_the_gun_off_and_the_session_interrupted(
    tmp_path: Path,
) -> None:
    [cell] = fault_process.run_process_cells(["sigkill"], ["massage"], workdir=tmp_path, quick=True)
    assert cell.verdict() == [], cell.to_json()
    assert cell.outcome == "interrupted"
    assert cell.off_after_s is not None
    assert cell.off_after_s <= 1.0, "the gun's link ends with the process: OFF at once"
    assert cell.bound_s == 5.0
    assert not cell.left_on
    assert cell.claimed_off is None, "a killed controller says nothing"
    # the history counts the worst case after a crash: never less than the gun ran
    assert 0.5 <= cell.delivered_s <= 4.0, cell.delivered_s
    assert cell.recorded_s >= cell.delivered_s
    assert "without closing this session" in cell.sentence
    # what each process said is kept beside the cell, stamped, to read a failure again
    kept = tmp_path / "sigkill-massage"
    assert '"device": "massage-gun"' in (kept / "sim.out").read_text()
    assert '"type": "phase"' in (kept / "run.out").read_text()
