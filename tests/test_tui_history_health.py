"""The history and health screens of the terminal UI, each in a small app of its own at 80x24.

The history is a real ledger in ``tmp_path``, filled through the ledger's own recording API; the
health answers live in a configuration directory in ``tmp_path``. What the screens show is read
as the person sees it (the lines the table draws, the texts below it); what they write is
compared with what ``relieve history`` and ``relieve health show`` print.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from textual.app import App
from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

import tui
from controller.cli import health as health_cmd
from controller.cli import history as history_cmd
from controller.cli.commands import build_parser
from controller.health import load_answers, save_answers
from controller.ledger import Ledger
from profiles.health import CONDITIONS, NOT_A_MEDICAL_DEVICE
from tests.test_history_cli import CEST, NOW, minutes, seed
from tui.screens.confirm import ConfirmScreen
from tui.screens.health import HealthScreen
from tui.screens.history import ExportScreen, HistoryScreen

SIZE = (80, 24)


class Host(App[None]):
    """The app's own stylesheet, and the screen under test pushed over a blank one."""

    CSS_PATH = str(Path(tui.__file__).parent / "app.tcss")

    def __init__(self, screen: Screen[None]) -> None:
        super().__init__()
        self.under_test = screen

    def on_mount(self) -> None:
        self.push_screen(self.under_test)


@dataclass
class View:
    app: Host
    pilot: Pilot[None]

    def text(self, selector: str) -> str:
        return str(self.app.screen.query_one(selector, Static).render())

    def table_lines(self) -> list[str]:
        """The table as drawn on the screen, line by line (header first)."""
        table = self.app.screen.query_one(DataTable)
        return [table.render_line(y).text.rstrip() for y in range(table.size.height)]

    def row_line(self, needle: str) -> str:
        found = [line for line in self.table_lines() if needle in line]
        assert len(found) == 1, (needle, self.table_lines())
        return found[0]

    async def type(self, text: str) -> None:
        await self.pilot.press(*text)


@asynccontextmanager
async def hosting(screen: Screen[None]) -> AsyncIterator[View]:
    app = Host(screen)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        yield View(app, pilot)


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def fits(view: View) -> None:
    """Every widget of the screen lies inside 80x24, the footer on the last line."""
    screen = view.app.screen
    whole = Region(0, 0, *SIZE)
    for widget in screen.query("*"):
        if widget.display:
            assert whole.contains_region(widget.region), (widget, widget.region)
    assert screen.query_one(Footer).region.y == SIZE[1] - 1


# --- the history --------------------------------------------------------------------------------


def record_sessions(data_dir: Path, *, extra: int = 0) -> None:
    """The CLI tests' history (yesterday's heat soak; today an aborted contrast with an alarm
    and an extended massage), an injury this morning, ``extra`` short heat sessions last week."""
    seed(data_dir, simulated=True)
    with Ledger.open(data_dir, simulated=True, now=lambda: NOW, tz=CEST) as ledger:
        ledger.add_injury("neck", NOW - timedelta(hours=7))
        for n in range(extra):
            start = NOW - timedelta(days=7, hours=n)
            old = ledger.start_session(f"old-heat-{n}", "heat", started_at=start)
            old.phase_started("heat", "neck", start, celsius=40.0, worst_case_s=5)
            old.finish("completed", start + minutes(2))


def cli_history(data_dir: Path, *options: str) -> str:
    """What ``relieve --data-dir DIR history --simulated OPTIONS`` prints (at NOW, in CEST)."""
    args = build_parser().parse_args(
        ["--data-dir", str(data_dir), "history", "--simulated", *options]
    )
    out = io.StringIO()
    assert history_cmd.history(args, now=lambda: NOW, tz=CEST, out=out) == 0
    return out.getvalue()


@asynccontextmanager
async def history_view(data_dir: Path) -> AsyncIterator[tuple[View, Ledger]]:
    with Ledger.open(data_dir, simulated=True, now=lambda: NOW, tz=CEST) as ledger:
        async with hosting(HistoryScreen(ledger)) as view:
            yield view, ledger


