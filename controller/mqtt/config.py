"""``config.toml``: the node's settings file, and its ``[mqtt]`` table (pure but for reading).

The file lives in the configuration directory (``--config-dir``, ``$RELIEVE_CONFIG_DIR``, else
the user's); ``--config FILE`` names another. Without the file, or without an ``[mqtt]``
table, the daemon runs without MQTT. A password is never written in the file nor given on the
command line: ``password_file`` names a file that holds it.

Every problem is one sentence; :class:`ConfigError` carries all of them.
"""

from __future__ import annotations

import os
import socket
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controller.mqtt.topics import is_node_slug, node_slug
from profiles.errors import RelieveError, printable

__all__ = [
    "CONFIG_FILE",
    "MAX_CONFIG_BYTES",
    "ConfigError",
    "MqttConfig",
    "NodeConfig",
    "load_config",
    "read_password",
]

CONFIG_FILE = "config.toml"
MAX_CONFIG_BYTES = 64 * 1024
MAX_PASSWORD_BYTES = 1024


class ConfigError(RelieveError):
    """The settings file cannot be used; ``problems`` has one sentence each."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + " ".join(problems))


def _default_node() -> str:
    try:
        return node_slug(socket.gethostname())
    except RelieveError:
        return "relieve"


class MqttConfig(BaseModel):
    """The ``[mqtt]`` table."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    host: Annotated[str, Field(min_length=1, max_length=255)] = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    password_file: Annotated[str, Field(max_length=4096)] = ""
    tls: bool = False
    ca_file: Annotated[str, Field(max_length=4096)] = ""
    node: Annotated[str, Field(min_length=1, max_length=64)] = Field(default_factory=_default_node)
    discovery_prefix: Annotated[
        str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    ] = "homeassistant"
    remote_start: bool = False
    start_profiles: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]],
        Field(max_length=32),
    ] = []

    @field_validator("node")
    @classmethod
    def _node_is_a_slug(cls, value: str) -> str:
        if not is_node_slug(value):
            raise ValueError(
                "use lower-case letters, digits, '-' and '_' (e.g. bedroom); it names topics"
            )
        return value


@dataclass(frozen=True)
class NodeConfig:
    """The whole file: today only ``mqtt`` (None: no ``[mqtt]`` table, no MQTT)."""

    path: Path
    mqtt: MqttConfig | None
    exists: bool = True


def load_config(config_dir: Path | None, file: Path | None = None) -> NodeConfig:
    """The settings of ``config_dir`` (or ``file``); a missing default file is no MQTT, a
    missing ``--config FILE`` is an error."""
    from controller.library import default_config_dir

    path = file if file is not None else (config_dir or default_config_dir()) / CONFIG_FILE
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        if file is not None:
            raise ConfigError(path, ["The file does not exist; check the path."]) from None
        return NodeConfig(path, None, exists=False)
    except OSError as exc:
        raise ConfigError(path, [f"It cannot be read ({exc.strerror})."]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(path, [f"It is larger than {MAX_CONFIG_BYTES // 1024} KiB; is it ours?"])
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, ["It is not UTF-8 text."]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"It is not valid TOML ({exc})."]) from None
    return NodeConfig(path, _mqtt(path, document))


def _mqtt(path: Path, document: Mapping[str, Any]) -> MqttConfig | None:
    problems = [
        f"Unknown table or key '{printable(key, 60)}'; the file has [mqtt] only."
        for key in document
        if key != "mqtt"
    ]
    table = document.get("mqtt")
    if table is None:
        if problems:
            raise ConfigError(path, problems)
        return None
    if not isinstance(table, dict):
        raise ConfigError(path, [*problems, "'mqtt' must be a table: [mqtt]."])
    try:
        config = MqttConfig.model_validate(table)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            where = printable(".".join(str(part) for part in error["loc"]), 60) or "mqtt"
            message = " ".join(str(error["msg"]).split())
            message = message.removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                known = ", ".join(MqttConfig.model_fields)
                message = f"Unknown key; the keys are {known}"
            problems.append(f"mqtt.{where}: {message[:1].lower()}{message[1:]}.")
        raise ConfigError(path, problems) from None
    if config.password_file and config.username is None:
        problems.append("mqtt.password_file is set but mqtt.username is not; give both.")
    if config.ca_file and not config.tls:
        problems.append("mqtt.ca_file is set but mqtt.tls is false; set tls = true to use it.")
    if config.start_profiles and not config.remote_start:
        problems.append(
            "mqtt.start_profiles is set but remote_start is false, so no remote start is "
            "allowed; set remote_start = true or remove start_profiles."
        )
    if config.remote_start and not config.start_profiles:
        problems.append(
            "mqtt.remote_start is true but start_profiles is empty, so nothing could start; "
            "name the profiles a remote start may run."
        )
    if problems:
        raise ConfigError(path, problems)
    return config


def read_password(config: MqttConfig) -> str | None:
    """The password from ``password_file`` (its first line), or None when there is none.
    Refused when the file is readable by others than its owner."""
    if not config.password_file:
        return None
    path = Path(config.password_file)
    try:
        info = path.stat()
        with path.open("rb") as handle:
            raw = handle.read(MAX_PASSWORD_BYTES + 1)
    except OSError as exc:
        raise RelieveError(
            f"The MQTT password file {path} cannot be read ({exc.strerror}); check "
            "mqtt.password_file."
        ) from None
    if stat.S_IMODE(info.st_mode) & (stat.S_IRWXG | stat.S_IRWXO) and os.name == "posix":
        raise RelieveError(
            f"The MQTT password file {path} can be read by others; make it private "
            f"(chmod 600 {path})."
        )
    if len(raw) > MAX_PASSWORD_BYTES:
        raise RelieveError(f"The MQTT password file {path} is too large for a password.")
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise RelieveError(f"The MQTT password file {path} is not UTF-8 text.") from None
    password = lines[0] if lines else ""
    if not password:
        raise RelieveError(f"The MQTT password file {path} is empty; put the password in it.")
    return password
