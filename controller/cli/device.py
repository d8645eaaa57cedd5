"""``relieve scan`` and ``relieve device info|heat|cold|gun|off|watch``: manual device control.

Manual control is always time-bounded and checked against the hard limits before anything is
sent (heat: H1/H2, cold: C4/C1, gun: M1 and the speeds guns run at): refused with the limit ID,
never clamped, and before any device is connected. What the device itself can do (its setpoint or
speed range) is checked once it is connected, before a line says what is about to happen. Every way
out -- done, an error, Ctrl-C -- turns the output OFF before the command ends. The drivers
(and bleak) are imported when a command runs, never at start-up.

Each command is a coroutine taking the parsed arguments, a Clock and an output stream, so tests
run it on a virtual clock against the simulated devices; :func:`scan` and :func:`device` are the
synchronous entry points the CLI calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, TextIO

from controller.cli.commands import quoted_argument
from drivers.core.base import DeviceError, PercussionState, ProbeReading
from drivers.core.clock import Clock, MonotonicClock
from drivers.core.faults import FAULT_POLICY, Fault, policy_for, stopping_faults
from profiles.errors import LimitError, RelieveError
from profiles.limits import (
    HARD,
    MASSAGE_RPM_MAX,
    MASSAGE_RPM_MIN,
    SPEED_LEVEL_RPM,
    Limits,
    level_band,
    minutes_text,
)

if TYPE_CHECKING:
    from controller.session.simulation import Radio
    from drivers.core.base import ThermalState
    from drivers.core.factory import AnyDevice
    from drivers.heating_mat import HeatingMat
    from drivers.open_percussion import OpenPercussionGun
    from drivers.open_thermal import OpenThermalPad
    from drivers.sig_probe import SigThermometer
    from drivers.theragun import Theragun

    OutputDevice = OpenThermalPad | HeatingMat | OpenPercussionGun | Theragun

__all__ = [
    "device",
    "format_duration",
    "parse_duration",
    "run_device",
    "run_scan",
    "scan",
]

# The gun's own run cap is set this much past the host's stop, so the device's backstop never
# races the host's planned stop (its timer starts when the START arrives, after ours).
GUN_CAP_MARGIN_S = 2.0

# Clock seconds between progress lines while an output runs.
PROGRESS_S = 30.0
# Clock seconds between checks that the device is still connected, on and fault-free.
CHECK_S = 1.0
# Clock seconds `device info` waits for a first temperature reading (telemetry is every 1 s).
READING_WAIT_S = 3.0
# Real seconds the clean-up (OFF, disconnect) may take before we give up and say so.
SHUTDOWN_TIMEOUT_S = 10.0

# The longest DURATION anything takes (`device watch --for`; outputs have their own, shorter caps).
MAX_DURATION_S = 24 * 3600.0

_DURATION = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?")

# --- durations ----------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """``90s``, ``5m``, ``1m30s``, ``1h`` -> seconds; argparse shows the error otherwise."""
    cleaned = text.strip().lower().replace(" ", "")
    match = _DURATION.fullmatch(cleaned)
    if not cleaned or match is None or not any(match.groupdict().values()):
        raise argparse.ArgumentTypeError(
            f"{quoted_argument(text)} is not a duration; write it like 90s, 5m or 1m30s"
        )
    hours, minutes, seconds = (match.group(g) for g in ("h", "m", "s"))
    try:
        total = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    except (OverflowError, ValueError):  # more digits than a number holds
        total = math.inf
    if total <= 0:
        raise argparse.ArgumentTypeError(
            f"{quoted_argument(text)} is no time at all; give a positive duration"
        )
    if not total <= MAX_DURATION_S:  # also infinity: "1" followed by 400 digits and "s"
        raise argparse.ArgumentTypeError(
            f"{quoted_argument(text)} is longer than the {format_duration(MAX_DURATION_S)} "
            "relieve times at most; give a shorter duration"
        )
    return total


def format_duration(seconds: float) -> str:
    """Seconds as ``1m30s`` (the way durations are typed)."""
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs or not (hours or minutes) else "")
    return "".join(parts)


def _clock_text(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


# --- entry points -------------------------------------------------------------------------------

EXIT_TERMINATED = 143  # 128 + SIGTERM, as shells report it


def scan(args: argparse.Namespace) -> int:
    """``relieve scan``."""
    return asyncio.run(run_scan(args, clock=MonotonicClock(), out=sys.stdout))


def device(args: argparse.Namespace) -> int:
    """``relieve device ...``."""
    try:
        return asyncio.run(_until_terminated(args))
    except asyncio.CancelledError:
        # SIGTERM: run_device has already turned the output off (or said it could not)
        print("relieve: terminated.", file=sys.stderr)
        return EXIT_TERMINATED


async def _until_terminated(args: argparse.Namespace) -> int:
    """Run the device action; SIGTERM cancels it like Ctrl-C, so the output goes OFF first."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run_device(args, clock=MonotonicClock(), out=sys.stdout, err=sys.stderr)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@asynccontextmanager
