"""Finding and connecting the devices a session needs, by address, by kind from a scan, or
``manual`` (a passive pack, your own gun), and letting go of them again.

Everything connected is put into the caller's :class:`SessionDevices` at once, so the caller
lets go of it even when binding fails half way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from controller.session.bindings import SessionDevices
from controller.session.simulation import Radio
from drivers.core.base import (
    DeviceError,
    Percussion,
    TemperatureProbe,
    ThermalOutput,
    is_percussion,
    is_probe,
    is_thermal,
)
from drivers.core.clock import Clock
from drivers.core.discovery import ScanResult, scan
from drivers.core.factory import create_device, open_device
from profiles.errors import RelieveError

__all__ = ["ROLES", "BindingError", "bind_devices", "let_go"]

_LOGGER = logging.getLogger(__name__)

ROLES = ("heat", "cold", "gun", "probe")
SCAN_FOR_ROLES_S = 2.0  # real seconds to listen when picking devices by kind
DISCONNECT_TIMEOUT_S = 3.0  # real seconds per device when letting go at the end

_ROLE_DEVICE = {"heat": "heat pad", "cold": "cold pad", "gun": "massage gun"}


class BindingError(RelieveError):
    """The devices a session needs could not be found or are not what was asked for."""


async def bind_devices(
    bound: SessionDevices,
    *,
    roles: Mapping[str, str],
    needed: set[str],
    radio: Radio,
    clock: Clock,
) -> None:
    """Devices for the roles ``needed``: as ``roles`` gives them (an address or ``manual``),
    else found by kind in a scan; each connected (OFF first) and put into ``bound`` at once."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise BindingError(f"Unknown role {', '.join(unknown)}; the roles are {', '.join(ROLES)}.")
    manual: set[str] = set()
    opened: dict[str, object] = {}  # address -> device: a contrast pad plays heat and cold
    for role in ROLES:
        value = roles.get(role)
        if value is None:
            continue
        if value == "manual":
            if role == "probe":
                raise BindingError("--probe takes a device address; a probe cannot be manual.")
            manual.add(role)
            continue
        device = opened.get(value.upper())
        if device is None:
            device = await open_device(value, backend=radio.backend, clock=clock)
            _check_kind(role, device, value)
            await device.connect()
            opened[value.upper()] = device
        else:
            _check_kind(role, device, value)
        bound.assign(role, device)
    bound.manual = frozenset(manual)
    missing = [r for r in ("heat", "cold", "gun") if r in needed and roles.get(r) is None]
    if missing or (needed & {"heat", "cold"} and roles.get("probe") is None):
        found = await scan(radio.backend, timeout_s=SCAN_FOR_ROLES_S)
        await _bind_by_kind(bound, found, missing=missing, needed=needed, radio=radio, clock=clock)
    for role in ("heat", "cold", "gun"):
        if role in needed and bound.for_role(role) is None and role not in manual:
            raise BindingError(
                f"No {_ROLE_DEVICE[role]} was found for this session; switch one on and bring it "
                f"close, name it with --{role} ADDR, or use --{role} manual"
                + (" for a passive pack." if role != "gun" else " to hold your own gun.")
            )


def _check_kind(role: str, device: object, address: str) -> None:
    ok = {
        "heat": is_thermal(device),
        "cold": is_thermal(device),
        "gun": is_percussion(device),
        "probe": is_probe(device),
    }[role]
    if not ok:
        raise BindingError(f"{address} is not a {_ROLE_DEVICE.get(role, 'probe')}; check --{role}.")


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
    try:
        if {"heat", "cold"} & set(missing):
            for result in (r for r in found if r.kind == "thermal" and r.supported):
                pad = create_device(result, backend=radio.backend, clock=clock)
                if is_thermal(pad):
                    await pad.connect()
                    thermal.append(pad)
        chosen = _choose_thermal(thermal, missing)
        for role, device in chosen.items():
            setattr(bound, role, device)
    finally:
        for unused in thermal:
            if all(unused is not d for d in (bound.heat, bound.cold)):
                await let_go(unused)
    if "gun" in missing:
        guns = [r for r in found if r.kind == "percussion" and r.supported]
        guns.sort(key=lambda r: r.safety_class != "lease")  # a gun with a lease first
        if guns:
            gun = create_device(guns[0], backend=radio.backend, clock=clock)
            await gun.connect()
            bound.assign("gun", gun)
    if needed & {"heat", "cold"} and bound.probe is None:
        probes = [r for r in found if r.kind == "probe" and r.supported]
        if probes:
            probe = create_device(probes[0], backend=radio.backend, clock=clock)
            await probe.connect()
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


async def let_go(device: ThermalOutput | Percussion | TemperatureProbe) -> None:
    """Disconnect ``device`` (its driver turns it OFF first), bounded in time."""
    try:
        await asyncio.wait_for(device.disconnect(), DISCONNECT_TIMEOUT_S)
    except (DeviceError, TimeoutError) as exc:
        _LOGGER.warning("could not disconnect %s cleanly: %s", device.info.name, exc)
