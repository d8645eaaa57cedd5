"""A real mosquitto broker for the MQTT tests, on a free port of 127.0.0.1 (never 1883).

A test module that wants the fixtures names this module as a plugin::

    pytest_plugins = ["tests.mqtt_broker"]

and takes ``broker`` (anonymous) or ``broker_factory`` (``broker_factory(password=("relieve",
"secret"), tls=True)``). Outside pytest, :func:`running_broker` is the same as a context manager.

Each broker has its own directory: ``mosquitto.conf``, ``mosquitto.log`` (everything it logs,
for debugging a failure: ``broker.log()``), and with ``tls=True`` a CA and a server certificate
for ``localhost`` and ``127.0.0.1`` signed by it (``broker.ca_file``), plus an unrelated CA
(``broker.wrong_ca_file``) that a client must not accept the broker with.

``broker.kill()`` is a broker lost (SIGKILL, no goodbye); ``broker.start()`` brings it back on the
same port, for reconnect tests. :class:`Collector` subscribes to a topic filter and records what
arrives.

PYTEST_DONT_REWRITE: test modules import this module before pytest loads it as their plugin, too
late for assertion rewriting (and pytest would warn); it has no ``assert`` to rewrite.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "MOSQUITTO",
    "Broker",
    "BrokerFactory",
    "Collector",
    "Received",
    "broker",
    "broker_factory",
    "running_broker",
]

MOSQUITTO = Path("/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = Path("/usr/bin/mosquitto_passwd")
HOST = "127.0.0.1"
READY_TIMEOUT_S = 5.0  # mosquitto listens within milliseconds; this is a bound, not a wait
STOP_TIMEOUT_S = 5.0
PORT_ATTEMPTS = 5


class BrokerError(RuntimeError):
    """mosquitto would not start; the message has its log."""


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _write_pem(path: Path, issued: _Issued) -> tuple[Path, Path]:
    """``path``.crt and ``path``.key; the key readable by its owner only."""
    cert_file, key_file = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_file.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        issued.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=2)
    )


def _make_ca(name: str) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return _Issued(_validity(builder).sign(key, hashes.SHA256()), key)


def _make_server_cert(ca: _Issued) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    return _Issued(_validity(builder).sign(ca.key, hashes.SHA256()), key)


# --- the broker --------------------------------------------------------------------------------


def _free_port() -> int:
    """A port nothing listens on now (the kernel's pick; it may be taken before mosquitto binds
    it, hence the retries in :meth:`Broker.start`)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            port: int = probe.getsockname()[1]
        if port != 1883:
            return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class Broker:
    """One mosquitto process in ``directory``; :meth:`start` it (or use :func:`running_broker`)."""

    host = HOST

    def __init__(
        self,
        directory: Path,
        *,
        password: tuple[str, str] | None = None,
        tls: bool = False,
        acl: str | None = None,
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.tls = tls
        self.acl = acl
        self.port = 0  # picked by the first start, kept by the next ones
        self.conf_file = directory / "mosquitto.conf"
        self.log_file = directory / "mosquitto.log"
        self.stderr_file = directory / "mosquitto.stderr"
        self.ca_file: Path | None = None
        self.wrong_ca_file: Path | None = None
        self._server_files: tuple[Path, Path] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_start = (0, 0)
        if tls:
            ca = _make_ca("relieve test CA")
            self.ca_file, _ = _write_pem(directory / "ca", ca)
            self._server_files = _write_pem(directory / "server", _make_server_cert(ca))
            self.wrong_ca_file, _ = _write_pem(directory / "wrong-ca", _make_ca("unrelated CA"))
        self.password_file: Path | None = None
        if password is not None:
            self.password_file = directory / "passwords"
            subprocess.run(
                [
                    str(MOSQUITTO_PASSWD),
                    "-b",
                    "-c",
                    str(self.password_file),
                    password[0],
                    password[1],
                ],
                check=True,
                capture_output=True,
            )
            self.password_file.chmod(0o600)

    # --- configuration -------------------------------------------------------------------

    def _conf(self) -> str:
        lines = [
            f"listener {self.port} {HOST}",
            f"allow_anonymous {'false' if self.password else 'true'}",
            "persistence false",
            f"log_dest file {self.log_file}",
            "log_type all",
            "connection_messages true",
            "log_timestamp_format %H:%M:%S",
        ]
        # Run as root, mosquitto drops to the `mosquitto` user unless told to stay root, and
        # then could not read these files (pytest's tmp_path is private to root).
        if os.geteuid() == 0:
            lines.append("user root")
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl is not None:
            acl_file = self.directory / "acl"
            acl_file.write_text(self.acl, encoding="utf-8")
            lines.append(f"acl_file {acl_file}")
        if self._server_files is not None and self.ca_file is not None:
            cert_file, key_file = self._server_files
            lines += [f"cafile {self.ca_file}", f"certfile {cert_file}", f"keyfile {key_file}"]
        return "\n".join(lines) + "\n"

    # --- the process ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start mosquitto and wait until it accepts connections. The first start picks a free
        port (another if that one is taken meanwhile); a later one reuses it."""
        if self.running:
            raise BrokerError("the broker is running already")
        if self.port:
            self._start_on(self.port, attempts=PORT_ATTEMPTS)
            return
        for _ in range(PORT_ATTEMPTS):
            self.port = _free_port()
            with contextlib.suppress(_PortTakenError):
                self._start_on(self.port, attempts=1)
                return
        raise BrokerError(f"no free port for mosquitto after {PORT_ATTEMPTS} tries:\n{self.log()}")

    def _start_on(self, port: int, *, attempts: int) -> None:
        for attempt in range(attempts):
            self._log_start = self._log_sizes()
            self.conf_file.write_text(self._conf(), encoding="utf-8")
            with self.stderr_file.open("ab") as stderr:
                self._process = subprocess.Popen(
                    [str(MOSQUITTO), "-c", str(self.conf_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=stderr,
                )
            try:
                self._wait_ready(port)
            except _PortTakenError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2)  # a socket of the previous run lingers; try again
            else:
                return

    def _wait_ready(self, port: int) -> None:
        if self._process is None:
            raise BrokerError("mosquitto was not started")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self.log(since=self._log_start)
                if "Address already in use" in log:
                    raise _PortTakenError(f"port {port} is taken:\n{log}")
                raise BrokerError(
                    f"mosquitto exited with {self._process.returncode} at start:\n{log}"
                )
            # "running" is logged once every listener is bound: only then is the port ours
            if " running" in self.log(since=self._log_start) and _accepts(port):
                return
            time.sleep(0.02)
        self.kill()
        raise BrokerError(
            f"mosquitto did not listen on {port} within {READY_TIMEOUT_S} s:\n{self.log()}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; nothing when it is not running."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL: the broker is lost, with no goodbye to its clients."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait()

    def _log_sizes(self) -> tuple[int, int]:
        sizes = []
        for path in (self.stderr_file, self.log_file):
            try:
                sizes.append(path.stat().st_size)
            except FileNotFoundError:
                sizes.append(0)
        return sizes[0], sizes[1]

    def log(self, *, since: tuple[int, int] = (0, 0)) -> str:
        """What mosquitto wrote (to its standard error, then to its log file), from ``since``
        (the files' sizes at some point) on."""
        parts = []
        for path, offset in zip((self.stderr_file, self.log_file), since, strict=True):
            with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
                handle.seek(offset)
                parts.append(handle.read().decode("utf-8", errors="replace"))
        return "".join(parts)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- for clients -----------------------------------------------------------------------

    def tls_context(self, ca_file: Path | None = None) -> ssl.SSLContext | None:
        """A verifying context with this broker's CA (or ``ca_file``); None without TLS."""
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=str(ca_file or self.ca_file))

    def client(self, **options: Any) -> aiomqtt.Client:
        """An aiomqtt client of this broker (credentials and TLS included); ``async with`` it.
        ``options`` go to :class:`aiomqtt.Client` as they are and win."""
        kwargs: dict[str, Any] = {"hostname": "localhost" if self.tls else HOST}
        kwargs["port"] = self.port
        kwargs["timeout"] = 5
        if self.password is not None:
            kwargs["username"], kwargs["password"] = self.password
        if self.tls:
            kwargs["tls_context"] = self.tls_context()
        kwargs.update(options)
        return aiomqtt.Client(**kwargs)

    def mqtt_toml(self, **extra: str | int | bool) -> str:
        """A ``config.toml`` whose ``[mqtt]`` table reaches this broker (``password_file`` is
        left to the caller); ``extra`` adds or replaces keys."""
        table: dict[str, str | int | bool] = {"host": "localhost" if self.tls else HOST}
        table["port"] = self.port
        if self.password is not None:
            table["username"] = self.password[0]
        if self.tls:
            table["tls"] = True
            table["ca_file"] = str(self.ca_file)
        table.update(extra)
        lines = ["[mqtt]"]
        for key, value in table.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, int):
                lines.append(f"{key} = {value}")
            else:
                lines.append(f"{key} = {_toml_string(value)}")
        return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class _PortTakenError(BrokerError):
    """mosquitto could not bind the port (someone else has it)."""


