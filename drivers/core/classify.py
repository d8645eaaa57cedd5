"""What an advertisement says a device is: kind, driver and safety class. Pure, no bleak.

Rules, first match wins:

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
from dataclasses import dataclass
from typing import Final, Literal

from drivers.codecs import heating_mat as hm
from drivers.codecs import open_profile as op
from drivers.codecs import sig_common as sig
from drivers.codecs import theragun as tg
from drivers.core.base import DeviceError, SafetyClass

__all__ = [
    "DRIVERS",
    "Classification",
    "Kind",
    "classification_for_driver",
    "classify",
]

Kind = Literal["thermal", "percussion", "probe"]


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


DRIVERS: Final[dict[str, Classification]] = {
    "open-thermal": Classification(
        "thermal", "open-thermal", SafetyClass.LEASE, "relieve open profile, thermal service"
    ),
    "open-percussion": Classification(
        "percussion",
        "open-percussion",
        SafetyClass.LEASE,
        "relieve open profile, percussion service",
    ),
    "theragun": Classification(
        "percussion", "theragun", SafetyClass.HOST_TIMED, "Theragun Gen-4 name"
    ),
    "heating-mat": Classification(
        "thermal", "heating-mat", SafetyClass.HOST_TIMED, "heating-mat service 0xFF01"
    ),
    "sig-thermometer": Classification(
        "probe", "sig-thermometer", None, "SIG Health Thermometer / Environmental Sensing"
    ),
}
"""Every driver relieve has, as the classification a device given that driver gets."""

_PROBE_SERVICES: Final = frozenset(
    {sig.HEALTH_THERMOMETER_SERVICE_UUID, sig.ENVIRONMENTAL_SENSING_SERVICE_UUID}
)


def classify(name: str | None, service_uuids: Iterable[str]) -> Classification | None:
    """Classify an advertisement by its local name and service UUIDs (full, any case)."""
    services = {uuid.lower() for uuid in service_uuids}
    if op.THERMAL_SERVICE_UUID in services:
        return DRIVERS["open-thermal"]
    if op.PERCUSSION_SERVICE_UUID in services:
        return DRIVERS["open-percussion"]
    model = tg.model_for_name(name)
    if model is not None:
        if tg.MODELS[model].max_rpm is None:
            return Classification(
                "percussion",
                None,
                None,
                f"Theragun {model.value}: its commands are not published",
                model=f"Theragun {model.value}",
            )
        return Classification(
            "percussion",
            "theragun",
            SafetyClass.HOST_TIMED,
            DRIVERS["theragun"].reason,
            model=f"Theragun {model.value}",
        )
    if hm.SERVICE_UUID in services:
        return DRIVERS["heating-mat"]
    if services & _PROBE_SERVICES:
        return DRIVERS["sig-thermometer"]
    return None


def classification_for_driver(driver: str) -> Classification:
    """The classification of a device whose driver is chosen by hand."""
    try:
        return DRIVERS[driver]
    except KeyError:
        raise DeviceError(
            f"There is no driver called {driver!r}; use one of: {', '.join(DRIVERS)}."
        ) from None
