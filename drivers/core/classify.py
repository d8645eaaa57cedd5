"""What an advertisement says a device is: kind, driver and safety class. Pure, no bleak.

The rules are the entries of :data:`drivers.registry.DRIVERS`, in their order; first match wins.
An entry matches when the advertisement has one of its service UUIDs, or a name its name rule
knows. Today that is:

1. the open-profile thermal service UUID -> ``thermal`` / ``open-thermal`` (lease);
2. the open-profile percussion service UUID -> ``percussion`` / ``open-percussion`` (lease);
3. a Theragun Gen-4 name ("Pro", "Elite", "Prime", "liv2") -> ``percussion`` / ``theragun``
   (host-timed); the Wave rollers' names ("fr01", "WaveSolo", "WaveDuo") are recognised but
   cannot be driven (their level byte is not published);
4. the heating-mat service 0xFF01 -> ``thermal`` / ``heating-mat`` (host-timed);
5. Health Thermometer 0x1809 or Environmental Sensing 0x181A -> ``probe`` / ``sig-thermometer``.

Anything else is not classified. A device that advertises too little (many heating mats are
found by address only) can be given its driver by hand: :func:`classification_for_driver`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

from drivers import registry
from drivers.core.base import SafetyClass
from drivers.registry import DriverEntry, Kind

__all__ = [
    "DRIVERS",
    "Classification",
    "Kind",
    "classification_for_driver",
    "classify",
]


@dataclass(frozen=True)
class Classification:
    """What a device is and which driver (if any) can drive it."""

    kind: Kind
    driver: str | None  # None: recognised, but relieve cannot drive it
    safety_class: SafetyClass | None  # None for a probe (no output) and for undrivable devices
    reason: str  # why, for `relieve scan -v` and the docs
    model: str | None = None

    @property
    def supported(self) -> bool:
        """Whether relieve has a driver for it."""
        return self.driver is not None


def _classification(entry: DriverEntry) -> Classification:
    # a probe's safety class is "none": scans show it as no safety class at all
    safety = None if entry.safety_class is SafetyClass.NONE else entry.safety_class
    return Classification(entry.kind, entry.name, safety, entry.recognised_by)


DRIVERS: Final[dict[str, Classification]] = {
    entry.name: _classification(entry) for entry in registry.DRIVERS
}
"""Every driver relieve has, as the classification a device given that driver gets (as the
registry was when this module was imported; the functions below read it when they run)."""


def classify(name: str | None, service_uuids: Iterable[str]) -> Classification | None:
    """Classify an advertisement by its local name and service UUIDs (full, any case)."""
    services = {uuid.lower() for uuid in service_uuids}
    for entry in registry.DRIVERS:
        if services & entry.service_uuids:
            return _classification(entry)
        match = None if entry.match_name is None else entry.match_name(name)
        if match is None:
            continue
        if match.undrivable is not None:
            return Classification(entry.kind, None, None, match.undrivable, model=match.model)
        return replace(_classification(entry), model=match.model)
    return None


def classification_for_driver(driver: str) -> Classification:
    """The classification of a device whose driver is chosen by hand."""
    return _classification(registry.driver(driver))
