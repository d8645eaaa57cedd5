"""The fault matrix's vocabulary: its rows and columns, one measured cell, the judge and the report.

Shared by ``benchmarks/fault_matrix.py`` (which runs the cells) and the modules that measure
them: ``fault_inprocess.py`` (a real session on the in-process simulated world, virtual clock)
and ``fault_process.py`` (real processes in real time: ``relieve sim serve`` and a controller,
or the node daemon, or a broker). Pure: nothing here runs a session.

A cell is judged from what the *simulated device* says of itself, not from what relieve says:

* every output OFF no later than the cell's bound after the fault (or the session resumed
  safely and nothing was left ON at its end);
* the ledger's exposure never less than what the devices delivered (within one device
  snapshot, :data:`COVER_TOLERANCE_S`);
* the person got one clear sentence (one line, not empty, no traceback);
* a cell that does not apply says why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

__all__ = [
    "COLUMNS",
    "COVER_TOLERANCE_S",
    "ROWS",
    "Cell",
    "Column",
    "Row",
    "failures",
    "render_markdown",
    "summary",
]

Column = Literal["preheat", "heat", "cold", "massage", "between"]

COLUMNS: tuple[tuple[Column, str], ...] = (
    ("preheat", "pre-heat"),
    ("heat", "heat"),
    ("cold", "cold"),
    ("massage", "massage"),
    ("between", "between two phases"),
)
"""Every column: its key and its heading in the report."""


@dataclass(frozen=True)
class Row:
    key: str
    title: str
    where: Literal["virtual", "real-time"]
    """``virtual``: in-process on the virtual clock; ``real-time``: real processes."""


ROWS: tuple[Row, ...] = (
    Row("link-disconnect", "link disconnect", "virtual"),
    Row("refused-reconnection", "refused reconnection", "virtual"),
    Row("notification-loss", "notification loss", "virtual"),
    Row("notification-delay", "notification delay", "virtual"),
    Row("att-error", "ATT error on writes", "virtual"),
    Row("stuck-heater-loud", "stuck heater (loud)", "virtual"),
    Row("stuck-heater-silent", "stuck heater (silent)", "virtual"),
    Row("sensor-nan", "NaN sensor", "virtual"),
    Row("sensor-drift", "drifting sensor", "virtual"),
    Row("battery-death", "battery death", "virtual"),
    Row("ledger-locked", "ledger locked by another process", "virtual"),
    Row("ledger-write-failure", "ledger write failure", "virtual"),
    Row("sigkill", "controller SIGKILL", "real-time"),
    Row("sigterm", "controller SIGTERM", "real-time"),
    Row("sigstop", "controller SIGSTOP for 15 s", "real-time"),
    Row("daemon-killed", "daemon killed (SIGKILL)", "real-time"),
    Row("broker-loss", "MQTT broker lost", "real-time"),
)
"""Every row, in report order."""

# The devices report themselves once a clock second; what the ledger records and what a
# device's snapshots show may differ by one snapshot.
COVER_TOLERANCE_S = 1.0


@dataclass
class Cell:
    """One measured cell of the matrix (or one that does not apply, with why)."""

    row: str  # Row.key
    column: Column
    applies: bool = True
    why_not: str = ""  # when it does not apply: one sentence
    # --- what happened ---
    outcome: str = ""  # the session's outcome (completed, aborted, stopped, interrupted, ...)
    # Seconds from the fault to every output OFF at the device (None: nothing was ON, or the
    # session resumed safely instead). Virtual cells measure clock seconds, real-time cells real
    # seconds; ``off_clock`` says which.
    off_after_s: float | None = None
    off_clock: Literal["virtual", "real"] = "virtual"
    bound_s: float = 0.0  # the bound ``off_after_s`` must keep
    resumed_after_s: float | None = None  # fault to the session going on safely, when it did
    left_on: bool = False  # an output still ON (or energised) at the device once it was over
    delivered_s: float = 0.0  # ON time the devices themselves report, all outputs summed
    recorded_s: float = 0.0  # the ledger's exposure for the session, all modalities summed
    sentence: str = ""  # what the person was told (the alarm, or the refusal)
    expected: str = ""  # what the cell expects, in words (e.g. "aborts: S2 link lost")
    notes: str = ""  # anything a reader needs (e.g. "stuck output: relieve cannot switch it")
    # A physical fault relieve cannot undo (a welded heater): an output left ON is the device's
    # fault, not relieve's; the cell passes when relieve aborts, says so and does not claim OFF.
    host_cannot_switch: bool = False
    claimed_off: bool | None = None  # Finished.devices_off (None: no Finished seen)
    wall_s: float = 0.0  # real seconds the cell took to run
    problems: list[str] = field(default_factory=list)  # set by the measuring code, if any

    @property
    def one_sentence(self) -> bool:
        text = self.sentence.strip()
        return bool(text) and "\n" not in text and "Traceback" not in text

    def verdict(self) -> list[str]:
        """Why this cell fails (empty: it passes)."""
        if not self.applies:
            return [] if self.why_not else ["a cell that does not apply must say why"]
        out = list(self.problems)
        if self.host_cannot_switch:
            if self.claimed_off:
                out.append("relieve claimed every device OFF while an output was stuck ON")
        else:
            if self.left_on:
                out.append("an output was left ON")
            if self.off_after_s is not None and not (
                math.isfinite(self.off_after_s) and self.off_after_s <= self.bound_s
            ):
                out.append(f"OFF {self.off_after_s:.3f} s after the fault (bound {self.bound_s} s)")
        if self.recorded_s + COVER_TOLERANCE_S < self.delivered_s:
            out.append(
                f"the ledger records {self.recorded_s:.1f} s, the devices delivered "
                f"{self.delivered_s:.1f} s"
            )
        if not self.one_sentence:
            out.append(f"not one clear sentence: {self.sentence!r}")
        return out

    @property
    def passed(self) -> bool:
        return not self.verdict()

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["one_sentence"] = self.one_sentence
        out["passed"] = self.passed
        out["failures"] = self.verdict()
        return out


def failures(cells: Iterable[Cell]) -> list[Cell]:
    return [c for c in cells if not c.passed]


def summary(cells: Sequence[Cell]) -> dict[str, int]:
    applicable = [c for c in cells if c.applies]
    return {
        "cells": len(cells),
        "applicable": len(applicable),
        "not_applicable": len(cells) - len(applicable),
        "passed": sum(c.passed for c in applicable),
        "failed": len(failures(cells)),
    }


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _short(cell: Cell) -> str:
    """The table's text for one cell."""
    if not cell.applies:
        return "n/a"
    mark = "ok" if cell.passed else "**FAIL**"
    parts = [mark, cell.outcome or "?"]
    unit = "s" if cell.off_clock == "real" else "s clock"
    if cell.off_after_s is not None:
        parts.append(f"OFF {_seconds(cell.off_after_s)} {unit}")
    if cell.resumed_after_s is not None:
        parts.append(f"resumed {_seconds(cell.resumed_after_s)} {unit}")
    return " · ".join(parts)


