"""The exceptions every codec raises.

* :class:`DecodeError` is the only exception a decoder (``from_bytes``) raises on bad bytes.
* :class:`EncodeError` is raised when a frame is constructed with a value outside its range,
  or when a value cannot be represented on the wire.

Both are :class:`ValueError` subclasses and carry the protocol, the field and the problem as
attributes, so callers can log structured detail and show the one-sentence message to a user.
"""

from __future__ import annotations

__all__ = ["CodecError", "DecodeError", "EncodeError"]


class CodecError(ValueError):
    """Base class of the codec errors: a frame could not be decoded or encoded."""

    def __init__(self, protocol: str, field: str, problem: str, message: str) -> None:
        super().__init__(message)
        self.protocol = protocol
        self.field = field
        self.problem = problem


class DecodeError(CodecError):
    """Bytes received from a device (or a host) do not form a valid frame."""

    def __init__(self, protocol: str, field: str, problem: str) -> None:
        super().__init__(
            protocol,
            field,
            problem,
            f"Cannot decode {protocol} {field}: {problem}; "
            "the peer sent a frame this codec does not accept.",
        )


class EncodeError(CodecError):
    """A frame was built with a value its protocol cannot carry."""

    def __init__(self, protocol: str, field: str, problem: str) -> None:
        super().__init__(
            protocol,
            field,
            problem,
            f"Cannot encode {protocol} {field}: {problem}; pass a value inside the stated range.",
        )
