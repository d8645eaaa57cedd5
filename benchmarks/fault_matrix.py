"""The fault matrix (issue 14): every fault relieve must survive, at every point of a session.

Rows are faults (a link lost, notifications lost or late, a refused write, a welded heater, a
sensor that reads NaN or drifts, a dead battery, the history locked or unwritable, relieve's own
process killed, stopped or terminated, the node daemon killed, the MQTT broker lost); columns are
the moments they strike (pre-heat, heat, cold, massage, the switch between two phases). Each cell
runs a real session on simulated devices and judges it from the simulated device's own state
(``benchmarks/fault_cells.py``):

* every output OFF within the cell's bound after the fault (or the session went on safely);
* the ledger's exposure never less than what the devices delivered;
* one clear sentence for the person; a cell that does not apply says why.

The first twelve rows run in-process on the virtual clock (``benchmarks/fault_inprocess.py``,
about half a minute in all); the last five are faults of real processes and run in real time
against ``relieve sim serve`` (``benchmarks/fault_process.py``, several minutes).

    .venv/bin/python benchmarks/fault_matrix.py              # all; writes docs/fault-matrix.md
    .venv/bin/python benchmarks/fault_matrix.py --quick      # one cell per row
    .venv/bin/python benchmarks/fault_matrix.py --row sensor-nan --column cold --json
    .venv/bin/python benchmarks/fault_matrix.py --row att-error --report /tmp/att.md

The report (markdown) goes to docs/fault-matrix.md when the whole matrix ran, or to ``--report``.
Exit status 1 when any cell fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fault_cells import (
    COLUMNS,
    COVER_TOLERANCE_S,
    ROWS,
    Cell,
    Column,
    failures,
    render_markdown,
    summary,
)
from benchmarks.fault_inprocess import (
    AFTER_END_S,
    BLIP_S,
    DRIFT_C_PER_MIN,
    LEASE_BOUND_S,
    LEDGER_BOUND_S,
    LOCK_HOLD_S,
    PHASE_AT_S,
    PREHEAT_AT_S,
    REPORT_BOUND_S,
    STALL_BOUND_S,
    VIRTUAL_ROWS,
    run_inprocess_matrix,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REPORT = ROOT / "docs" / "fault-matrix.md"
COLUMN_KEYS: tuple[Column, ...] = tuple(key for key, _ in COLUMNS)
ROW_KEYS = tuple(r.key for r in ROWS)
REAL_TIME_ROWS = tuple(r.key for r in ROWS if r.where == "real-time")
TITLES = {r.key: r.title for r in ROWS} | dict(COLUMNS)
TARGET_WALL_S = 15 * 60  # the whole matrix must finish within this

# --quick: one cell per row, spread over the columns so that each column is exercised (chosen
# to cover the matrix, not to pass: a cell that fails in the whole matrix may be among them).
QUICK: dict[str, Column] = {
    "link-disconnect": "heat",
    "refused-reconnection": "massage",
    "notification-loss": "preheat",
    "notification-delay": "heat",
    "att-error": "between",
    "stuck-heater-loud": "heat",
    "stuck-heater-silent": "cold",
    "sensor-nan": "cold",
    "sensor-drift": "heat",
    "battery-death": "massage",
    "ledger-locked": "between",
    "ledger-write-failure": "preheat",
    "sigkill": "heat",
    "sigterm": "heat",
    "sigstop": "heat",
    "daemon-killed": "heat",
    "broker-loss": "heat",
}


def _selection(
    rows: Sequence[str], columns: Sequence[Column], *, quick: bool
) -> list[tuple[str, Column]]:
    """The (row, column) cells to run, in report order."""
    if quick:
        return [(r, QUICK[r]) for r in rows if QUICK[r] in columns]
    return [(r, c) for r in rows for c in columns]


def run_cells(
    cells: Sequence[tuple[str, Column]], *, workdir: Path, quick: bool, progress: bool
) -> list[Cell]:
    """Run the virtual cells, then the real-time ones; every cell, in report order."""

    def show(cell: Cell) -> None:
        if progress:
            mark = "n/a" if not cell.applies else ("ok" if cell.passed else "FAIL")
            print(
                f"  {cell.row} x {cell.column}: {mark} ({cell.wall_s:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    out: list[Cell] = []
    virtual = [(r, c) for r, c in cells if r in VIRTUAL_ROWS]
    for row in dict.fromkeys(r for r, _ in virtual):
        columns = [c for r, c in virtual if r == row]
        out += run_inprocess_matrix([row], columns, workdir=workdir / "virtual", progress=show)
    real = [(r, c) for r, c in cells if r not in VIRTUAL_ROWS]
    if real:
        from benchmarks.fault_process import run_process_cells

        if progress:
            print(f"  {len(real)} real-time cells ...", file=sys.stderr, flush=True)
        for row in dict.fromkeys(r for r, _ in real):
            columns = [c for r, c in real if r == row]
            for cell in run_process_cells(
                [row], columns, workdir=workdir / "real-time", quick=quick
            ):
                show(cell)
                out.append(cell)
    order = {key: i for i, key in enumerate(cells)}
    return sorted(out, key=lambda c: order.get((c.row, c.column), len(order)))


# --- the console -----------------------------------------------------------------------------


def _text(cell: Cell | None) -> str:
    if cell is None:
        return ""
    if not cell.applies:
        return "n/a"
    mark = "ok" if cell.passed else "FAIL"
    parts = [mark]
    if cell.off_after_s is not None:
        parts.append(f"off {cell.off_after_s:.1f}/{cell.bound_s:g}")
    if cell.resumed_after_s is not None:
        parts.append(f"back {cell.resumed_after_s:.1f}")
    if len(parts) == 1:
        parts.append(cell.outcome)
    return " ".join(parts)


def table(cells: Sequence[Cell]) -> str:
    """Row x column, a short text per cell: ``ok off 0.0/5 back 4.0`` is every output OFF 0.0 s
    after the fault against a bound of 5 s, and the session going on 4.0 s after the fault."""
    by_key = {(c.row, c.column): c for c in cells}
    rows = [r for r in ROW_KEYS if any(c.row == r for c in cells)]
    columns = [c for c in COLUMN_KEYS if any(cell.column == c for cell in cells)]
    first = max(len(TITLES[r]) for r in rows)
    widths = [max(len(TITLES[c]), *(len(_text(by_key.get((r, c)))) for r in rows)) for c in columns]
    lines = [
        "  ".join(
            [" " * first, *(TITLES[c].ljust(w) for c, w in zip(columns, widths, strict=True))]
        ).rstrip()
    ]
    for row in rows:
        texts = [_text(by_key.get((row, c))).ljust(w) for c, w in zip(columns, widths, strict=True)]
        lines.append("  ".join([TITLES[row].ljust(first), *texts]).rstrip())
    return "\n".join(lines)


# --- the report ------------------------------------------------------------------------------


def _machine() -> str:
    try:
        system = platform.freedesktop_os_release().get("NAME", platform.system())
    except OSError:
        system = platform.system()
    return f"{os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def header(cells: Sequence[Cell], *, wall_s: float, partial: bool) -> str:
    """The report's introduction, for a reader who has only the repository."""
    totals = summary(cells)
    date = datetime.now(UTC).date().isoformat()
    scope = (
        "This run covered part of the matrix only (`--row`, `--column` or `--quick`)."
        if partial
        else "This run covered the whole matrix."
    )
    failing = failures(cells)
    lines = [
        "# The fault matrix",
        "",
        "Every fault relieve must survive (the rows), at every point of a session (the columns).",
        "Each cell runs a real session on simulated devices, injects one fault at the column's",
        "moment, and is judged from the simulated device's own state, not from what relieve says",
        "of itself. Generated by `benchmarks/fault_matrix.py`; do not edit by hand.",
        "",
        "```console",
        "$ .venv/bin/python benchmarks/fault_matrix.py             # the whole matrix: this page",
        "$ .venv/bin/python benchmarks/fault_matrix.py --quick     # one cell per row",
        "$ .venv/bin/python benchmarks/fault_matrix.py --row sensor-nan --column cold --json",
        "```",
        "",
        f"Measured on {date} ({_machine()}) in {wall_s:.0f} s of wall time "
        f"(target: under {TARGET_WALL_S // 60} minutes for the whole matrix). {scope} "
        f"**{totals['passed']} of {totals['applicable']} applicable cells pass, "
        f"{totals['failed']} fail; {totals['not_applicable']} do not apply.**",
        "",
        "## How a cell runs",
        "",
        "- **Virtual-clock rows** (link disconnect to ledger write failure): in-process, through",
        "  the real session runner and its supervisor, the drivers, the simulated bleak backend",
        "  and the simulated devices on the in-process radio, on a virtual clock",
        "  (`benchmarks/fault_inprocess.py`). Heat, cold, pre-heat and between use a one-cycle",
        "  contrast (67.5 s at 42 °C, 67.5 s at 12 °C, pre-heat first) on the contrast pad with",
        "  the skin probe under it; massage uses five minutes over two areas on the open-profile",
        "  massage gun. Faults come from `simulators/faults.py`; the ledger rows use another",
        "  process holding SQLite's write lock, and the process's file-size limit (a full disk).",
        "- **Real-time rows** (controller SIGKILL to broker loss): real processes against",
        "  `relieve sim serve`, in real time (`benchmarks/fault_process.py`, whose docstring",
        "  says how each is set up and measured).",
        "",
        f"When the fault strikes (virtual rows): **pre-heat** {PREHEAT_AT_S:g} s into pre-heat;",
        f"**heat** and **cold** {PHASE_AT_S:g} s into that phase; **massage** {PHASE_AT_S:g} s",
        "into the first area; **between** as the cold phase is announced, while the heat is",
        "still ON and before the cold START goes out (the two ledger rows a second earlier, so",
        "that the switch's own records meet the fault).",
        "",
        "## What each figure means",
        "",
        "- **OFF**: seconds from the fault to the device snapshot after which no output drives",
        "  (it reports OFF and, for a pad, its element is not energised). Clock seconds for the",
        "  virtual rows (the devices report at least once a clock second and on every change),",
        "  real seconds for the real-time rows. Not given when nothing had to go OFF (the",
        "  session went on as planned) or when relieve cannot switch the output (a welded",
        "  heater).",
        "- **resumed**: seconds from the fault to an output driving again, when the session",
        "  went on after it (a short link blip). On the virtual clock a reconnection itself",
        "  takes no clock time.",
        "- **delivered**: the ON time the devices themselves report after therapy time zero, all",
        "  outputs summed. Pre-heat warms the pad before time zero: it is not therapy and the",
        "  ledger does not count it; each cell's notes say how long it was ON. For a welded",
        "  output only the time it reported ON counts: what it drives after relieve's OFF is",
        "  the device's fault, which no ledger can know (the notes say how hot it was).",
        "- **recorded**: the exposure the ledger holds for the session, all modalities summed,",
        "  as the daily allowances count it (an open phase to its last heartbeat plus its worst",
        f"  case). It must never be less than delivered (tolerance {COVER_TOLERANCE_S:g} s, one",
        "  device report).",
        "- **told**: what the person read: the high alarm, else the reason the session ended,",
        "  else the first medium alarm, else the line that closes the session.",
        "",
        "## The bounds",
        "",
        "Each bound is a promise of docs/safety.md and docs/running.md, never fitted to a result:",
        "",
        "| rows | bound | why |",
        "|---|---|---|",
        f"| link disconnect, refused reconnection, battery death, ATT error on writes | "
        f"{LEASE_BOUND_S:g} s | relieve cannot reach the output (no link) or renew its lease "
        "(a refused write): the device's lease ends it (H4, at most 5 s); the open profile "
        "also turns an output OFF at once when its link drops |",
        f"| NaN sensor (the skin probe) | {REPORT_BOUND_S:g} s | the next report (at most 1 s, "
        "S2) and every output OFF within 1 s (S4) |",
        f"| drifting sensor (the pad's own, {DRIFT_C_PER_MIN:g} °C/min towards the alarm) | "
        f"crossing + {REPORT_BOUND_S:g} s | relieve can only act once the reading is 3 °C beyond "
        "the setpoint; then as above |",
        f"| notification loss, notification delay | {STALL_BOUND_S:g} s | no telemetry for 5 s "
        "(S2 watchdog, looked for every second) and every output OFF within 1 s |",
        f"| ledger write failure | {LEDGER_BOUND_S:g} s | the next record fails (a heartbeat "
        "at least every 10 s) and every output OFF within 1 s (S3) |",
        "| stuck heater | none | relieve cannot switch a welded output: the cell passes when "
        "relieve ends the session with a high alarm, tells the person to take the pad off, and "
        "does not claim every device OFF |",
        f"| ledger locked ({LOCK_HOLD_S:g} s of real time) | none | nothing stops: the session "
        "must go on, and record everything once the lock is free |",
        "| real-time rows | per cell | stated in each cell (SIGTERM: 1 s; a controller that is "
        "gone or stopped: the lease) |",
        "",
        "A cell fails when an output is left ON or goes OFF past its bound, the ledger records",
        "less than was delivered, the person is not told one clear line, a cell that does not",
        "apply gives no reason, or the session ends otherwise than the row expects (each",
        "cell's *expected*), an output stays ON until the plan's end after an alarm, or an",
        f"output comes back ON in the {AFTER_END_S:g} clock seconds after the end. The link",
        f"disconnect row keeps the device out of range for {BLIP_S:g} s. The script exits 1",
        "when any cell fails.",
        "",
    ]
    if failing:
        lines += ["## Failing cells", ""]
        lines += [
            f"- **{TITLES[c.row]}, {TITLES[c.column]}**: {'; '.join(c.verdict())}." for c in failing
        ]
        lines.append("")
    lines += ["## The matrix", ""]
    return "\n".join(lines)


