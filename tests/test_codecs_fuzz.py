"""Every decoder, fed arbitrary or mangled bytes, raises only DecodeError (or succeeds).

Never IndexError, struct.error, UnicodeDecodeError, ValueError from an enum, ... A test below
also checks that this list really holds every decoder the codec package defines.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import pkgutil
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import drivers.codecs
from benchmarks.fuzz import mangled
from drivers.codecs import heating_mat as mat
from drivers.codecs import ieee11073, sig_common, sig_thermometer
from drivers.codecs import open_profile as op
from drivers.codecs import theragun as tg
from drivers.codecs.errors import DecodeError
from drivers.codecs.wire import BytesLike

Decoder = Callable[[BytesLike], object]

DECODERS: dict[str, Decoder] = {
    # open profile
    "open_common.OutputOff": op.OutputOff.from_bytes,
    "open_common.LeaseRenew": op.LeaseRenew.from_bytes,
    "open_common.ClearFlags": op.ClearFlags.from_bytes,
    "open_thermal.ThermalStart": op.ThermalStart.from_bytes,
    "open_thermal.ThermalState": op.ThermalState.from_bytes,
    "open_thermal.PlateTemperature": op.PlateTemperature.from_bytes,
    "open_thermal.ThermalCapabilities": op.ThermalCapabilities.from_bytes,
    "open_thermal.decode_thermal_command": op.decode_thermal_command,
    "open_percussion.PercussionStart": op.PercussionStart.from_bytes,
    "open_percussion.PercussionState": op.PercussionState.from_bytes,
    "open_percussion.PercussionMeasurement": op.PercussionMeasurement.from_bytes,
    "open_percussion.PercussionCapabilities": op.PercussionCapabilities.from_bytes,
    "open_percussion.decode_percussion_command": op.decode_percussion_command,
    # SIG
    "ieee11073.MedFloat32": ieee11073.MedFloat32.from_bytes,
    "sig_common.BatteryLevel": sig_common.BatteryLevel.from_bytes,
    "sig_common.EnvironmentalTemperature": sig_common.EnvironmentalTemperature.from_bytes,
    "sig_common.DeviceInfoString": sig_common.DeviceInfoString.from_bytes,
    "sig_thermometer.DateTime": sig_thermometer.DateTime.from_bytes,
    "sig_thermometer.TemperatureMeasurement": sig_thermometer.TemperatureMeasurement.from_bytes,
    "sig_thermometer.TemperatureTypeValue": sig_thermometer.TemperatureTypeValue.from_bytes,
    "sig_thermometer.MeasurementInterval": sig_thermometer.MeasurementInterval.from_bytes,
    # Theragun
    "theragun.SetSpeed": tg.SetSpeed.from_bytes,
    "theragun.StatusRequest": tg.StatusRequest.from_bytes,
    "theragun.VersionRequest": tg.VersionRequest.from_bytes,
    "theragun.StatusNotification": tg.StatusNotification.from_bytes,
    "theragun.VersionNotification": tg.VersionNotification.from_bytes,
    "theragun.UnknownNotification": tg.UnknownNotification.from_bytes,
    "theragun.decode_command": tg.decode_command,
    "theragun.decode_notification": tg.decode_notification,
    # heating mat
    "heating_mat.ValuePacket": mat.ValuePacket.from_bytes,
    "heating_mat.LevelCommand": mat.LevelCommand.from_bytes,
    "heating_mat.StatusRequest": mat.StatusRequest.from_bytes,
    "heating_mat.TimerCommand": mat.TimerCommand.from_bytes,
    "heating_mat.MatReport": mat.MatReport.from_bytes,
    "heating_mat.InitPacket": mat.InitPacket.from_bytes,
    "heating_mat.decode_level_write": mat.decode_level_write,
}

# Valid frames to mangle, so the fuzzing also reaches past the first length/header checks.
SEEDS: list[bytes] = [
    bytes(op.ThermalStart.heat(42.0)),
    bytes(op.ThermalState(op.ThermalMode.HEAT, 4200, 3000)),
    bytes(op.ThermalCapabilities.from_celsius((30.0, 45.0), (5.0, 20.0))),
    bytes(op.PercussionStart(2000, 120)),
    bytes(op.PercussionState(True, 2000, 3000, 5, 120)),
    bytes(op.PercussionCapabilities(1750, 2400, 900)),
    bytes(op.LeaseRenew()),
    bytes.fromhex("06 6E 01 00 FF E8 07 05 01 0C 1E 00 04"),
    bytes(tg.SetSpeed(2400)),
    bytes(tg.StatusNotification(True, 2400)),
    bytes(tg.VersionNotification(321)),
    bytes(mat.LevelCommand(3)),
    bytes(mat.MatReport.of(5)),
]


INPUTS = st.binary(max_size=40) | mangled(st.sampled_from(SEEDS))


def _defined_decoders() -> set[str]:
    """Every ``from_bytes`` and ``decode_*`` defined in the drivers.codecs modules."""
    found: set[str] = set()
    for info in pkgutil.iter_modules(drivers.codecs.__path__):
        module = importlib.import_module(f"drivers.codecs.{info.name}")
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            is_frame = inspect.isclass(obj) and "from_bytes" in vars(obj)
            is_decoder = inspect.isfunction(obj) and name.startswith("decode_")
            if is_frame or is_decoder:
                found.add(f"{info.name}.{name}")
    return found


def test_the_fuzz_list_covers_every_decoder_in_the_package() -> None:
    assert _defined_decoders() == set(DECODERS)


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=INPUTS)
def test_decoders_raise_only_decode_error(name: str, data: bytes) -> None:
    decoder = DECODERS[name]
    with contextlib.suppress(DecodeError):
        decoder(data)
    with contextlib.suppress(DecodeError):
        decoder(bytearray(data))  # bleak hands notifications over as bytearray
