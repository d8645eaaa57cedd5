"""The devices screen, driven with Textual's Pilot at 80x24 on a simulated world of its own.

The screen is hosted by a tiny app of this file (the relieve app wires it to its own keys). Its
scan runs on the world's ``VirtualClock`` through an in-test ``HciServer``: the progress moves
only when the test moves the clock, and the simulated devices themselves say whether anything
connected to them or switched them on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual.app import App
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Footer, ProgressBar, Static

from controller.session.service import SessionRequest
from drivers.core.clock import VirtualClock
from simulators.hci_server import HciServer
from simulators.world import SimWorld
from tui.screens.devices import HINT, DevicesScreen

CONTRAST_PAD = "C0:DE:00:00:00:01"
HEAT_PAD = "C0:DE:00:00:00:02"
COLD_PAD = "C0:DE:00:00:00:03"
GUN = "C0:DE:00:00:00:04"
THERAGUN = "C0:DE:00:00:00:05"
MAT = "C0:DE:00:00:00:06"
PROBE = "C0:DE:00:00:00:07"
DEVICES = ["heat-pad", "cold-pad", "massage-gun", "theragun", "skin-probe"]
ALL_DEVICES = [
    "contrast-pad",
    "heat-pad",
    "cold-pad",
    "massage-gun",
    "theragun",
    "heating-mat",
    "skin-probe",
]
SCAN_S = 5.0
LOOKS = 400  # at most this many looks at the app for a condition


class Host(App[None]):
    """Only the devices screen, as the relieve app shows it (no command palette)."""

    ENABLE_COMMAND_PALETTE = False

    def __init__(self, request: SessionRequest, *, session: object = None) -> None:
        super().__init__()
        self.assigned: list[dict[str, str]] = []
        self.session = session  # what the relieve app runs, if anything
        self.devices = DevicesScreen(request, self.take, scan_s=SCAN_S)

    def take(self, roles: Mapping[str, str]) -> None:
        self.assigned.append(dict(roles))

    def on_mount(self) -> None:
        self.push_screen(self.devices)


@dataclass
class Rig:
    app: Host
    pilot: Pilot[None]
    clock: VirtualClock
    world: SimWorld | None
    shown: list[float] = field(default_factory=list)

    @property
    def screen(self) -> DevicesScreen:
        return self.app.devices

    def text(self, selector: str) -> str:
        widget = self.screen.query_one(selector, Static)
        return str(widget.render()) if widget.display else ""

    @property
    def table(self) -> DataTable[Text]:
        return self.screen.query_one("#devices-table", DataTable)

    @property
    def bar(self) -> ProgressBar:
        return self.screen.query_one("#devices-progress", ProgressBar)

    def rows(self) -> dict[str, list[str]]:
        """Each row's cells as text, by address (the first line of its first cell)."""
        out = {}
        for index in range(self.table.row_count):
            cells = [str(cell) for cell in self.table.get_row_at(index)]
            out[cells[0].splitlines()[0]] = cells
        return out

    async def until(self, condition: Callable[[], bool]) -> None:
        for _ in range(LOOKS):
            if condition():
                await self.pilot.pause()
                return
            await self.pilot.pause()
        raise AssertionError("the screen never got there")

    async def scan_started(self) -> None:
        """The scan listens, its progress waiting on the clock."""
        await self.until(lambda: self.clock.next_deadline() is not None)

    async def scanned(self) -> None:
        """Let the scan run its time, until the screen shows what it heard."""
        await self.scan_started()
        await self.clock.advance(SCAN_S)
        await self.until(lambda: not self.screen.scanning)

    async def select(self, address: str) -> None:
        """Move the highlight to ``address`` with the arrow keys, as a person would."""
        steps = list(self.rows()).index(address) - self.table.cursor_row
        for _ in range(abs(steps)):
            await self.pilot.press("down" if steps > 0 else "up")
        selected = self.screen.selected()
        assert selected is not None
        assert selected.address == address


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    devices: list[str] = DEVICES,
    roles: Mapping[str, str] | None = None,
    simulator: str | None = None,
    session: object = None,
) -> AsyncIterator[Rig]:
    """The screen on a world of ``devices`` served over a socket (or on ``simulator``)."""
    clock = VirtualClock()
    world = SimWorld(clock=clock, devices=devices)
    async with world, await HciServer.start(world.link, f"unix:{tmp_path / 'sim.sock'}") as hci:
        request = SessionRequest(
            profile="contrast-mini",
            roles=dict(roles or {}),
            simulator=simulator or hci.client_spec,
            clock=clock,
            started_by="test",
        )
        app = Host(request, session=session)
        async with app.run_test(size=(80, 24)) as pilot:
            yield Rig(app, pilot, clock, world)