# --- the command -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--row", action="append", choices=ROW_KEYS, help="repeatable")
    parser.add_argument("--column", action="append", choices=COLUMN_KEYS, help="repeatable")
    parser.add_argument("--quick", action="store_true", help="one cell per row")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--report",
        type=Path,
        help=f"write the markdown report here (default {DEFAULT_REPORT.relative_to(ROOT)} "
        "when the whole matrix runs; a partial run writes none unless asked)",
    )
    parser.add_argument("--workdir", type=Path, help="keep every cell's files here")
    parser.add_argument("--verbose", action="store_true", help="relieve's own log on stderr")
    args = parser.parse_args(argv)
    _logging(verbose=args.verbose)
    rows: list[str] = list(dict.fromkeys(args.row or ROW_KEYS))
    columns: list[Column] = list(dict.fromkeys(args.column or COLUMN_KEYS))
    rows = [r for r in ROW_KEYS if r in rows]
    columns = [c for c in COLUMN_KEYS if c in columns]
    partial = bool(args.quick or args.row or args.column)
    selected = _selection(rows, columns, quick=args.quick)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cells = run_cells(selected, workdir=workdir, quick=args.quick, progress=True)
    wall_s = time.monotonic() - started
    totals = summary(cells)
    report = args.report or (None if partial else DEFAULT_REPORT)
    if report is not None:
        text = render_markdown(cells, header=header(cells, wall_s=wall_s, partial=partial))
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text, encoding="utf-8")
    if args.json:
        out = {
            "cells": [c.to_json() for c in cells],
            "summary": totals,
            "wall_s": round(wall_s, 1),
            "report": str(report) if report is not None else None,
        }
        print(json.dumps(_finite(out), indent=2, allow_nan=False))
    else:
        print(table(cells))
        print()
        print(
            f"{totals['cells']} cells: {totals['passed']} of {totals['applicable']} applicable "
            f"pass, {totals['failed']} fail, {totals['not_applicable']} do not apply"
        )
        for cell in failures(cells):
            print(f"  FAIL {cell.row} x {cell.column}: {'; '.join(cell.verdict())}")
        print(f"wall time {wall_s:.1f} s (target: the whole matrix under {TARGET_WALL_S} s)")
        if report is not None:
            print(f"report: {report}")
    return 1 if totals["failed"] else 0


def _logging(*, verbose: bool) -> None:
    """relieve logs every alarm as a warning: on stderr only when asked (``--verbose``).

    Quiet is a handler on the root logger that drops what reaches it: Python's last-resort
    handler then stays silent, and so does the implicit ``basicConfig`` a library's call of
    ``logging.debug()`` would make (bumble's GATT server does). A root logger the caller
    configured already is left as it is.
    """
    root = logging.getLogger()
    if verbose:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    elif not root.handlers:
        root.addHandler(logging.NullHandler())


def _finite(value: object) -> object:
    """``value`` with every infinite or NaN number as None (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