@contextlib.contextmanager
def running_broker(
    directory: Path,
    *,
    password: tuple[str, str] | None = None,
    tls: bool = False,
    acl: str | None = None,
) -> Iterator[Broker]:
    """A started :class:`Broker` in ``directory``, stopped at the end."""
    broker = Broker(directory, password=password, tls=tls, acl=acl)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


# --- collecting what is published ---------------------------------------------------------------


class Received(NamedTuple):
    topic: str
    payload: bytes
    retain: bool


class Collector:
    """A client subscribed to ``topic_filter`` (QoS 1) that records every message::

    async with Collector(broker, "relieve/bedroom/#") as seen:
        ...
        message = await seen.wait_for(lambda m: m.topic.endswith("/status"))
    """

    def __init__(self, broker: Broker, topic_filter: str, **options: Any) -> None:
        self.broker = broker
        self.topic_filter = topic_filter
        self.messages: list[Received] = []
        self._client = broker.client(**options)
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        await self._client.subscribe(self.topic_filter, qos=1)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for message in self._client.messages:
            payload = message.payload  # bytes, as received (aiomqtt types it wider)
            if not isinstance(payload, bytes | bytearray):
                raise TypeError(f"a received payload is {payload!r}, not bytes")
            self.messages.append(Received(str(message.topic), bytes(payload), message.retain))
            self._arrived.set()

    async def wait_for(
        self, match: Callable[[Received], bool] | str, *, within: float = 5.0
    ) -> Received:
        """The first message (already received or to come) that ``match`` (a predicate, or a
        topic) accepts; TimeoutError after ``within`` seconds."""
        accepts = (lambda m: m.topic == match) if isinstance(match, str) else match
        async with asyncio.timeout(within):
            while True:
                for message in self.messages:
                    if accepts(message):
                        return message
                self._arrived.clear()
                await self._arrived.wait()

    def topics(self) -> list[str]:
        return [m.topic for m in self.messages]


# --- fixtures ----------------------------------------------------------------------------------


class BrokerFactory(Protocol):
    def __call__(
        self,
        *,
        password: tuple[str, str] | None = None,
        tls: bool = False,
        acl: str | None = None,
    ) -> Broker: ...


def _require_mosquitto() -> None:
    if not MOSQUITTO.exists():
        # never a skip: the MQTT tests are part of the suite (./dev test installs mosquitto)
        pytest.fail(f"mosquitto is not installed at {MOSQUITTO}; run the suite with ./dev test")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """An anonymous broker, running."""
    _require_mosquitto()
    with running_broker(tmp_path / "broker") as started:
        yield started


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[BrokerFactory]:
    """Start brokers with options (``password=(user, password)``, ``tls=True``, ``acl=TEXT``);
    every one is stopped at the end of the test."""
    _require_mosquitto()
    brokers: list[Broker] = []

    def make(
        *,
        password: tuple[str, str] | None = None,
        tls: bool = False,
        acl: str | None = None,
    ) -> Broker:
        made = Broker(tmp_path / f"broker-{len(brokers)}", password=password, tls=tls, acl=acl)
        brokers.append(made)
        made.start()
        return made

    yield make
    for made in brokers:
        made.stop()