async def _radio(
    args: argparse.Namespace, clock: Clock, radio: Radio | None
) -> AsyncIterator[Radio]:
    if radio is not None:
        yield radio
        return
    from controller.session.simulation import radio_for

    async with radio_for(args, clock=clock) as opened:
        yield opened


async def run_scan(
    args: argparse.Namespace, *, clock: Clock, out: TextIO, radio: Radio | None = None
) -> int:
    """List the devices in range (only those relieve can drive, unless ``--all``)."""
    from controller.session.scan import scan_radio

    async with _radio(args, clock, radio) as opened:
        # --timeout is real seconds, whatever clock a simulated world runs on
        report = await scan_radio(opened, timeout_s=args.timeout, clock=MonotonicClock())
    results = report.results
    shown = [r for r in results if args.all or r.supported]
    if args.json:
        json.dump([r.to_json() for r in shown], out, indent=2)
        out.write("\n")
        return 0
    if not shown:
        hidden = len(results) - len(shown)
        more = f" ({hidden} other device(s) heard: --all lists them)" if hidden else ""
        out.write(f"No device relieve can drive was found on {opened.description}{more}.\n")
        return 0
    rows = [
        (
            r.address,
            r.name or "-",
            r.kind or "-",
            r.driver or "-",
            "-" if r.rssi is None else str(r.rssi),
            str(r.safety_class) if r.safety_class is not None else "-",
        )
        for r in shown
    ]
    header = ("ADDRESS", "NAME", "KIND", "DRIVER", "RSSI", "SAFETY")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        out.write("  ".join(cells).rstrip() + "\n")
    return 0


async def run_device(
    args: argparse.Namespace,
    *,
    clock: Clock,
    out: TextIO,
    err: TextIO | None = None,
    radio: Radio | None = None,
) -> int:
    """One ``relieve device`` action against one device."""
    action = args.device_command
    limits = HARD
    _check_request(args, limits)  # refuse before touching the radio
    from drivers.core.factory import open_device

    init_packet = _init_packet(getattr(args, "init_packet", None))
    async with _radio(args, clock, radio) as opened:
        target = await open_device(
            args.address,
            backend=opened.backend,
            clock=clock,
            driver=getattr(args, "driver", None),
            init_packet=init_packet,
        )
        await target.connect()
        name = f"{target.info.name} ({target.info.address})"
        confirmed = False
        try:
            try:
                if action == "info":
                    await _info(target, args, clock, out)
                elif action == "watch":
                    await _watch(target, args, clock, out)
                elif action == "off":
                    await _off(target, out)
                else:
                    await _run_output(target, args, clock, out, limits)
            finally:
                confirmed = await _shutdown(target, err or sys.stderr)
        except asyncio.CancelledError:
            if confirmed and action in ("heat", "cold", "gun"):
                out.write(f"Stopped: {name} is OFF.\n")
            raise
    return 0


