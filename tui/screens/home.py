"""The home screen: today's therapy, and every profile with whether it may start now.

For each profile (built-in and the user's) the screen shows whether the daily allowances, the
limits and the health answers let it start now and, when not, the rule and the earliest time
(H5, H6, C2, M1, M4); the highlighted profile's full sentence is shown below the list. The
checks are the session service's own (:meth:`SessionService.availability`), run on a thread
(they read the ledger) when the screen opens, when it comes back, on ``r`` and every minute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Label, ListItem, ListView, Static

from controller.ledger import Ledger
from controller.ledger.allowances import AllowanceError, Exposure, Modality, moment_text
from controller.session.service import Availability, SessionService
from profiles.errors import RelieveError

__all__ = [
    "REFRESH_S",
    "HomeScreen",
    "HomeView",
    "availability_text",
    "roles_text",
    "today_text",
]

REFRESH_S = 60.0  # real seconds between re-checks while the screen shows (times pass)
_MODALITIES: tuple[Modality, ...] = ("heat", "cold", "massage")
_SHOWN_FROM_S = 30.0  # minutes are rounded: less than half a minute is not shown


@dataclass(frozen=True)
class HomeView:
    """What the home screen shows, read on a thread."""

    now: datetime
    today: Exposure | None
    availability: Mapping[str, Availability]
    problem: str | None = None  # the ledger could not be read


def today_text(today: Exposure | None) -> str:
    """``Today: lower-back heat 20 min, cold 8 min; neck massage 5 min`` (or nothing yet)."""
    if today is None:
        return "Today: the history cannot be read."
    parts = []
    for area in today.areas:
        minutes = [
            f"{modality} {round(seconds / 60)} min"
            for modality in _MODALITIES
            if (seconds := today.of(modality, area)) >= _SHOWN_FROM_S
        ]
        if minutes:
            parts.append(f"{area} {', '.join(minutes)}")
    return "Today: " + ("; ".join(parts) if parts else "no heat, cold or massage yet.")


def roles_text(roles: Mapping[str, str], daemon_radio: str | None = None) -> str:
    """``Devices: heat C0:DE:..., cold manual; the others found by kind at the start``;
    ``daemon_radio``: the node daemon's radio, when it runs the sessions (no scan here)."""
    if daemon_radio is not None and not roles:
        return f"Devices: the node daemon's ({daemon_radio}), found by kind at the start."
    if not roles:
        return "Devices: found by kind at the start (d: scan and choose)."
    named = [f"{role} {roles[role]}" for role in ("heat", "cold", "gun", "probe") if role in roles]
    return f"Devices: {', '.join(named)}; any other found by kind at the start."


def availability_text(found: Availability | None, now: datetime, ledger: Ledger) -> str:
    """The short status beside a profile: ``allowed now``, ``H5: from 14:30``, ..."""
    if found is None:
        return "checking…"
    if found.allowed:
        if found.lifted:
            return f"allowed ({', '.join(found.lifted)} overridden)"
        return "allowed now"
    if found.problem is not None:
        return "not now: see below"
    main = AllowanceError(found.refusals)
    rules = ", ".join(sorted({r.rule_id for r in found.refusals}))
    if main.earliest is None:
        return f"{rules}: not as planned"
    return f"{rules}: from {moment_text(main.earliest, now, ledger.tz)}"