def untouched(world: SimWorld | None, keys: list[str]) -> bool:
    """Nothing connected to the devices and none switched on."""
    assert world is not None
    return all(not world.device(k).connected and not world.device(k).state.output_on for k in keys)


# --- what the scan shows ------------------------------------------------------------------------


async def test_the_scan_lists_the_simulated_devices_with_kind_and_safety_class(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        await r.scanned()
        rows = r.rows()
        assert list(rows) == [HEAT_PAD, COLD_PAD, GUN, THERAGUN, PROBE]
        device, kind, safety, rssi = rows[HEAT_PAD]
        assert device == f"{HEAT_PAD}\nrelieve Heat Pad"
        assert kind == "thermal\nopen-thermal"
        assert safety == "lease: turns itself off\nwhen relieve goes quiet"
        assert rssi == "-50 dBm\nSIMULATED"
        assert rows[THERAGUN][1] == "percussion\ntheragun"
        assert rows[THERAGUN][2] == "host-timed: only\nrelieve's timer stops it"
        assert rows[PROBE][1] == "probe\nsig-thermometer"
        assert rows[PROBE][2].startswith("none")
        assert all(cells[3].endswith("SIMULATED") for cells in rows.values())
        assert "simulated devices" in r.text("#devices-title")
        assert r.text("#devices-badge") == "SIMULATED"
        assert r.text("#devices-status").startswith("5 device(s) relieve can drive")
        assert untouched(r.world, DEVICES)  # a scan only listens


async def test_the_progress_moves_with_the_clock_and_the_table_fills_at_the_end(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        await r.scan_started()
        assert r.bar.display
        assert r.bar.percentage == 0
        assert r.text("#devices-status") == "Scanning for 5 s..."
        await r.clock.advance(2)
        await r.pilot.pause()
        assert r.bar.percentage == 0.4
        assert r.table.row_count == 0  # still listening
        await r.clock.advance(2)
        await r.pilot.pause()
        assert r.bar.percentage == 0.8
        await r.clock.advance(1)
        await r.until(lambda: not r.screen.scanning)
        assert r.table.row_count == len(DEVICES)
        assert not r.bar.display


async def test_r_scans_again(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.scanned()
        assert r.table.row_count == len(DEVICES)
        await r.pilot.press("r")
        await r.scan_started()
        assert r.table.row_count == 0
        assert r.bar.display
        assert r.bar.percentage == 0
        await r.clock.advance(SCAN_S)
        await r.until(lambda: not r.screen.scanning)
        assert list(r.rows()) == [HEAT_PAD, COLD_PAD, GUN, THERAGUN, PROBE]


async def test_the_roles_show_addresses_manual_and_found_by_kind(tmp_path: Path) -> None:
    async with rig(tmp_path, roles={"heat": HEAT_PAD.lower(), "gun": "manual"}) as r:
        await r.scanned()
        lines = r.text("#devices-roles").splitlines()
        assert lines == [
            f"heat   {HEAT_PAD}  relieve Heat Pad",
            "cold   found by kind at the start",
            "gun    manual (your own gun)",
            "probe  found by kind at the start",
        ]
        assert r.text("#devices-message") == HINT


# --- assigning ----------------------------------------------------------------------------------


async def test_h_gives_the_selected_heat_pad_the_heat_role_and_enter_hands_it_over(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, roles={"probe": PROBE}) as r:
        await r.scanned()
        await r.select(HEAT_PAD)
        await r.pilot.press("h")
        await r.pilot.pause()
        assert r.text("#devices-roles").splitlines()[0] == (
            f"heat   {HEAT_PAD}  relieve Heat Pad  (changed)"
        )
        assert r.app.assigned == []  # not before enter
        await r.pilot.press("enter")
        await r.pilot.pause()
        assert r.app.assigned == [{"probe": PROBE, "heat": HEAT_PAD}]
        assert r.app.screen is not r.screen  # the screen closed
        assert untouched(r.world, DEVICES)


async def test_one_contrast_pad_may_play_heat_and_cold(tmp_path: Path) -> None:
    async with rig(tmp_path, devices=["contrast-pad", "skin-probe"]) as r:
        await r.scanned()
        await r.select(CONTRAST_PAD)
        await r.pilot.press("h", "c")
        await r.select(PROBE)
        await r.pilot.press("p", "enter")
        await r.pilot.pause()
        assert r.app.assigned == [{"heat": CONTRAST_PAD, "cold": CONTRAST_PAD, "probe": PROBE}]


async def test_a_gun_for_heat_is_refused_in_one_sentence_and_nothing_changes(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, roles={"heat": HEAT_PAD}) as r:
        await r.scanned()
        roles_before = r.text("#devices-roles")
        await r.select(GUN)
        await r.pilot.press("h")
        await r.pilot.pause()
        message = r.screen.query_one("#devices-message", Static)
        assert r.text("#devices-message") == (
            f"relieve Massage Gun ({GUN}) is a massage gun, not a heat pad; "
            "choose a heat pad for heat."
        )
        assert message.has_class("refused")
        assert r.text("#devices-roles") == roles_before
        await r.select(HEAT_PAD)
        await r.pilot.press("p")  # a pad is no probe either
        await r.pilot.pause()
        assert "is a heat or cold pad, not a skin probe" in r.text("#devices-message")
        await r.pilot.press("enter")
        await r.pilot.pause()
        assert r.app.assigned == [{"heat": HEAT_PAD}]


async def test_m_then_c_makes_cold_manual(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.scanned()
        await r.pilot.press("m")
        await r.pilot.pause()
        assert r.text("#devices-message").startswith("manual: now h, c or g")
        await r.pilot.press("c")
        await r.pilot.pause()
        assert r.text("#devices-roles").splitlines()[1] == (
            "cold   manual (a passive pack)  (changed)"
        )
        await r.pilot.press("enter")
        await r.pilot.pause()
        assert r.app.assigned == [{"cold": "manual"}]


async def test_m_then_p_is_refused_as_a_probe_cannot_be_manual(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.scanned()
        await r.pilot.press("m", "p")
        await r.pilot.pause()
        message = r.text("#devices-message")
        assert message.startswith("A probe cannot be manual")
        assert message.count(".") == 1
        assert message.endswith(".")
        assert r.text("#devices-roles").splitlines()[3] == "probe  found by kind at the start"
        await r.pilot.press("enter")
        await r.pilot.pause()
        assert r.app.assigned == [{}]


async def test_u_then_a_role_key_unassigns_it(tmp_path: Path) -> None:
    async with rig(tmp_path, roles={"heat": HEAT_PAD, "gun": "manual"}) as r:
        await r.scanned()
        await r.pilot.press("u", "g")
        await r.pilot.pause()
        assert r.text("#devices-roles").splitlines()[2] == (
            "gun    found by kind at the start  (changed)"
        )
        await r.pilot.press("enter")
        await r.pilot.pause()
        assert r.app.assigned == [{"heat": HEAT_PAD}]


async def test_escape_goes_back_and_hands_over_nothing(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.scanned()
        await r.select(HEAT_PAD)
        await r.pilot.press("h", "m")
        await r.pilot.press("escape")  # first it cancels the pending m
        await r.pilot.pause()
        assert r.app.screen is r.screen
        assert r.text("#devices-message") == HINT
        await r.pilot.press("escape")
        await r.pilot.pause()
        assert r.app.screen is not r.screen
        assert r.app.assigned == []


async def test_a_role_key_before_the_scan_ends_says_what_to_do(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.scan_started()
        await r.pilot.press("h")
        await r.pilot.pause()
        assert r.text("#devices-message") == (
            "No device is selected; wait for the scan to end, or press r to scan again."
        )
        await r.clock.advance(SCAN_S)
        await r.until(lambda: not r.screen.scanning)


async def test_an_empty_scan_says_what_to_do(tmp_path: Path) -> None:
    async with rig(tmp_path, devices=[]) as r:
        await r.scanned()
        assert r.table.row_count == 0
        assert r.text("#devices-status") == (
            "No device relieve can drive is in range; switch one on, bring it close and press r."
        )


# --- problems -----------------------------------------------------------------------------------


async def test_a_simulator_that_does_not_answer_is_one_sentence_on_the_screen(
    tmp_path: Path,
) -> None:
    nobody = f"unix:{tmp_path / 'nobody.sock'}"
    async with rig(tmp_path, simulator=nobody) as r:
        await r.until(lambda: not r.screen.scanning and r.text("#devices-status") != "")
        status = r.text("#devices-status")
        assert status.startswith("The simulated radio is not available: Cannot reach")
        assert "nobody.sock" in status
        assert "\n" not in status
        assert "Traceback" not in status
        assert r.screen.query_one("#devices-status", Static).has_class("failed")
        assert not r.bar.display
        assert r.table.row_count == 0
        await r.pilot.press("escape")
        await r.pilot.pause()
        assert r.app.assigned == []


async def test_no_scan_while_a_session_runs(tmp_path: Path) -> None:
    async with rig(tmp_path, session=object()) as r:
        await r.pilot.pause()
        assert r.text("#devices-message") == (
            "A session is running; scan for devices after it has ended."
        )
        assert not r.screen.scanning
        assert r.clock.next_deadline() is None  # nothing listens
        await r.pilot.press("m", "c", "enter")  # the roles may still change
        await r.pilot.pause()
        assert r.app.assigned == [{"cold": "manual"}]


# --- 80x24 --------------------------------------------------------------------------------------


def _fits(widget: Widget) -> bool:
    """All of ``widget``'s content is on the screen (no scrolling, no clipped lines)."""
    if isinstance(widget, Static):  # text wraps: it fits when every line it wraps to shows
        size = widget.content_size
        return widget.get_content_height(size, size, size.width) <= size.height
    return widget.max_scroll_x == 0 and widget.max_scroll_y == 0


async def test_the_screen_fits_80x24_with_every_device_and_nothing_cut_off(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path, devices=ALL_DEVICES, roles={"heat": CONTRAST_PAD}) as r:
        await r.scanned()
        await r.select(GUN)
        await r.pilot.press("h")  # the longest sentence: a refusal
        await r.pilot.pause()
        screen = r.screen
        assert r.table.row_count == len(ALL_DEVICES)
        widgets = list(screen.query("*"))
        assert all(screen.region.contains_region(w.region) for w in widgets if w.display)
        assert [w for w in widgets if w.display and not _fits(w)] == []
        for selector in ("#devices-title", "#devices-status", "#devices-roles"):
            assert screen.query_one(selector).region.height > 0
        footer = screen.query_one(Footer)
        assert footer.region.bottom == 24
        assert "…" not in r.app.export_screenshot()