async def test_the_sessions_are_listed_newest_first_with_outcome_and_exposure(
    tmp_path: Path,
) -> None:
    record_sessions(tmp_path / "data")
    async with history_view(tmp_path / "data") as (view, _):
        lines = view.table_lines()
        assert lines[0].split() == [
            "start",
            "outcome",
            "length",
            "heat",
            "cold",
            "massage",
            "profile",
        ]
        rows = [line.split() for line in lines[1:4]]
        assert rows[0] == [
            "2024-05-07",
            "14:00",
            "completed",
            "3:00",
            "-",
            "-",
            "3",
            "min",
            "massage-extended",
        ]
        assert rows[1][:9] == [
            "2024-05-07",
            "10:00",
            "aborted",
            "12:00",
            "7",
            "min",
            "5",
            "min",
            "-",
        ]
        assert rows[1][9].startswith("contrast-lower")  # the rest of the row scrolls
        assert rows[2][:6] == ["2024-05-06", "16:00", "completed", "10:00", "10", "min"]
        assert "heat-soak" in lines[3]
        assert "extended; overrode M1" in view.text("#history-detail")  # the first is selected


async def test_todays_totals_are_what_relieve_history_says(tmp_path: Path) -> None:
    record_sessions(tmp_path / "data")
    summary = cli_history(tmp_path / "data").split("\n\n")[0]  # the lines above the sessions
    assert summary.startswith("Today, Tue 7 May: heat 7 min, cold 5 min, massage 3 min\n")
    assert "Injury on neck at 09:00" in summary
    async with history_view(tmp_path / "data") as (view, _):
        assert view.text("#history-today") == summary.rstrip("\n")
        assert "simulated devices" in view.text("#history-title")


async def test_the_arrow_keys_move_through_the_sessions_and_show_each_in_full(
    tmp_path: Path,
) -> None:
    record_sessions(tmp_path / "data")
    async with history_view(tmp_path / "data") as (view, _):
        await view.pilot.press("down")
        detail = view.text("#history-detail")
        assert detail.startswith("Session 2: contrast-lower-back (contrast), Tue 2024-05-07 10:00")
        assert "aborted" in detail
        assert "Alarm S4 (high) at 10:12: Over-temperature: the pad read 46 °C." in detail
        await view.pilot.press("down")
        assert view.text("#history-detail").startswith("Session 1: heat-soak (heat)")
        await view.pilot.press("up", "up")
        assert view.text("#history-detail").startswith("Session 3: massage-extended")


async def test_a_long_history_scrolls_inside_80x24(tmp_path: Path) -> None:
    record_sessions(tmp_path / "data", extra=30)
    async with history_view(tmp_path / "data") as (view, _):
        fits(view)
        assert "massage-extended" in view.table_lines()[1]
        assert not any("old-heat-29" in line for line in view.table_lines())
        await view.pilot.press("ctrl+end")  # the last, oldest session
        await view.pilot.pause()
        assert view.text("#history-detail").startswith(
            "Session 33: old-heat-29 (heat), Mon 2024-04-29"
        )
        assert "completed" in view.row_line("old-heat-29")  # scrolled into view
        fits(view)


