"""``relieve run PROFILE`` and ``relieve demo``: a session from profile to devices OFF."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from controller.cli.console import JsonLines, LiveView
from controller.cli.keys import SessionKeys
from controller.ledger import DeviceInfo as LedgerDevice
from controller.ledger import Ledger
from controller.library import ProfileLibrary
from controller.session.bindings import SessionDevices
from controller.session.events import Event, Finished
from controller.session.runner import SessionRunner
from controller.session.simulation import Radio, radio_for
from drivers.core.base import (
    DeviceError,
    Percussion,
    TemperatureProbe,
    ThermalOutput,
    is_percussion,
    is_probe,
    is_thermal,
)
from drivers.core.clock import Clock, MonotonicClock, ScaledClock
from drivers.core.discovery import ScanResult, scan
from drivers.core.factory import create_device, open_device
from profiles.compiler import compile_plan
from profiles.errors import RelieveError
from profiles.models import Profile
from profiles.plan import Plan

_T = TypeVar("_T")

__all__ = ["DEMO_PROFILE", "DEMO_SPEED", "demo", "run"]

_LOGGER = logging.getLogger(__name__)

DEMO_PROFILE = "routine-lower-back"
DEMO_SPEED = 60.0  # the demo's 50-minute routine in under a minute
DEMO_DEVICES = ("contrast-pad", "massage-gun", "skin-probe")  # the demo's simulated world
SCAN_FOR_ROLES_S = 2.0  # real seconds to listen when picking devices by kind
DISCONNECT_TIMEOUT_S = 3.0  # real seconds per device when letting go at the end
ROLES = ("heat", "cold", "gun", "probe")

EXIT_OK = 0
EXIT_ABORTED = 1

PRECAUTIONS_HEAT = (
    "Before heat (H7): a fabric layer between the pad and your skin; you are awake and will stay "
    "awake; you are not lying on the pad; you have no numbness or impaired sensation there."
)
PRECAUTIONS_COLD = "Before cold: a thin towel between the cold pad or pack and your skin."
PRECAUTIONS_GUN = (
    "Before the massage gun: only the muscles beside the spine, never the spine itself; no "
    "clotting disorder, anticoagulants, recent surgery or fracture there."
)
EXTENSION_TEXT = (
    "The one-a-day extension (M1) adds 3 minutes to today's massage (18 minutes at most)."
)


class RunError(RelieveError):
    """A session could not start."""


@dataclass
class _Options:
    simulated: bool
    speed: float | None
    yes: bool
    json: bool
    interactive: bool


def _roles_needed(plan: Plan) -> set[str]:
    return {s.role for s in plan.steps if s.role != "user"}


def _confirm(question: str, opts: _Options) -> None:
    """Ask for a yes, or take --yes; refuse when nobody can answer."""
    if opts.yes:
        return
    if not opts.interactive:
        raise RunError(
            "These precautions must be confirmed before the first device turns on; run it "
            "in a terminal to answer, or add --yes to confirm them for an unattended session."
        )
    print(question, file=sys.stderr)
    answer = input("Confirm? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise RunError("Not confirmed, so nothing was turned on.")


def _precautions(plan: Plan) -> list[str]:
    actions = {s.action for s in plan.steps}
    out = []
    if actions & {"heat", "preheat"}:
        out.append(PRECAUTIONS_HEAT)
    if actions & {"cold", "precool"}:
        out.append(PRECAUTIONS_COLD)
    if "run" in actions:
        out.append(PRECAUTIONS_GUN)
    return out


def _clock_for(opts: _Options) -> Clock:
    # `not low <= speed <= high` refuses NaN too (every comparison with it is false)
    if opts.speed is not None and not 1 <= opts.speed <= 1000:
        raise RunError(
            f"--speed must be between 1 and 1000 (times real time), not {opts.speed:g}; give a "
            "number in that range."
        )
    if opts.speed is None or opts.speed == 1:
        return MonotonicClock()
    if not opts.simulated:
        raise RunError(
            "--speed runs time faster and is only for simulated devices; add --simulate or "
            "--simulator SPEC, or leave out --speed."
        )
    return ScaledClock(opts.speed)


# --- binding devices to roles --------------------------------------------------------------------


async def _connect(device: ThermalOutput | Percussion | TemperatureProbe) -> None:
    await device.connect()


async def _bind(
    args: argparse.Namespace, needed: set[str], radio: Radio, clock: Clock, bound: SessionDevices
) -> None:
    """Devices for the roles the plan needs: as given (ADDR or 'manual'), else by kind, into
    ``bound`` (so the caller lets go of those connected before a failure too)."""
    manual: set[str] = set()
    explicit = {role: getattr(args, role, None) for role in ROLES}
    found: list[ScanResult] | None = None
    for role in ROLES:
        value = explicit[role]
        if value is None:
            continue
        if value == "manual":
            if role == "probe":
                raise RunError("--probe takes a device address; a probe cannot be manual.")
            manual.add(role)
            continue
        device = await open_device(value, backend=radio.backend, clock=clock)
        _check_kind(role, device, value)
        await _connect(device)
        bound.assign(role, device)
    missing = [r for r in ("heat", "cold", "gun") if r in needed and explicit[r] is None]
    if missing or (needed & {"heat", "cold"} and explicit["probe"] is None):
        found = await scan(radio.backend, timeout_s=SCAN_FOR_ROLES_S)
        await _bind_by_kind(bound, found, missing=missing, needed=needed, radio=radio, clock=clock)
    bound.manual = frozenset(manual)
    for role in ("heat", "cold", "gun"):
        if role in needed and bound.for_role(role) is None and role not in manual:
            raise RunError(
                f"No {_ROLE_DEVICE[role]} was found for this session; switch one on and bring it "
                f"close, name it with --{role} ADDR, or use --{role} manual"
                + (" for a passive pack." if role != "gun" else " to hold your own gun.")
            )


_ROLE_DEVICE = {"heat": "heat pad", "cold": "cold pad", "gun": "massage gun"}


def _check_kind(role: str, device: object, address: str) -> None:
    ok = {
        "heat": is_thermal(device),
        "cold": is_thermal(device),
        "gun": is_percussion(device),
        "probe": is_probe(device),
    }[role]
    if not ok:
        raise RunError(f"{address} is not a {_ROLE_DEVICE.get(role, 'probe')}; check --{role}.")


async def _bind_by_kind(
    bound: SessionDevices,
    found: list[ScanResult],
    *,
    missing: Sequence[str],
    needed: set[str],
    radio: Radio,
    clock: Clock,
) -> None:
    thermal: list[ThermalOutput] = []
    if {"heat", "cold"} & set(missing):
        for result in (r for r in found if r.kind == "thermal" and r.supported):
            pad = create_device(result, backend=radio.backend, clock=clock)
            if is_thermal(pad):
                await _connect(pad)
                thermal.append(pad)
    chosen = _choose_thermal(thermal, missing)
    for role, device in chosen.items():
        setattr(bound, role, device)
    for unused in thermal:
        if all(unused is not d for d in chosen.values()):
            await _let_go(unused)
    if "gun" in missing:
        guns = [r for r in found if r.kind == "percussion" and r.supported]
        guns.sort(key=lambda r: r.safety_class != "lease")  # a gun with a lease first
        if guns:
            gun = create_device(guns[0], backend=radio.backend, clock=clock)
            await _connect(gun)
            bound.assign("gun", gun)
    if needed & {"heat", "cold"} and bound.probe is None:
        probes = [r for r in found if r.kind == "probe" and r.supported]
        if probes:
            probe = create_device(probes[0], backend=radio.backend, clock=clock)
            await _connect(probe)
            bound.assign("probe", probe)


def _choose_thermal(pads: list[ThermalOutput], missing: Sequence[str]) -> dict[str, ThermalOutput]:
    both = [p for p in pads if p.caps.can_heat and p.caps.can_cool]
    if "heat" in missing and "cold" in missing and both:
        return {"heat": both[0], "cold": both[0]}
    out: dict[str, ThermalOutput] = {}
    if "heat" in missing:
        # a pad that takes a temperature before a level-only mat; a heat-only pad first
        heaters = sorted(
            (p for p in pads if p.caps.can_heat),
            key=lambda p: (bool(p.caps.levels), p.caps.can_cool),
        )
        if heaters:
            out["heat"] = heaters[0]
    if "cold" in missing:
        coolers = sorted((p for p in pads if p.caps.can_cool), key=lambda p: p.caps.can_heat)
        if coolers:
            out["cold"] = coolers[0]
    return out


async def _let_go(device: ThermalOutput | Percussion | TemperatureProbe) -> None:
    try:
        await asyncio.wait_for(device.disconnect(), DISCONNECT_TIMEOUT_S)
    except (DeviceError, TimeoutError) as exc:
        _LOGGER.warning("could not disconnect %s cleanly: %s", device.info.name, exc)


# --- the session ---------------------------------------------------------------------------------


def _ledger_devices(devices: SessionDevices) -> dict[str, LedgerDevice]:
    out = {}
    for role in ROLES:
        device = getattr(devices, role)
        if device is not None:
            info = device.info
            out[role] = LedgerDevice(info.address, info.name, info.driver)
    return out


async def _off_loop(clock: Clock, call: Callable[[], _T]) -> _T:
    """``call()`` (ledger I/O) on a worker thread, so the event loop keeps its timing."""
    future = asyncio.ensure_future(asyncio.to_thread(call))
    clock.hold(future)
    return await future


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextlib.contextmanager
def _signals(stop: Callable[[str], None]) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed = []
    for sig, text in ((signal.SIGINT, "stopped by you (Ctrl-C)"), (signal.SIGTERM, "terminated")):
        try:
            loop.add_signal_handler(sig, stop, text)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def run_session(
    profile: Profile,
    library: ProfileLibrary,
    args: argparse.Namespace,
    opts: _Options,
    ledger: Ledger,
    *,
    emit: Callable[[Event], None],
    lift: tuple[str, ...] = (),
    world: Sequence[str] | None = None,
) -> Finished:
    """Bind, connect, check, confirm, run; every device OFF and let go at the end."""
    extended = bool(getattr(args, "extend", False))
    clock = _clock_for(opts)  # a bad --speed is refused before anything is asked or touched
    draft = compile_plan(profile, resolve=library.get, extended=extended)
    # a refusal before any question is asked ...
    decision = ledger.check_allowances(draft, lift=lift)
    for warning in decision.warnings:
        print(f"relieve: warning: {warning}", file=sys.stderr)
    for text in _precautions(draft):
        _confirm(text, opts)
    if extended:
        _confirm(EXTENSION_TEXT, opts)
    # ... and the decision that counts: checked again and recorded in one step, after the
    # questions (no lock is held while a person answers), before any device is touched
    recorder, _ = await _off_loop(clock, functools.partial(ledger.reserve, draft, lift=lift))
    began = False
    # an attended session at a terminal takes line commands (pause, resume, stop) and answers
    keys = SessionKeys() if opts.interactive and not opts.yes else None
    try:
        async with radio_for(args, clock=clock, devices=world) as radio:
            devices = SessionDevices()
            try:
                await _bind(args, _roles_needed(draft), radio, clock, devices)
                plan = compile_plan(
                    profile, devices.capabilities(), resolve=library.get, extended=extended
                )
                await _off_loop(
                    clock, functools.partial(recorder.set_devices, _ledger_devices(devices))
                )
                runner = SessionRunner(
                    plan,
                    devices,
                    clock,
                    emit=emit,
                    recorder=recorder,
                    ask_resume=keys.ask if keys is not None else None,
                    simulated=radio.simulated,
                )
                began = True
                with _signals(runner.stop), keys.attached(runner) if keys else _nothing():
                    return await runner.run()
            finally:
                for device in devices.all_devices():
                    await _let_go(device)
    finally:
        if not began:  # no device was switched on: the reservation counts for nothing
            recorder.withdraw(datetime.now(UTC))


def _options(args: argparse.Namespace, *, simulated: bool) -> _Options:
    json_out = bool(getattr(args, "json", False))
    return _Options(
        simulated=simulated,
        speed=getattr(args, "speed", None),
        yes=bool(getattr(args, "yes", False)),
        json=json_out,
        interactive=sys.stdin.isatty() and not json_out,
    )


def _exit_code(finished: Finished) -> int:
    if finished.outcome == "aborted" or not finished.recorded:
        return EXIT_ABORTED
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """``relieve run PROFILE ...``"""
    simulated = bool(args.simulate or args.simulator)
    opts = _options(args, simulated=simulated)
    library = ProfileLibrary(args.config_dir)
    profile = library.resolve(args.profile)
    lift = _lift(args.override_allowance)
    emit: Callable[[Event], None] = JsonLines() if opts.json else LiveView()
    with Ledger.open(args.data_dir, simulated=simulated) as ledger:
        finished = asyncio.run(
            run_session(profile, library, args, opts, ledger, emit=emit, lift=lift)
        )
    return _exit_code(finished)


def _lift(values: list[str] | None) -> tuple[str, ...]:
    if values is None:
        return ()
    from controller.ledger.allowances import ALLOWANCE_RULES

    if values == []:
        return tuple(sorted(ALLOWANCE_RULES))
    return tuple(v.upper() for value in values for v in value.split(",") if v)


def demo(args: argparse.Namespace) -> int:
    """``relieve demo``: the lower-back routine on an in-process simulated world, at x60."""
    args.simulate, args.simulator = True, None
    args.yes = True
    args.speed = DEMO_SPEED if args.speed is None else args.speed
    for role in ROLES:
        setattr(args, role, None)
    args.extend = False
    opts = _options(args, simulated=True)
    _clock_for(opts)  # a bad --speed is refused before anything is printed
    library = ProfileLibrary(args.config_dir)
    profile = library.get(DEMO_PROFILE)
    emit: Callable[[Event], None] = JsonLines() if opts.json else LiveView()
    if not opts.json:
        print(
            f"relieve demo: '{profile.title}' on simulated devices at x{opts.speed:g}, "
            "with a throw-away ledger. The precautions are taken as confirmed, as --yes does.\n",
            flush=True,
        )
    with Ledger.open_temporary(simulated=True) as ledger:
        finished = asyncio.run(
            run_session(profile, library, args, opts, ledger, emit=emit, world=DEMO_DEVICES)
        )
    return _exit_code(finished)
