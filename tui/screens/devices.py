"""The devices screen: what is in range, and which device plays which role in the next session.

It scans when it opens (and on ``r``), with a progress bar, then lists the devices relieve can
drive: address and name, kind and driver, safety class in words, signal strength, and for
simulated devices a ``SIMULATED`` mark. Below the table are the roles the next session binds:
``heat``, ``cold``, ``gun`` and ``probe``, each a device address, ``manual``, or found by kind
when the session starts.

Keys: ``h`` ``c`` ``g`` ``p`` give the selected device that role (a device of the wrong kind is
refused in one sentence); ``m`` then a role key makes the role ``manual``, ``u`` then a role key
unassigns it; ``enter`` hands the new roles to the caller and closes the screen, ``escape`` closes
it without changes. The screen only listens to the radio: nothing is connected, nothing switched
on. It does not scan while a session runs (the simulated radio is shared with the session).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, ProgressBar, Static

from controller.session.scan import MANUAL, ScanReport, role_problem, scan_devices
from controller.session.service import ROLES, SessionRequest
from drivers.core.discovery import ScanResult
from profiles.errors import RelieveError

__all__ = ["HINT", "SAFETY_WORDS", "DevicesScreen"]

HINT = "Selected device: h heat, c cold, g gun, p probe; m or u first: manual, unassign"
# A safety class in words, on the two lines of a table row.
SAFETY_WORDS: Mapping[str, tuple[str, str]] = {
    "lease": ("lease: turns itself off", "when relieve goes quiet"),
    "host-timed": ("host-timed: only", "relieve's timer stops it"),
}
_PROBE_SAFETY = ("none: a probe switches", "nothing on")
_MANUAL_TEXT = {"gun": "manual (your own gun)"}  # heat and cold: a passive pack
_PREFIX_TEXT = {
    "manual": "manual: now h, c or g for the role with no device behind it (escape cancels).",
    "unassign": "unassign: now h, c, g or p for the role to find by kind at the start "
    "(escape cancels).",
}

Prefix = Literal["manual", "unassign"]


def _sentence(exc: BaseException) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


class DevicesScreen(Screen[None]):
    """What is in range on ``request``'s radio, and the roles; ``assign`` gets the new roles
    (role to address or ``manual``) when the person accepts them. ``scan_s``: how long a scan
    listens, in seconds of the request's clock."""

    DEFAULT_CSS = """
    DevicesScreen #devices-top {
        height: 1;
    }
    DevicesScreen #devices-title {
        width: 1fr;
        text-style: bold;
    }
    DevicesScreen #devices-badge {
        width: auto;
        background: $warning;
        color: $text;
        text-style: bold;
        padding: 0 1;
    }
    DevicesScreen #devices-scan {
        height: auto;
    }
    DevicesScreen #devices-status {
        width: 1fr;
        height: auto;
    }
    DevicesScreen #devices-status.failed {
        color: $error;
        text-style: bold;
    }
    DevicesScreen #devices-progress {
        width: auto;
    }
    DevicesScreen #devices-table {
        height: 1fr;
    }
    DevicesScreen #devices-roles {
        height: 4;
    }
    DevicesScreen #devices-message {
        height: auto;
        max-height: 2;
    }
    DevicesScreen #devices-message.refused {
        color: $error;
        text-style: bold;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "role('heat')", "Heat", show=False),
        Binding("c", "role('cold')", "Cold", show=False),
        Binding("g", "role('gun')", "Gun", show=False),
        Binding("p", "role('probe')", "Probe", show=False),
        Binding("m", "prefix('manual')", "Manual", show=False),
        Binding("u", "prefix('unassign')", "Unassign", show=False),
        Binding("r", "rescan", "Rescan"),
        Binding("enter", "accept", "Accept", priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self,
        request: SessionRequest,
        assign: Callable[[Mapping[str, str]], None],
        *,
        scan_s: float = 5.0,
    ) -> None:
        super().__init__()
        self.request = request
        self.scan_s = scan_s
        self._assign = assign
        self._before = {role: _normal(value) for role, value in request.roles.items()}
        self.roles: dict[str, str] = dict(self._before)
        self.report: ScanReport | None = None
        self.scanning = False
        self.pending: Prefix | None = None

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        simulated = self.request.simulated
        with Horizontal(id="devices-top"):
            where = "simulated devices" if simulated else "Bluetooth devices"
            yield Static(f"Devices: {where} in range, and their roles", id="devices-title")
            if simulated:
                yield Static("SIMULATED", id="devices-badge")
        with Horizontal(id="devices-scan"):
            yield Static(id="devices-status")
            yield ProgressBar(total=100, show_eta=False, id="devices-progress")
        table: DataTable[Text] = DataTable(id="devices-table", cursor_type="row")
        yield table
        yield Static(id="devices-roles")
        yield Static(id="devices-message")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#devices-table", DataTable)
        for label, key in (
            ("ADDRESS / NAME", "device"),
            ("KIND / DRIVER", "kind"),
            ("SAFETY CLASS", "safety"),
            ("RSSI", "rssi"),
        ):
            table.add_column(label, key=key)
        self._show_roles()
        self._say(HINT)
        self.action_rescan()

    # --- scanning ----------------------------------------------------------------------------

    def action_rescan(self) -> None:
        """Scan again (one scan at a time; never during a session)."""
        if self.scanning:
            self._say("A scan is under way; wait for it to end.")
            return
        if getattr(self.app, "session", None) is not None:
            self._say("A session is running; scan for devices after it has ended.", refused=True)
            return
        self.scanning = True
        self.run_worker(self._scan(), group="devices-scan", exit_on_error=False)

    async def _scan(self) -> None:
        status = self.query_one("#devices-status", Static)
        bar = self.query_one("#devices-progress", ProgressBar)
        table = self.query_one("#devices-table", DataTable)
        table.clear()
        self.report = None
        status.remove_class("failed")
        status.update(Text(f"Scanning for {self.scan_s:g} s..."))
        bar.update(total=100, progress=0)
        bar.display = True
        try:
            report = await scan_devices(
                self.request,
                timeout_s=self.scan_s,
                on_progress=lambda fraction: bar.update(progress=100 * fraction),
            )
        except RelieveError as exc:
            self._scan_failed(_sentence(exc))
            return
        except Exception as exc:  # noqa: BLE001 - one sentence on the screen, never a traceback
            self._scan_failed(f"The scan failed ({_sentence(exc)}); press r to scan again.")
            return
        finally:
            self.scanning = False
        self.report = report
        bar.display = False
        self._fill(table, report)
        self._show_roles()

    def _scan_failed(self, sentence: str) -> None:
        self.query_one("#devices-progress", ProgressBar).display = False
        status = self.query_one("#devices-status", Static)
        status.add_class("failed")
        status.update(Text(sentence))

    def _fill(self, table: DataTable[Text], report: ScanReport) -> None:
        shown = report.drivable
        for result in shown:
            table.add_row(*_cells(result, simulated=report.simulated), height=2, key=result.address)
        others = len(report.results) - len(shown)
        more = f" ({others} other(s) heard)" if others else ""
        if shown:
            text = f"{len(shown)} device(s) relieve can drive{more}; r scans again."
        else:
            text = (
                f"No device relieve can drive is in range{more}; switch one on, bring it close "
                "and press r."
            )
        self.query_one("#devices-status", Static).update(Text(text))

    # --- roles -------------------------------------------------------------------------------

    def action_prefix(self, prefix: Prefix) -> None:
        """``m`` / ``u``: the next role key makes that role manual / unassigns it."""
        self.pending = None if self.pending == prefix else prefix
        self._say(HINT if self.pending is None else _PREFIX_TEXT[self.pending])

    def action_role(self, role: str) -> None:
        pending, self.pending = self.pending, None
        if pending == "unassign":
            self.roles.pop(role, None)
            self._changed(f"{role}: found by kind at the start.")
            return
        if pending == "manual":
            problem = role_problem(role, MANUAL)
            if problem is not None:
                self._say(problem, refused=True)
                return
            self.roles[role] = MANUAL
            self._changed(f"{role}: {_MANUAL_TEXT.get(role, 'manual (a passive pack)')}.")
            return
        chosen = self.selected()
        if chosen is None:
            self._say(
                "No device is selected; wait for the scan to end, or press r to scan again.",
                refused=True,
            )
            return
        problem = role_problem(
            role, chosen.address, chosen.kind, drivable=chosen.supported, name=chosen.name
        )
        if problem is not None:
            self._say(problem, refused=True)
            return
        self.roles[role] = chosen.address
        self._changed(f"{role}: {_label(chosen)}.")

    def selected(self) -> ScanResult | None:
        """The device on the table's highlighted row, or None."""
        table = self.query_one("#devices-table", DataTable)
        report = self.report
        if report is None or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return None if key is None else report.find(key)

    def _changed(self, what: str) -> None:
        self._show_roles()
        self._say(f"{what} Enter keeps the roles, escape drops the changes.")

    def _show_roles(self) -> None:
        lines = [self._role_line(role) for role in ROLES]
        self.query_one("#devices-roles", Static).update(Text("\n".join(lines)))

    def _role_line(self, role: str) -> str:
        value = self.roles.get(role)
        if value is None:
            what = "found by kind at the start"
        elif value == MANUAL:
            what = _MANUAL_TEXT.get(role, "manual (a passive pack)")
        else:
            what = value
            if self.report is not None:
                found = self.report.find(value)
                what += f"  {found.name or ''}" if found is not None else "  (not in this scan)"
        changed = "  (changed)" if value != self._before.get(role) else ""
        return f"{role:<6} {what.rstrip()}{changed}"

    # --- leaving -----------------------------------------------------------------------------

    def action_accept(self) -> None:
        """Hand the roles to the caller and close."""
        self.pending = None
        self._assign(dict(self.roles))
        self.dismiss(None)

    def action_back(self) -> None:
        """Escape: cancel a pending ``m`` / ``u``; else close without changes."""
        if self.pending is not None:
            self.pending = None
            self._say(HINT)
            return
        self.dismiss(None)

    def _say(self, text: str, *, refused: bool = False) -> None:
        message = self.query_one("#devices-message", Static)
        message.set_class(refused, "refused")
        message.update(Text(text))


def _normal(value: str) -> str:
    return value if value == MANUAL else value.strip().upper()


def _label(result: ScanResult) -> str:
    return f"{result.name} ({result.address})" if result.name else result.address


def _cells(result: ScanResult, *, simulated: bool) -> tuple[Text, Text, Text, Text]:
    safety = result.safety_class
    if safety is not None:
        words = SAFETY_WORDS.get(str(safety), (str(safety), ""))
    elif result.kind == "probe":
        words = _PROBE_SAFETY
    else:
        words = ("-", "")
    rssi = "-" if result.rssi is None else f"{result.rssi} dBm"
    mark = Text("\nSIMULATED", style="bold") if simulated else Text("")
    return (
        Text(f"{result.address}\n{result.name or '-'}"),
        Text(f"{result.kind or '-'}\n{result.driver or '-'}"),
        Text("\n".join(words).rstrip()),
        Text(rssi).append_text(mark),
    )