@pytest.mark.parametrize(("key", "kind"), [("x", "csv"), ("j", "json")])
async def test_export_writes_exactly_what_relieve_history_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, kind: str
) -> None:
    record_sessions(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    async with history_view(tmp_path / "data") as (view, _):
        await view.pilot.press(key)
        assert isinstance(view.app.screen, ExportScreen)
        assert view.app.screen.query_one(Input).value == f"relieve-history-2024-05-07.{kind}"
        await view.pilot.press("enter")
        assert isinstance(view.app.screen, HistoryScreen)
        written = tmp_path / f"relieve-history-2024-05-07.{kind}"
        assert view.text("#history-status") == f"Exported 3 sessions to {written}."
    assert written.read_bytes() == cli_history(tmp_path / "data", f"--{kind}").encode()
    if kind == "json":
        assert [s["id"] for s in json.loads(written.read_text(encoding="utf-8"))] == [3, 2, 1]


async def test_export_goes_where_the_person_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_sessions(tmp_path / "data")
    (tmp_path / "exports").mkdir()
    monkeypatch.chdir(tmp_path)
    async with history_view(tmp_path / "data") as (view, _):
        await view.pilot.press("x")
        await view.type("exports/mine.csv")  # replaces the proposed name
        await view.pilot.press("enter")
        assert view.text("#history-status").endswith(f"to {tmp_path / 'exports' / 'mine.csv'}.")
    assert (tmp_path / "exports" / "mine.csv").read_text(encoding="utf-8") == cli_history(
        tmp_path / "data", "--csv"
    )
    assert names(tmp_path) == ["data", "exports"]


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("missing/history.csv", "the directory {tmp}/missing does not exist"),
        ("a-file/history.csv", "{tmp}/a-file is not a directory"),
        ("exports", "{tmp}/exports is a directory"),
    ],
)
async def test_export_that_cannot_be_written_is_one_sentence_and_the_screen_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, why: str
) -> None:
    record_sessions(tmp_path / "data")
    (tmp_path / "a-file").write_text("not a directory\n", encoding="utf-8")
    (tmp_path / "exports").mkdir()
    monkeypatch.chdir(tmp_path)
    async with history_view(tmp_path / "data") as (view, _):
        await view.pilot.press("x")
        await view.type(where)
        await view.pilot.press("enter")
        status = view.text("#history-status")
        assert status.startswith("Nothing was exported")
        assert why.format(tmp=tmp_path) in status
        assert status.endswith(".")
        assert "\n" not in status
        assert "Traceback" not in status
        assert view.app.is_running
        assert isinstance(view.app.screen, HistoryScreen)
        await view.pilot.press("j", "enter")  # the next export works
        assert view.text("#history-status").startswith("Exported 3 sessions to ")
    assert (tmp_path / "relieve-history-2024-05-07.json").exists()
    assert not (tmp_path / "exports" / "history.csv").exists()
    assert names(tmp_path / "exports") == []


async def test_export_asks_before_replacing_a_file_and_escape_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_sessions(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    existing = tmp_path / "relieve-history-2024-05-07.csv"
    existing.write_text("keep me\n", encoding="utf-8")
    async with history_view(tmp_path / "data") as (view, _):
        await view.pilot.press("x", "escape")
        assert view.text("#history-status") == "Nothing was exported."
        await view.pilot.press("x", "enter")
        assert isinstance(view.app.screen, ConfirmScreen)
        await view.pilot.press("n")
        assert (
            view.text("#history-status") == f"Nothing was exported: {existing} was left as it is."
        )
        assert existing.read_text(encoding="utf-8") == "keep me\n"
        await view.pilot.press("x", "enter", "y")
        assert view.text("#history-status") == f"Exported 3 sessions to {existing}."
    assert existing.read_text(encoding="utf-8") == cli_history(tmp_path / "data", "--csv")
    assert names(tmp_path) == ["data", existing.name]  # no temporary file left


async def test_r_reloads_sessions_recorded_meanwhile(tmp_path: Path) -> None:
    record_sessions(tmp_path / "data")
    async with history_view(tmp_path / "data") as (view, ledger):
        start = NOW - minutes(30)
        cold = ledger.start_session("cold-pack", "cold", started_at=start)
        cold.phase_started("cold", "left-knee", start, celsius=12.0, worst_case_s=0)
        cold.finish("stopped", start + minutes(8))
        assert not any("cold-pack" in line for line in view.table_lines())
        await view.pilot.press("r")
        assert view.text("#history-status") == "Reloaded: 4 sessions."
        assert view.table_lines()[1].split() == [
            "2024-05-07",
            "15:30",
            "stopped",
            "8:00",
            "-",
            "8",
            "min",
            "-",
            "cold-pack",
        ]
        assert "cold 13 min" in view.text("#history-today")
        assert "\n  left-knee    cold 8 min\n" in view.text("#history-today")


async def test_an_empty_history_says_so_and_exports_only_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with history_view(tmp_path / "data") as (view, _):
        assert view.text("#history-detail") == "No sessions recorded yet."
        assert view.text("#history-today").startswith("Today, Tue 7 May: heat 0 min")
        await view.pilot.press("x", "enter")
        assert view.text("#history-status").startswith("Exported 0 sessions to ")
    written = tmp_path / "relieve-history-2024-05-07.csv"
    assert written.read_text(encoding="utf-8") == cli_history(tmp_path / "data", "--csv")


async def test_escape_goes_back(tmp_path: Path) -> None:
    async with history_view(tmp_path / "data") as (view, _):
        await view.pilot.press("escape")
        assert not isinstance(view.app.screen, HistoryScreen)
        assert view.app.is_running


# --- the health questions -----------------------------------------------------------------------

ROW = {cond.id: number for number, cond in enumerate(CONDITIONS)}


def answer_cell(view: View, condition_id: str) -> str:
    """The answer column of a question's row, as drawn."""
    table = view.app.screen.query_one(DataTable)
    return str(table.get_row(condition_id)[1])


async def go_to(view: View, condition_id: str) -> None:
    table = view.app.screen.query_one(DataTable)
    steps = ROW[condition_id] - table.cursor_row
    await view.pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps))
    assert table.cursor_row == ROW[condition_id]


