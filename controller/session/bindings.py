"""Which device plays which role in a session, and what those devices can do together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from drivers.core.base import (
    DeviceInfo,
    Percussion,
    SafetyClass,
    TemperatureProbe,
    ThermalOutput,
    is_percussion,
    is_probe,
    is_thermal,
)
from profiles.plan import Capabilities

__all__ = ["WORST_CASE_HOST_TIMED_S", "SessionDevices"]

# S3: after a crash, a host-timed device with no timer of its own is assumed to run this long
# (the longest any single step may last: H2/C1's 20 minutes).
WORST_CASE_HOST_TIMED_S = 1200.0
# S3 for a lease device whose capabilities do not say its lease: the profile's maximum.
WORST_CASE_LEASE_S = 5.0


@dataclass
class SessionDevices:
    """Role bindings. ``None`` with the role in ``manual`` means a passive pack or your own gun."""

    heat: ThermalOutput | None = None
    cold: ThermalOutput | None = None
    gun: Percussion | None = None
    probe: TemperatureProbe | None = None
    manual: frozenset[str] = field(default_factory=frozenset)

    def assign(self, role: str, device: object) -> bool:
        """Bind ``device`` to ``role`` when it can take it; False (nothing bound) when not."""
        if role in ("heat", "cold") and is_thermal(device):
            setattr(self, role, device)
        elif role == "gun" and is_percussion(device):
            self.gun = device
        elif role == "probe" and is_probe(device):
            self.probe = device
        else:
            return False
        return True

    def outputs(self) -> list[ThermalOutput | Percussion]:
        """Every distinct output device (a contrast pad bound to heat and cold counts once)."""
        out: list[ThermalOutput | Percussion] = []
        for device in (self.heat, self.cold, self.gun):
            if device is not None and all(device is not d for d in out):
                out.append(device)
        return out

    def all_devices(self) -> list[ThermalOutput | Percussion | TemperatureProbe]:
        out: list[ThermalOutput | Percussion | TemperatureProbe] = list(self.outputs())
        if self.probe is not None:
            out.append(self.probe)
        return out

    def for_role(self, role: str) -> ThermalOutput | Percussion | None:
        device: ThermalOutput | Percussion | None = {
            "heat": self.heat,
            "cold": self.cold,
            "gun": self.gun,
        }.get(role)
        return device

    def describe(self) -> dict[str, str]:
        """role -> "name (address)" for events and the ledger."""
        out: dict[str, str] = {}
        for role in ("heat", "cold", "gun", "probe"):
            device = getattr(self, role)
            if device is not None:
                info: DeviceInfo = device.info
                out[role] = f"{info.name} ({info.address})"
            elif role in self.manual:
                out[role] = "manual"
        return out

    def capabilities(self) -> Capabilities:
        """What the bound devices can do, for the plan compiler."""
        heat: Literal["setpoint", "levels", "manual", "none"] = "none"
        levels: tuple[float, ...] = ()
        if self.heat is not None:
            levels = self.heat.caps.levels
            heat = "levels" if levels else "setpoint"
        elif "heat" in self.manual:
            heat = "manual"
        cold: Literal["setpoint", "manual", "none"] = "none"
        if self.cold is not None:
            cold = "setpoint"
        elif "cold" in self.manual:
            cold = "manual"
        gun: Literal["rpm", "manual", "none"] = "none"
        if self.gun is not None:
            gun = "rpm"
        elif "gun" in self.manual:
            gun = "manual"
        return Capabilities(
            heat=heat,
            cold=cold,
            combined=self.heat is not None and self.heat is self.cold,
            heat_levels=levels,
            gun=gun,
            probe=self.probe is not None,
        )

    @staticmethod
    def worst_case_s(device: ThermalOutput | Percussion) -> float:
        """S3: how long the device could keep its output on by itself after we go quiet."""
        if device.info.safety_class is SafetyClass.LEASE:
            return device.caps.max_lease_s or WORST_CASE_LEASE_S
        return device.caps.timer_s or WORST_CASE_HOST_TIMED_S
