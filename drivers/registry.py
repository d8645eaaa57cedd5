"""Every driver relieve has, in one place: its name, kind, safety class, how an advertisement
shows it, and how its device object is made.

::

    entry = driver("heating-mat")
    mat = entry.create("C0:DE:00:00:00:06", backend=backend, clock=clock)

:data:`DRIVERS` is in recognition order: :func:`drivers.core.classify.classify` gives an
advertisement the first entry it matches (one of the entry's service UUIDs, or its name rule).
The ``relieve device --driver`` choices, the factory and the CLI's kind checks read this table,
and the simulated devices say which entry drives them.

Pure and light: importing it loads :mod:`drivers.core.base` and nothing else, so the CLI can
list the names at start-up. A codec is imported when an advertisement is first classified, a
driver class (and with it bleak) only when a device object is made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, TypeAlias, Unpack

from drivers.core.base import DeviceError, SafetyClass

if TYPE_CHECKING:
    from typing_extensions import TypeIs

    from drivers.core.device import DriverOptions
    from drivers.heating_mat import HeatingMat
    from drivers.open_percussion import OpenPercussionGun
    from drivers.open_thermal import OpenThermalPad
    from drivers.sig_probe import SigThermometer
    from drivers.theragun import Theragun

__all__ = [
    "DRIVERS",
    "AnyDevice",
    "DriverEntry",
    "Kind",
    "LeaseDevice",
    "NameMatch",
    "PercussionDevice",
    "ProbeDevice",
    "ThermalDevice",
    "driver",
    "driver_names",
    "entry_for",
    "has_lease",
    "is_percussion_device",
    "is_probe_device",
    "is_thermal_device",
]

Kind = Literal["thermal", "percussion", "probe"]

# The classes by kind and by safety class, for the type checker (which needs them by name):
# a new driver's class joins the unions of its kind and safety class here.
ThermalDevice: TypeAlias = "OpenThermalPad | HeatingMat"
PercussionDevice: TypeAlias = "OpenPercussionGun | Theragun"
ProbeDevice: TypeAlias = "SigThermometer"
LeaseDevice: TypeAlias = "OpenThermalPad | OpenPercussionGun"
AnyDevice: TypeAlias = "ThermalDevice | PercussionDevice | ProbeDevice"
"""Every device class relieve has (the classes, and bleak, load when a device is made)."""

Build: TypeAlias = "Callable[[str, DriverOptions, bytes | None], AnyDevice]"
"""Make the device object: address, the common driver options, an init packet (or None)."""


@dataclass(frozen=True)
class NameMatch:
    """A device recognised by its advertised name."""

    model: str  # e.g. "Theragun Pro"
    undrivable: str | None = None  # why relieve cannot drive this model; None when it can


@dataclass(frozen=True)
class DriverEntry:
    """One driver: what it drives, how a device shows it, how its object is made."""

    name: str  # what `--driver` takes; the class's DRIVER
    kind: Kind  # the class's KIND
    safety_class: SafetyClass  # the class's SAFETY_CLASS
    recognised_by: str  # what in an advertisement shows it, in a few words (the reason)
    build: Build
    services: Callable[[], Iterable[str]] | None = None  # its service UUIDs; any one matches
    match_name: Callable[[str | None], NameMatch | None] | None = None  # the name rule, if any

    @functools.cached_property
    def service_uuids(self) -> frozenset[str]:
        """The service UUIDs that show this driver (full, lower case); the codec loads now."""
        return frozenset(uuid.lower() for uuid in self.services()) if self.services else frozenset()

    def create(
        self, address: str, *, init_packet: bytes | None = None, **options: Unpack[DriverOptions]
    ) -> AnyDevice:
        """The device object (not connected); ``init_packet`` matters only to a heating mat."""
        return self.build(address, options, init_packet)


# --- how each driver's object is made (the class is imported here, not before) ------------------


def _open_thermal(address: str, options: DriverOptions, _packet: bytes | None) -> AnyDevice:
    from drivers.open_thermal import OpenThermalPad

    return OpenThermalPad(address, **options)


def _open_percussion(address: str, options: DriverOptions, _packet: bytes | None) -> AnyDevice:
    from drivers.open_percussion import OpenPercussionGun

    return OpenPercussionGun(address, **options)


def _theragun(address: str, options: DriverOptions, _packet: bytes | None) -> AnyDevice:
    from drivers.theragun import Theragun

    return Theragun(address, **options)


def _heating_mat(address: str, options: DriverOptions, packet: bytes | None) -> AnyDevice:
    from drivers.codecs import heating_mat as hm
    from drivers.heating_mat import HeatingMat

    init_packet = hm.DEFAULT_INIT_PACKET if packet is None else packet
    return HeatingMat(address, init_packet=init_packet, **options)


def _sig_thermometer(address: str, options: DriverOptions, _packet: bytes | None) -> AnyDevice:
    from drivers.sig_probe import SigThermometer

    return SigThermometer(address, **options)


# --- how an advertisement shows each driver (the codec is imported here, on first use) ----------


def _open_thermal_services() -> Iterable[str]:
    from drivers.codecs import open_profile as op

    return (op.THERMAL_SERVICE_UUID,)


def _open_percussion_services() -> Iterable[str]:
    from drivers.codecs import open_profile as op

    return (op.PERCUSSION_SERVICE_UUID,)


def _heating_mat_services() -> Iterable[str]:
    from drivers.codecs import heating_mat as hm

    return (hm.SERVICE_UUID,)


def _sig_thermometer_services() -> Iterable[str]:
    from drivers.codecs import sig_common as sig

    return (sig.HEALTH_THERMOMETER_SERVICE_UUID, sig.ENVIRONMENTAL_SENSING_SERVICE_UUID)


def _theragun_by_name(name: str | None) -> NameMatch | None:
    """A Gen-4 gun's name; the Wave rollers' names are recognised but cannot be driven."""
    from drivers.codecs import theragun as tg

    model = tg.model_for_name(name)
    if model is None:
        return None
    label = f"Theragun {model.value}"
    if tg.MODELS[model].max_rpm is None:
        return NameMatch(label, undrivable=f"{label}: its commands are not published")
    return NameMatch(label)


DRIVERS: Final[tuple[DriverEntry, ...]] = (
    DriverEntry(
        name="open-thermal",
        kind="thermal",
        safety_class=SafetyClass.LEASE,
        recognised_by="relieve open profile, thermal service",
        build=_open_thermal,
        services=_open_thermal_services,
    ),
    DriverEntry(
        name="open-percussion",
        kind="percussion",
        safety_class=SafetyClass.LEASE,
        recognised_by="relieve open profile, percussion service",
        build=_open_percussion,
        services=_open_percussion_services,
    ),
    # By name only: its service 0xFFE0 is also the serial service of HM-10 modules.
    DriverEntry(
        name="theragun",
        kind="percussion",
        safety_class=SafetyClass.HOST_TIMED,
        recognised_by="Theragun Gen-4 name",
        build=_theragun,
        match_name=_theragun_by_name,
    ),
    DriverEntry(
        name="heating-mat",
        kind="thermal",
        safety_class=SafetyClass.HOST_TIMED,
        recognised_by="heating-mat service 0xFF01",
        build=_heating_mat,
        services=_heating_mat_services,
    ),
    DriverEntry(
        name="sig-thermometer",
        kind="probe",
        safety_class=SafetyClass.NONE,
        recognised_by="SIG Health Thermometer / Environmental Sensing",
        build=_sig_thermometer,
        services=_sig_thermometer_services,
    ),
)
"""Every driver, in recognition order (first match wins). Everything reads it when it runs."""


def driver_names() -> tuple[str, ...]:
    """Every driver's name, in recognition order."""
    return tuple(entry.name for entry in DRIVERS)


def driver(name: str) -> DriverEntry:
    """The entry called ``name``; a DeviceError names the drivers there are."""
    for entry in DRIVERS:
        if entry.name == name:
            return entry
    raise DeviceError(
        f"There is no driver called {name!r}; use one of: {', '.join(driver_names())}."
    )


def entry_for(device: AnyDevice) -> DriverEntry:
    """The entry of the driver that made ``device``."""
    return driver(device.info.driver)


# --- what a device is, by its driver's entry (narrowing the type for the checker) ---------------


def is_thermal_device(device: AnyDevice) -> TypeIs[ThermalDevice]:
    """A heat / cold pad."""
    return entry_for(device).kind == "thermal"


def is_percussion_device(device: AnyDevice) -> TypeIs[PercussionDevice]:
    """A massage gun."""
    return entry_for(device).kind == "percussion"


def is_probe_device(device: AnyDevice) -> TypeIs[ProbeDevice]:
    """A temperature probe."""
    return entry_for(device).kind == "probe"


def has_lease(device: AnyDevice) -> TypeIs[LeaseDevice]:
    """An output whose every ON carries a lease (safety class ``lease``)."""
    return entry_for(device).safety_class is SafetyClass.LEASE
