"""Enum helpers for wire values.

:class:`OpenIntEnum` tolerates unknown values: decoding an integer that has no member yields
a pseudo-member that keeps the integer (named ``ClassName[value]``) instead of raising, so a
newer peer never makes an older decoder fail on an enum field.
"""

from __future__ import annotations

import enum
from typing import Self

__all__ = ["OpenIntEnum"]


class OpenIntEnum(enum.IntEnum):
    """An :class:`enum.IntEnum` that also holds integers it has no member for."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        member = int.__new__(cls, value)
        member._value_ = value
        member._name_ = f"{cls.__name__}[{value}]"
        return member

    @property
    def is_known(self) -> bool:
        """True when this value is one of the declared members."""
        return self._name_ in type(self).__members__
