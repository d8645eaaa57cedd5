"""The table of simulated device types: keys, advertised names, addresses, kinds, faults.

Pure data, importable without bumble (``relieve sim list`` prints it). Addresses are static
random addresses (the two top bits of the first byte set), stable across runs and documented
in docs/simulators.md, so a user can bind a profile to ``C0:DE:00:00:00:01`` once and keep it.
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass

from drivers import registry
from drivers.core.base import SafetyClass

__all__ = [
    "CATALOG",
    "COMMON_FAULTS",
    "DeviceFamily",
    "DeviceSpec",
    "FaultKind",
    "SimulatorError",
    "UnknownDeviceError",
    "device_keys",
    "spec_by_address",
    "spec_for",
]


class SimulatorError(Exception):
    """Base of every error the simulators raise on purpose."""


class UnknownDeviceError(SimulatorError, KeyError):
    """A device key or address that is not in the catalog (or not in this world)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else "unknown simulated device"


class FaultKind(enum.StrEnum):
    """Every fault a simulator can be told to have (docs/simulators.md explains each)."""

    DISCONNECT = "disconnect"
    REFUSE_CONNECTIONS = "refuse_connections"
    DROP_NOTIFICATIONS = "drop_notifications"
    DELAY_NOTIFICATIONS = "delay_notifications"
    ATT_ERROR = "att_error"
    STUCK_HEATER = "stuck_heater"
    SENSOR_NAN = "sensor_nan"
    SENSOR_DRIFT = "sensor_drift"
    BATTERY_DIES = "battery_dies"
    LINK_LATENCY = "link_latency"
    UNLATCHED_LEASE = "unlatched_lease"


class DeviceFamily(enum.StrEnum):
    """Which protocol (and simulator class) a device speaks."""

    OPEN_THERMAL = "open-thermal"
    OPEN_PERCUSSION = "open-percussion"
    THERAGUN = "theragun"
    HEATING_MAT = "heating-mat"
    SKIN_PROBE = "skin-probe"


# Faults every device supports: they live in the radio and the battery, not in the output.
COMMON_FAULTS: frozenset[FaultKind] = frozenset(
    {
        FaultKind.DISCONNECT,
        FaultKind.REFUSE_CONNECTIONS,
        FaultKind.DROP_NOTIFICATIONS,
        FaultKind.DELAY_NOTIFICATIONS,
        FaultKind.ATT_ERROR,
        FaultKind.BATTERY_DIES,
        FaultKind.LINK_LATENCY,
    }
)
_SENSOR_FAULTS = COMMON_FAULTS | {FaultKind.SENSOR_NAN, FaultKind.SENSOR_DRIFT}
# The faults of each family: a thermal output can stick on, a device with a sensor can lose it,
# a device with a lease can forget to latch its expiry.
_FAMILY_FAULTS: dict[DeviceFamily, frozenset[FaultKind]] = {
    DeviceFamily.OPEN_THERMAL: _SENSOR_FAULTS | {FaultKind.STUCK_HEATER, FaultKind.UNLATCHED_LEASE},
    DeviceFamily.OPEN_PERCUSSION: COMMON_FAULTS | {FaultKind.UNLATCHED_LEASE},
    DeviceFamily.THERAGUN: COMMON_FAULTS,
    DeviceFamily.HEATING_MAT: COMMON_FAULTS | {FaultKind.STUCK_HEATER},
    DeviceFamily.SKIN_PROBE: _SENSOR_FAULTS,
}
# The driver (drivers.registry) that drives each family. Its safety class says whether the
# device bounds every ON with a lease (the open-profile families) or is host-timed.
_FAMILY_DRIVERS: dict[DeviceFamily, str] = {
    DeviceFamily.OPEN_THERMAL: "open-thermal",
    DeviceFamily.OPEN_PERCUSSION: "open-percussion",
    DeviceFamily.THERAGUN: "theragun",
    DeviceFamily.HEATING_MAT: "heating-mat",
    DeviceFamily.SKIN_PROBE: "sig-thermometer",
}
# Setpoint ranges of the open-profile pads, degC: heating up to 45, Peltier cooling down to 5.
_PAD_HEAT_C = (30.0, 45.0)
_PAD_COLD_C = (5.0, 25.0)
# The manufacturer string of every simulated device whose protocol is not a vendor's.
_OUR_MANUFACTURER = "relieve simulators"

# The advertised name of the generic BLE heating mat. The vendor firmware advertises the
# name documented in drivers/codecs/heating_mat.py; the catalog reads it from there when
# that module is importable (it is pure) and falls back to this spelling otherwise.
_HEATING_MAT_FALLBACK_NAME = "Heating Mat"