class HomeScreen(Screen[None]):
    """Choose a profile (Enter starts it); ``d`` devices, ``h`` history, ``a`` health answers."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh"),
        Binding("d", "app.devices", "Devices"),
        Binding("h", "app.history", "History"),
        Binding("a", "app.health", "Health"),
    ]

    def __init__(
        self,
        service: SessionService,
        ledger: Ledger,
        start: Callable[[str], None],
        *,
        roles: Callable[[], Mapping[str, str]] = dict,
        daemon_radio: Callable[[], str | None] = lambda: None,
        extend: bool = False,
        lift: Collection[str] = (),
    ) -> None:
        super().__init__()
        self.roles = roles
        self.daemon_radio = daemon_radio
        self.service = service
        self.ledger = ledger
        self.start = start
        self.extend = extend
        self.lift = tuple(lift)
        self.names: list[str] = []
        self.view: HomeView | None = None
        self.refreshes = 0  # completed checks (tests wait for them)

    def compose(self) -> ComposeResult:
        library = self.service.library
        profiles = library.all()
        self.names = list(profiles)
        kind = "simulated devices" if self.ledger.simulated else "your devices"
        yield Static(f"relieve on {kind}: choose a profile and press Enter", id="home-title")
        yield Static("Today: …", id="home-today")
        yield Static(roles_text(self.roles(), self.daemon_radio()), id="home-devices")
        items: list[ListItem] = []
        for name in self.names:
            items.append(ListItem(Label(self._row(name), id=f"row-{len(items)}")))
        yield ListView(*items, id="profiles")
        yield Static(id="home-detail")
        problems = len(library.problems)
        if problems:
            yield Static(
                f"{problems} problem(s) in your profiles: relieve profiles validate shows them.",
                id="home-problems",
            )
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.action_refresh()
        self.set_interval(REFRESH_S, self._tick)

    def _tick(self) -> None:
        # only while shown: under a running session the ledger is the session's to write
        if self.is_current:
            self.action_refresh()

    def on_screen_resume(self) -> None:
        self.query_one("#home-devices", Static).update(
            roles_text(self.roles(), self.daemon_radio())
        )
        if self.view is not None:  # back from a session or another screen: times moved on
            self.action_refresh()

    def action_refresh(self) -> None:
        self._check()

    @work(exclusive=True, group="home-check")
    async def _check(self) -> None:
        view = await asyncio.to_thread(self._read)
        self.view = view
        self._show()
        self.refreshes += 1

    def _read(self) -> HomeView:
        """Every profile's availability and today's exposure (blocking: on a thread)."""
        ledger = self.ledger
        try:
            now = ledger.now()
            today = ledger.exposure()
        except RelieveError as exc:
            return HomeView(datetime.now().astimezone(), None, {}, " ".join(str(exc).split()))
        found = {
            name: self.service.availability(name, ledger, extend=self.extend, lift=self.lift)
            for name in self.names
        }
        return HomeView(now, today, found)

    def _row(self, name: str) -> str:
        loaded = self.service.library.all()[name]
        where = "" if loaded.builtin else ", yours"
        found = self.view.availability.get(name) if self.view is not None else None
        now = self.view.now if self.view is not None else datetime.now().astimezone()
        mark = "·" if found is None else ("✓" if found.allowed else "✗")
        status = availability_text(found, now, self.ledger)
        return f"{mark} {status:<20} {loaded.profile.title} ({name}{where})"

    def _show(self) -> None:
        view = self.view
        if view is None:
            return
        today = self.query_one("#home-today", Static)
        today.update(view.problem or today_text(view.today))
        for index, name in enumerate(self.names):
            self.query_one(f"#row-{index}", Label).update(self._row(name))
        self._show_detail()

    def _selected(self) -> str | None:
        index = self.query_one("#profiles", ListView).index
        if index is None or not 0 <= index < len(self.names):
            return None
        return self.names[index]

    def _show_detail(self) -> None:
        name = self._selected()
        detail = self.query_one("#home-detail", Static)
        if name is None or self.view is None:
            detail.update("")
            return
        found = self.view.availability.get(name)
        if found is None:
            detail.update("")
        elif found.allowed:
            detail.update(f"{name}: allowed now. Enter starts it.")
        else:
            detail.update(found.sentence or "")

    def on_list_view_highlighted(self, event: ListView.Highlighted) -> None:
        self._show_detail()

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        self.action_start()

    def action_start(self) -> None:
        """Start the highlighted profile, unless it may not start now (then say why)."""
        name = self._selected()
        if name is None:
            return
        found = self.view.availability.get(name) if self.view is not None else None
        if found is not None and not found.allowed:
            # the service would refuse it the same way; say why here, start nothing
            self.notify(found.sentence or "", title="Not now", severity="warning", timeout=8)
            return
        self.start(name)