def shown(config_dir: Path | None) -> dict[str, str | None]:
    """Each answer as ``relieve health show --json`` prints it (None: the user's config dir)."""
    out = io.StringIO()
    assert health_cmd.show(argparse.Namespace(config_dir=config_dir, json=True), out=out) == 0
    document = json.loads(out.getvalue())
    return {c["id"]: c["answer"] for c in document["conditions"]}


async def test_every_question_is_shown_with_its_stored_answer_and_what_a_yes_blocks(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    save_answers(config, {"dvt": True, "fracture": False})
    async with hosting(HealthScreen(config)) as view:
        assert NOT_A_MEDICAL_DEVICE in view.text("#health-title")
        table = view.app.screen.query_one(DataTable)
        assert table.row_count == len(CONDITIONS)
        assert view.row_line("deep vein thrombosis (DVT)").split()[4:] == [
            "yes",
            "heat,",
            "massage",
            "gun",
        ]
        assert view.row_line("impaired sensation").split()[2:] == [
            "not",
            "answered",
            "heat,",
            "cold",
        ]
        assert answer_cell(view, "fracture") == "no"
        assert answer_cell(view, "scoliosis") == "not answered"
        assert [answer_cell(view, c.id) for c in CONDITIONS].count("not answered") == 13
        blocked = view.text("#health-blocked")
        assert "heat                      BLOCKED by deep vein thrombosis (DVT)" in blocked
        assert "cold                      allowed" in blocked
        assert "the massage gun           BLOCKED by deep vein thrombosis (DVT)" in blocked
        question = view.text("#health-question")
        assert question.startswith("(1/15) Do you have numbness")
        assert "A yes blocks heat (burns you may not feel) and cold" in question
        assert view.text("#health-status").startswith("2 of 15 questions answered")
        fits(view)


async def test_y_and_save_are_what_relieve_health_show_sees_and_n_changes_it_back(
    config_dir: Path,
) -> None:
    async with hosting(HealthScreen(None)) as view:  # the user's config dir (here: the fixture's)
        await go_to(view, "raynauds")
        await view.pilot.press("y")
        assert answer_cell(view, "raynauds") == "yes *"
        assert "BLOCKED by Raynaud's" in view.text("#health-blocked")
        assert view.text("#health-status") == "1 answer not saved yet (*): ctrl+s saves them."
        assert load_answers(config_dir).answers == {}  # nothing stored before saving
        assert view.app.screen.query_one(DataTable).cursor_row == ROW["raynauds"] + 1
        await view.pilot.press("ctrl+s")
        assert view.text("#health-status").startswith(
            f"Saved 1 answer in {config_dir / 'health.json'}. 14 questions still without an answer"
        )
        assert answer_cell(view, "raynauds") == "yes"
        assert shown(None)["raynauds"] == "yes"
        assert load_answers(config_dir).flags == {"raynauds": True}

        await view.pilot.press("up", "n")
        assert answer_cell(view, "raynauds") == "no *"
        assert "BLOCKED" not in view.text("#health-blocked")
        await view.pilot.press("s")  # the other save key
        assert view.text("#health-status").startswith("Saved 1 answer in ")
    assert load_answers(config_dir).flags == {"raynauds": False}
    assert shown(config_dir)["raynauds"] == "no"


async def test_answering_every_question_with_the_keys_alone(tmp_path: Path) -> None:
    config = tmp_path / "config"
    async with hosting(HealthScreen(config)) as view:
        keys = ["y" if c.id == "scoliosis" else "n" for c in CONDITIONS]
        await view.pilot.press(*keys)  # each answer goes on to the next question
        assert view.text("#health-status") == "15 answers not saved yet (*): ctrl+s saves them."
        assert "You said you have scoliosis" in view.text("#health-blocked")
        await view.pilot.press("ctrl+s")
        assert view.text("#health-status") == (f"Saved 15 answers in {config / 'health.json'}.")
        await view.pilot.press("ctrl+s")
        assert view.text("#health-status") == "Nothing to save: no answer was changed."
    answers = shown(config)
    assert answers.pop("scoliosis") == "yes"
    assert set(answers.values()) == {"no"}
    assert load_answers(config).answered


async def test_answering_what_is_stored_again_leaves_nothing_to_save(tmp_path: Path) -> None:
    config = tmp_path / "config"
    save_answers(config, {"impaired-sensation": False})
    before = (config / "health.json").read_bytes()
    async with hosting(HealthScreen(config)) as view:
        await view.pilot.press("y")
        await view.pilot.press("up", "n")  # back to the stored answer
        assert answer_cell(view, "impaired-sensation") == "no"
        await view.pilot.press("escape")  # nothing changed: no question
        assert not isinstance(view.app.screen, (HealthScreen, ConfirmScreen))
    assert (config / "health.json").read_bytes() == before


async def test_escape_with_unsaved_answers_asks_before_discarding_them(tmp_path: Path) -> None:
    config = tmp_path / "config"
    async with hosting(HealthScreen(config)) as view:
        await view.pilot.press("y", "y")
        await view.pilot.press("escape")
        assert isinstance(view.app.screen, ConfirmScreen)
        assert "2 changed answers that you did not save" in view.text("#confirm-text")
        await view.pilot.press("n")  # stay
        assert isinstance(view.app.screen, HealthScreen)
        assert view.text("#health-status") == "2 changed answers not saved yet: ctrl+s saves them."
        assert answer_cell(view, "impaired-sensation") == "yes *"
        await view.pilot.press("escape", "y")  # discard
        assert not isinstance(view.app.screen, (HealthScreen, ConfirmScreen))
        assert view.app.is_running
    assert not (config / "health.json").exists()


async def test_a_store_that_cannot_be_written_is_one_sentence_and_keeps_the_answers(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    save_answers(config, {"dvt": False})
    async with hosting(HealthScreen(config)) as view:
        await view.pilot.press("y")
        shutil.rmtree(config)  # the directory goes away, a file takes its place
        config.write_text("not a directory\n", encoding="utf-8")
        await view.pilot.press("ctrl+s")
        status = view.text("#health-status")
        assert status.startswith(f"relieve could not save your health answers in {config}")
        assert status.endswith("check that the directory exists and is writable.")
        assert "\n" not in status
        assert answer_cell(view, "impaired-sensation") == "yes *"  # still there to save
        assert view.app.is_running
        config.unlink()
        await view.pilot.press("ctrl+s")  # once it can be written, the answers are saved
        assert view.text("#health-status").startswith("Saved 1 answer in ")
    assert load_answers(config).flags == {"impaired-sensation": True}


async def test_answers_that_cannot_be_read_are_one_sentence(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "health.json").write_text("not json", encoding="utf-8")
    async with hosting(HealthScreen(config)) as view:
        status = view.text("#health-status")
        assert status.startswith(f"Your health answers in {config / 'health.json'} are damaged")
        assert "\n" not in status
        assert answer_cell(view, "dvt") == "unreadable"
        await view.pilot.press("y", "ctrl+s")
        assert "damaged" in view.text("#health-status")  # never overwritten
        assert view.app.is_running
    assert (config / "health.json").read_text(encoding="utf-8") == "not json"