def _heating_mat_name() -> str:
    try:
        heating_mat = importlib.import_module("drivers.codecs.heating_mat")
    except ImportError:
        return _HEATING_MAT_FALLBACK_NAME
    names = getattr(heating_mat, "ADVERTISED_NAMES", None)
    if isinstance(names, tuple | list) and names and isinstance(names[0], str):
        return names[0]
    name = getattr(heating_mat, "ADVERTISED_NAME", None)
    return name if isinstance(name, str) else _HEATING_MAT_FALLBACK_NAME


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One simulated device type."""

    key: str
    name: str
    address: str
    family: DeviceFamily
    summary: str
    faults: frozenset[FaultKind]
    # Hardware setpoint ranges of a thermal plate, degC (what its capabilities report);
    # None = the device cannot heat (or cool).
    heat_range_c: tuple[float, float] | None = None
    cold_range_c: tuple[float, float] | None = None
    # Whether every ON is bounded by a device-side lease (open profile) or host-timed.
    has_lease: bool = False
    manufacturer: str = _OUR_MANUFACTURER
    model: str = ""
    serial: str = ""
    firmware: str = "1.0.0"
    hardware: str = "sim-1"

    @property
    def can_heat(self) -> bool:
        """Whether the device can heat."""
        return self.heat_range_c is not None

    @property
    def can_cool(self) -> bool:
        """Whether the device can cool."""
        return self.cold_range_c is not None

    @property
    def driver(self) -> str:
        """The name of the driver (drivers.registry) that drives this device."""
        return _FAMILY_DRIVERS[self.family]

    def supports(self, kind: FaultKind) -> bool:
        """Whether this device can be given a fault of ``kind``."""
        return kind in self.faults


def _entry(
    number: int,
    *,
    key: str,
    name: str,
    family: DeviceFamily,
    summary: str,
    model: str,
    heat_range_c: tuple[float, float] | None = None,
    cold_range_c: tuple[float, float] | None = None,
    manufacturer: str = _OUR_MANUFACTURER,
) -> DeviceSpec:
    """Catalog entry ``number``: address ``C0:DE:00:00:00:<nn>``, serial ``SIM-<nnnn>``.

    Faults and lease follow from the family.
    """
    return DeviceSpec(
        key=key,
        name=name,
        address=f"C0:DE:00:00:00:{number:02X}",
        family=family,
        summary=summary,
        faults=_FAMILY_FAULTS[family],
        heat_range_c=heat_range_c,
        cold_range_c=cold_range_c,
        has_lease=registry.driver(_FAMILY_DRIVERS[family]).safety_class is SafetyClass.LEASE,
        manufacturer=manufacturer,
        model=model,
        serial=f"SIM-{number:04d}",
    )


CATALOG: tuple[DeviceSpec, ...] = (
    _entry(
        1,
        key="contrast-pad",
        name="relieve Contrast Pad",
        family=DeviceFamily.OPEN_THERMAL,
        summary="open-profile thermal pad, heat and cold (Peltier)",
        model="RLV-CP1",
        heat_range_c=_PAD_HEAT_C,
        cold_range_c=_PAD_COLD_C,
    ),
    _entry(
        2,
        key="heat-pad",
        name="relieve Heat Pad",
        family=DeviceFamily.OPEN_THERMAL,
        summary="open-profile thermal pad, heat only",
        model="RLV-HP1",
        heat_range_c=_PAD_HEAT_C,
    ),
    _entry(
        3,
        key="cold-pad",
        name="relieve Cold Pad",
        family=DeviceFamily.OPEN_THERMAL,
        summary="open-profile thermal pad, cold only (Peltier)",
        model="RLV-CD1",
        cold_range_c=_PAD_COLD_C,
    ),
    _entry(
        4,
        key="massage-gun",
        name="relieve Massage Gun",
        family=DeviceFamily.OPEN_PERCUSSION,
        summary="open-profile percussion massager",
        model="RLV-MG1",
    ),
    _entry(
        5,
        key="theragun",
        name="Pro",
        family=DeviceFamily.THERAGUN,
        summary="Theragun Gen-4 PRO protocol (host-timed: no lease)",
        model="PRO Gen 4",
        manufacturer="Therabody (simulated)",
    ),
    _entry(
        6,
        key="heating-mat",
        name=_heating_mat_name(),
        family=DeviceFamily.HEATING_MAT,
        summary="BLE heating mat: levels 0-7 (36-42 degC), timer in hours, auth write first",
        model="heating mat",
        heat_range_c=(36.0, 42.0),
        manufacturer="generic (simulated)",
    ),
    _entry(
        7,
        key="skin-probe",
        name="relieve Skin Probe",
        family=DeviceFamily.SKIN_PROBE,
        summary="SIG Health Thermometer reading the skin side of the pad it lies under",
        model="RLV-SP1",
    ),
)

_BY_KEY = {spec.key: spec for spec in CATALOG}
_BY_ADDRESS = {spec.address.upper(): spec for spec in CATALOG}


def device_keys() -> tuple[str, ...]:
    """Every device key, in catalog order."""
    return tuple(spec.key for spec in CATALOG)


def spec_for(key: str) -> DeviceSpec:
    """The catalog entry for ``key``; UnknownDeviceError names the valid keys."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise UnknownDeviceError(
            f"There is no simulated device {key!r}; use one of: {', '.join(device_keys())}."
        ) from None


def spec_by_address(address: str) -> DeviceSpec:
    """The catalog entry whose address is ``address`` (case-insensitive)."""
    try:
        return _BY_ADDRESS[address.upper()]
    except KeyError:
        raise UnknownDeviceError(
            f"No simulated device has the address {address}; `relieve sim list` shows them."
        ) from None