def _init_packet(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        packet = bytes.fromhex(text)
    except ValueError:
        packet = b""
    if not packet:
        raise RelieveError(f"{text!r} is not an init packet; give hex bytes such as a55affff.")
    return packet


# --- limits, checked before connecting ----------------------------------------------------------


def _check_request(args: argparse.Namespace, limits: Limits) -> None:
    action, seconds = args.device_command, getattr(args, "duration", None)
    if seconds is None or action not in ("heat", "cold", "gun"):
        return
    if action == "gun" and args.rpm is not None:
        _check_rpm(args.rpm)
    if action == "heat":
        violation = limits.check_heat_celsius(args.celsius, seconds)
        longest, limit_id, what = limits.heat_continuous_max_s, "H2", "Heat on one area"
    elif action == "cold":
        violation = limits.check_cold_plate(args.celsius)
        longest, limit_id, what = limits.cold_continuous_max_s, "C1", "Cold in one go"
    else:
        violation = None
        longest, limit_id, what = limits.massage_max_s, "M1", "A massage session"
    if violation is not None:
        raise LimitError(violation.limit_id, f"{violation}.")
    if seconds > longest:
        raise LimitError(
            limit_id,
            f"{what} may last {minutes_text(longest)}, not {minutes_text(seconds)}; "
            f"ask for less ({limit_id}).",
        )


def _check_rpm(rpm: int) -> None:
    if not MASSAGE_RPM_MIN <= rpm <= MASSAGE_RPM_MAX:
        raise RelieveError(
            f"--rpm {rpm} is outside the {MASSAGE_RPM_MIN}-{MASSAGE_RPM_MAX} per minute "
            "percussion guns run at; choose a speed in that range, or --level low."
        )


def _check_mat_level(mat: HeatingMat, celsius: float, seconds: float, limits: Limits) -> int:
    level = mat.level_for(celsius)
    band = level_band(level, len(mat.caps.levels))
    violation = limits.check_level_step(band, seconds)
    if violation is not None:
        raise LimitError(violation.limit_id, f"{violation}.")
    return level


# --- the actions --------------------------------------------------------------------------------


def _kind_error(target: AnyDevice, wanted: str) -> RelieveError:
    info = target.info
    hint = {
        "thermal": "relieve device heat / cold",
        "percussion": "relieve device gun",
        "probe": "relieve device watch",
    }[info.kind]
    return RelieveError(
        f"{info.name} ({info.address}) is a {info.kind} device, not a {wanted} device; use {hint}."
    )


async def _run_output(
    target: AnyDevice, args: argparse.Namespace, clock: Clock, out: TextIO, limits: Limits
) -> None:
    from drivers.heating_mat import HeatingMat
    from drivers.registry import is_percussion_device, is_thermal_device

    seconds: float = args.duration
    name = f"{target.info.name} ({target.info.address})"
    if args.device_command in ("heat", "cold"):
        if not is_thermal_device(target):
            raise _kind_error(target, "thermal")
        pad, heat = target, args.device_command == "heat"
        what = f"to {args.celsius:g} °C"
        if heat and isinstance(pad, HeatingMat):
            level = _check_mat_level(pad, args.celsius, seconds, limits)
            what = f"at level {level} ({pad.caps.levels[level - 1]:g} °C)"
        else:
            _check_pad_range(pad, args.celsius, heat=heat, limits=limits)
        verb = "Heating" if heat else "Cooling"
        out.write(f"{verb} {name} {what} for {format_duration(seconds)}. {_bound(pad)}\n")
        await (pad.heat if heat else pad.cool)(args.celsius)
        await _hold(pad, seconds, clock, out, lambda: _thermal_line(pad.state))
    else:
        if not is_percussion_device(target):
            raise _kind_error(target, "percussion")
        gun = target
        rpm = args.rpm if args.rpm is not None else SPEED_LEVEL_RPM[args.level]
        _check_gun_range(gun, rpm)  # before saying it would run
        out.write(
            f"Running {name} at {rpm} per minute for {format_duration(seconds)}. {_bound(gun)}\n"
        )
        # relieve stops the gun after `seconds`; the gun's own cap is the backstop just after it
        await gun.run(rpm, run_cap_s=seconds + GUN_CAP_MARGIN_S)
        await _hold(gun, seconds, clock, out, lambda: _gun_line(gun.state))
    await _stop_output(target)
    out.write(f"Done: {name} is OFF.\n")


def _check_pad_range(
    pad: OpenThermalPad | HeatingMat, celsius: float, *, heat: bool, limits: Limits
) -> None:
    """The pad's own setpoint range (and the limits again), before a line says what it will do."""
    from drivers.core.guards import check_cool, check_heat
    from drivers.open_thermal import OpenThermalPad

    span: tuple[float, float] | None = None  # a heating mat: heat goes by level; it cannot cool
    if isinstance(pad, OpenThermalPad):
        span = pad.heat_range if heat else pad.cold_range
    check = check_heat if heat else check_cool
    check(celsius, span, label=pad.label, address=pad.info.address, limits=limits)


def _check_gun_range(gun: OpenPercussionGun | Theragun, rpm: int) -> None:
    """The gun's own speed range, before a line says what it will do."""
    from drivers.core.guards import check_rpm

    caps = gun.caps
    check_rpm(rpm, caps.min_rpm, caps.max_rpm, label=gun.label, address=gun.info.address)


def _bound(target: OutputDevice) -> str:
    from drivers.heating_mat import HeatingMat
    from drivers.registry import has_lease

    if has_lease(target):
        return (
            f"Every ON carries a {target.lease_s:g} s lease: the device turns itself off if "
            "relieve stops. Ctrl-C stops it now."
        )
    backstop = (
        f" Its own timer is set to {format_duration(target.caps.timer_s)} as a backstop."
        if isinstance(target, HeatingMat) and target.caps.timer_s
        else ""
    )
    return f"Host-timed: relieve switches it off.{backstop} Ctrl-C stops it now."


def _thermal_line(state: ThermalState) -> str:
    parts: list[str] = [state.mode]
    if state.level:
        parts.append(f"level {state.level}")
    if state.setpoint_celsius is not None:
        parts.append(f"setpoint {state.setpoint_celsius:g} °C")
    if state.plate_celsius is not None:
        parts.append(f"plate {state.plate_celsius:.1f} °C")
    return ", ".join(parts)


def _gun_line(state: PercussionState) -> str:
    parts = ["running" if state.running else "stopped"]
    if state.measured_rpm is not None:
        parts.append(f"{state.measured_rpm} per minute")
    return ", ".join(parts)


def _problem(target: OutputDevice) -> str | None:
    """Why a manual run must end now, or None."""
    name = f"{target.info.name} ({target.info.address})"
    if not target.connected:
        lost = FAULT_POLICY[Fault.LINK_LOST].message(name)
        return f"{lost}; check the device and switch it off there if needed."
    state = target.state
    # A fault ends a manual run at once when the fault table says it stops the outputs (the
    # same table the session supervisor reads); the output goes OFF and the command fails.
    faults = stopping_faults(state.faults)
    if faults:
        said = policy_for(faults[0]).message(name, faults[0])
        return f"{said} ({', '.join(faults)}); it was switched off."
    on = state.running if isinstance(state, PercussionState) else state.on
    if not on:
        why = ", ".join(sorted(state.faults)) or "no reason given"
        return f"{name} switched itself off ({why})."
    return None


async def _hold(
    target: OutputDevice, seconds: float, clock: Clock, out: TextIO, line: Callable[[], str]
) -> None:
    start = clock.now()
    end = start + seconds
    next_report = start + PROGRESS_S
    while (now := clock.now()) < end:
        await clock.sleep_until(min(end, next_report, now + CHECK_S))
        problem = _problem(target)
        if problem is not None:
            raise DeviceError(problem, address=target.info.address)
        if clock.now() >= next_report and clock.now() < end:
            out.write(f"  {_clock_text(clock.now() - start)}  {line()}\n")
            next_report += PROGRESS_S


async def _stop_output(target: AnyDevice) -> None:
    from drivers.registry import is_percussion_device, is_probe_device

    if is_percussion_device(target):
        await target.stop()
    elif not is_probe_device(target):
        await target.off()


async def _shutdown(target: AnyDevice, err: TextIO) -> bool:
    """OFF and disconnect, whatever happened before (errors, Ctrl-C); True when confirmed."""
    name = f"{target.info.name} ({target.info.address})"
    try:
        async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
            await _stop_output(target)
    except (DeviceError, TimeoutError) as exc:
        detail = str(exc).rstrip(".") or "no answer in time"
        err.write(f"relieve: could not confirm that {name} is OFF ({detail}); check it.\n")
        await target.disconnect()
        return False
    await target.disconnect()
    return True


async def _off(target: AnyDevice, out: TextIO) -> None:
    # connect() already sent OFF first; say it once more and confirm.
    await _stop_output(target)
    out.write(f"{target.info.name} ({target.info.address}) is OFF.\n")


async def _info(target: AnyDevice, args: argparse.Namespace, clock: Clock, out: TextIO) -> None:
    from drivers.registry import is_probe_device, is_thermal_device

    reading: float | None = None
    if is_probe_device(target):
        reading = await _first_reading(target, clock)
    elif is_thermal_device(target):  # the plate's temperature, when the pad has a sensor
        reading = target.state.plate_celsius
    info = target.info
    caps = None if is_probe_device(target) else target.caps
    if args.json:
        document = {
            **asdict(info),
            "safety_class": str(info.safety_class),
            "caps": None if caps is None else asdict(caps),
            "celsius": reading,
        }
        json.dump(document, out, indent=2)
        out.write("\n")
        return
    rows = [
        ("name", info.name),
        ("address", info.address),
        ("kind", info.kind),
        ("driver", info.driver),
        (
            "safety class",
            "none (a probe switches nothing on)" if caps is None else info.safety_class,
        ),
        ("manufacturer", info.manufacturer),
        ("model", info.model),
        ("serial", info.serial),
        ("firmware", info.firmware),
        ("battery", None if info.battery is None else f"{info.battery} %"),
        ("capabilities", _caps_text(caps)),
        ("temperature", None if reading is None else f"{reading:.2f} °C"),
    ]
    for label, value in rows:
        if value is not None:
            out.write(f"{label + ':':14} {value}\n")


def _caps_text(caps: object) -> str | None:
    from drivers.core.base import PercussionCaps, ThermalCaps

    if isinstance(caps, ThermalCaps):
        modes = [m for m, ok in (("heat", caps.can_heat), ("cold", caps.can_cool)) if ok]
        parts = ["/".join(modes)]
        if caps.levels:
            parts.append("levels " + ", ".join(f"{c:g}" for c in caps.levels) + " °C")
        elif caps.min_celsius is not None and caps.max_celsius is not None:
            parts.append(f"{caps.min_celsius:g}-{caps.max_celsius:g} °C")
        if caps.max_lease_s:
            parts.append(f"lease up to {caps.max_lease_s:g} s")
        if caps.timer_s:
            parts.append(f"backstop timer {format_duration(caps.timer_s)}")
        return ", ".join(parts)
    if isinstance(caps, PercussionCaps):
        parts = [f"{caps.min_rpm}-{caps.max_rpm} per minute"]
        if caps.max_lease_s:
            parts.append(f"lease up to {caps.max_lease_s:g} s")
        if caps.run_cap_s:
            parts.append(f"run cap up to {format_duration(caps.run_cap_s)}")
        return ", ".join(parts)
    return None


async def _first_reading(probe: SigThermometer, clock: Clock) -> float | None:
    deadline = clock.now() + READING_WAIT_S
    while probe.reading is None and clock.now() < deadline:
        await clock.sleep(min(CHECK_S, deadline - clock.now()))
    return None if probe.reading is None else probe.reading.celsius


async def _watch(target: AnyDevice, args: argparse.Namespace, clock: Clock, out: TextIO) -> None:
    from drivers.registry import is_percussion_device, is_probe_device

    start = clock.now()
    name = f"{target.info.name} ({target.info.address})"
    until = "" if args.duration is None else f" for {format_duration(args.duration)}"
    out.write(f"Watching {name}{until}; Ctrl-C ends.\n")

    def show(text: str) -> None:
        out.write(f"  {_clock_text(clock.now() - start)}  {text}\n")

    unregister: Callable[[], None]
    if is_probe_device(target):

        def on_reading(reading: ProbeReading) -> None:
            show("no valid reading" if reading.celsius is None else f"{reading.celsius:.2f} °C")

        unregister = target.register_callback(on_reading)
    elif is_percussion_device(target):
        gun = target
        show(_gun_line(gun.state))
        unregister = gun.register_callback(lambda state: show(_gun_line(state)))
    else:
        pad = target
        show(_thermal_line(pad.state))
        unregister = pad.register_callback(lambda state: show(_thermal_line(state)))
    try:
        if args.duration is None:
            await asyncio.get_running_loop().create_future()  # until Ctrl-C
        else:
            await clock.sleep(args.duration)
    finally:
        unregister()
