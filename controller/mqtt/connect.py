"""Reaching the broker of the ``[mqtt]`` table: :class:`aiomqtt.Client`'s options, the TLS
context, and one sentence for each way a connection fails.

``relieve config check`` and the daemon's bridge connect the same way: MQTT 3.1.1, a clean
session, the username and the password of ``password_file``, and with ``tls = true`` a verifying
TLS context (the certificate chain and the host name), with ``ca_file`` or else the system's CAs.

aiomqtt raises :class:`aiomqtt.MqttError` for everything; what went wrong is in it:

* a refusal in the broker's CONNACK is :class:`aiomqtt.exceptions.MqttConnectError`, ``rc`` a paho
  ``ReasonCode`` (MQTT 3.1.1 codes come as their MQTT 5 equivalents: 4 is 134, 5 is 135);
* a socket or TLS error while connecting is a plain ``MqttError`` raised ``from None``: the
  original ``OSError`` (``ConnectionRefusedError``, ``socket.gaierror``,
  ``ssl.SSLCertVerificationError``...) is still its ``__context__``;
* no answer in time is ``MqttError("Operation timed out")`` (its context a ``TimeoutError``);
* a lost connection is :class:`aiomqtt.MqttCodeError` (``rc`` paho's error number, or the
  DISCONNECT reason code 128), or, while reading messages, an ``MqttError`` raised from one.
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode

from controller.mqtt.config import MqttConfig, read_password
from profiles.errors import RelieveError

__all__ = [
    "KEEPALIVE_S",
    "broker_address",
    "client_options",
    "describe_mqtt_error",
    "tls_context",
]

KEEPALIVE_S = 60

# OpenSSL's verification results for a certificate that is not for the name or address asked.
_X509_V_ERR_HOSTNAME_MISMATCH = 62
_X509_V_ERR_IP_ADDRESS_MISMATCH = 64
_UNSPECIFIED_ERROR = 128  # the reason code paho gives a connection that just went away


def broker_address(config: MqttConfig) -> str:
    """``host:port`` (an IPv6 address in brackets)."""
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"{host}:{config.port}"


def tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    """A context that verifies the broker's certificate and host name, trusting ``ca_file``
    only when it is given, else the system's CAs; None without ``tls``."""
    if not config.tls:
        return None
    if not config.ca_file:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=config.ca_file)
    except ssl.SSLError:
        raise RelieveError(
            f"The CA file {config.ca_file} holds no certificate in PEM form; check mqtt.ca_file."
        ) from None
    except OSError as exc:
        raise RelieveError(
            f"The CA file {config.ca_file} cannot be read ({exc.strerror or exc}); check "
            "mqtt.ca_file."
        ) from None