def render_markdown(cells: Sequence[Cell], *, header: str) -> str:
    """The report: ``header`` (the page's introduction), the table, then every cell in detail."""
    by_key = {(c.row, c.column): c for c in cells}
    rows = [r for r in ROWS if any(c.row == r.key for c in cells)]
    lines = [header.rstrip(), ""]
    lines.append("| fault | " + " | ".join(title for _, title in COLUMNS) + " |")
    lines.append("|---|" + "---|" * len(COLUMNS))
    for row in rows:
        texts = []
        for column, _ in COLUMNS:
            cell = by_key.get((row.key, column))
            texts.append(_short(cell) if cell is not None else "not run")
        lines.append(f"| {row.title} | " + " | ".join(texts) + " |")
    lines += ["", "## Every cell", ""]
    for row in rows:
        lines.append(
            f"### {row.title} ({'virtual clock' if row.where == 'virtual' else 'real time'})"
        )
        lines.append("")
        for column, title in COLUMNS:
            cell = by_key.get((row.key, column))
            if cell is None:
                continue
            if not cell.applies:
                lines.append(f"- **{title}**: does not apply: {cell.why_not}")
                continue
            detail = [
                f"outcome `{cell.outcome}`",
                f"expected: {cell.expected}" if cell.expected else "",
                f"every output OFF {_seconds(cell.off_after_s)} s after the fault "
                f"(bound {cell.bound_s:g} s, {cell.off_clock} time)"
                if cell.off_after_s is not None
                else "",
                f"resumed {_seconds(cell.resumed_after_s)} s after the fault"
                if cell.resumed_after_s is not None
                else "",
                f"delivered {cell.delivered_s:.1f} s, recorded {cell.recorded_s:.1f} s",
                f"told: “{cell.sentence}”",
                cell.notes,
                "" if cell.passed else "**FAILED: " + "; ".join(cell.verdict()) + "**",
            ]
            lines.append(f"- **{title}**: " + "; ".join(d for d in detail if d) + ".")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