def client_options(
    config: MqttConfig,
    *,
    identifier: str,
    will: aiomqtt.Will | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for :class:`aiomqtt.Client`. The password is ``password`` when given
    (read once by a caller that connects again and again), else read from ``password_file``;
    :class:`RelieveError` says what is wrong with that file or with ``ca_file``."""
    options: dict[str, Any] = {
        "hostname": config.host,
        "port": config.port,
        "username": config.username,
        "password": password if password is not None else read_password(config),
        "tls_context": tls_context(config),
        "identifier": identifier,
        "clean_session": True,
        "keepalive": KEEPALIVE_S,
    }
    if will is not None:
        options["will"] = will
    return options


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during (aiomqtt raises ``from None``,
    which hides the cause from a traceback but keeps it as ``__context__``)."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in found):
        found.append(current)
        current = current.__cause__ if current.__cause__ is not None else current.__context__
    return found


def _refused(rc: int | ReasonCode | None, config: MqttConfig) -> str:
    """A refusal in the broker's CONNACK (MQTT 3.1.1 numbers, or their MQTT 5 codes)."""
    where = broker_address(config)
    value = rc.value if isinstance(rc, ReasonCode) else rc
    fix = "check mqtt.username and the password file"
    match value:
        case 4 | 134 if config.username is None:
            return (
                f"the broker at {where} wants a username and password; set mqtt.username and "
                "mqtt.password_file."
            )
        case 5 | 135 if config.username is None:
            return (
                f"the broker at {where} refused an anonymous connection (not authorised); set "
                "mqtt.username and mqtt.password_file."
            )
        case 4 | 134 | 5 | 135 if not config.password_file:
            return (
                f"the broker refused user '{config.username}' without a password (there is no "
                "mqtt.password_file); set mqtt.password_file to a file that holds it."
            )
        case 4 | 134:
            return (
                f"the broker refused the username or password of user '{config.username}'; {fix}."
            )
        case 5 | 135:
            # mosquitto answers a wrong password with 3.1.1's 5, "not authorised" (MQTT 5: 135);
            # other brokers use 4, "bad username or password", for that
            return (
                f"the broker refused the username or password of user '{config.username}' (it "
                f"answered 'not authorised'); {fix}, and that the broker lets this user connect."
            )
        case 1 | 132:
            return f"the broker at {where} refused MQTT 3.1.1, the protocol relieve speaks."
        case 2 | 133:
            return (
                f"the broker at {where} refused the client identifier; some brokers take only "
                "23 characters: try a shorter mqtt.node."
            )
        case 3 | 136 | 137:
            return f"the broker at {where} says it is unavailable now; try again later."
        case 138:
            return f"the broker at {where} has banned this client."
        case _:
            return f"the broker at {where} refused the connection ({rc})."


def _tls_failed(error: ssl.SSLError, config: MqttConfig) -> str:
    where = broker_address(config)
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = (error.verify_message or error.reason or str(error)).rstrip(".")
        if error.verify_code in (_X509_V_ERR_HOSTNAME_MISMATCH, _X509_V_ERR_IP_ADDRESS_MISMATCH):
            return (
                f"the broker's certificate is not for {config.host} ({detail}); set mqtt.host "
                "to a name the certificate holds."
            )
        trusted = config.ca_file or "the system's CAs"
        return f"the broker's certificate could not be verified with {trusted} ({detail})."
    detail = error.reason or str(error)
    return (
        f"the TLS handshake with {where} failed ({detail}); does that port speak TLS? "
        "(tls = true needs a TLS listener)"
    )


def describe_mqtt_error(exc: BaseException, config: MqttConfig) -> str:
    """What went wrong reaching the broker, in one sentence (lower-case, for after
    ``relieve:`` or in a log line)."""
    where = broker_address(config)
    chain = _chain(exc)
    refusal = next((e for e in chain if isinstance(e, MqttConnectError)), None)
    if refusal is not None:
        return _refused(refusal.rc, config)
    error = next((e for e in chain if isinstance(e, OSError)), None)
    if isinstance(error, ssl.SSLError):
        return _tls_failed(error, config)
    if isinstance(error, socket.gaierror):
        return f"the broker's host name {config.host!r} cannot be resolved; check mqtt.host."
    if isinstance(error, ConnectionRefusedError):
        return f"nothing listens on {where}; is the broker running?"
    if isinstance(error, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        if config.tls:
            return (
                f"{where} closed the connection during the TLS handshake; does that port "
                "speak TLS? (tls = true needs a TLS listener)"
            )
        return f"{where} closed the connection at once; is it an MQTT port without TLS?"
    if isinstance(error, TimeoutError):
        hint = "" if config.tls else " (a TLS port does not answer without tls = true)"
        return f"the broker at {where} did not answer in time; check mqtt.host and mqtt.port{hint}."
    if error is not None and error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return (
            f"{config.host} cannot be reached ({error.strerror}); check mqtt.host and the network."
        )
    if error is not None:
        return f"cannot connect to {where} ({error.strerror or error})."
    lost = next((e for e in chain if isinstance(e, aiomqtt.MqttCodeError)), None)
    if lost is not None:
        return f"the connection to the broker at {where} was lost{_detail(lost.rc)}."
    return f"MQTT with the broker at {where} failed ({exc or type(exc).__name__})."


def _detail(rc: int | ReasonCode | None) -> str:
    """`` (why)`` for a lost connection, when paho's code says more than that it was lost."""
    if isinstance(rc, ReasonCode):
        return "" if rc.value == _UNSPECIFIED_ERROR else f" ({rc})"
    if rc is None or rc in (paho.MQTT_ERR_NO_CONN, paho.MQTT_ERR_CONN_LOST):
        return ""
    return f" ({paho.error_string(rc).rstrip('.')})"
