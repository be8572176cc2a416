"""Identifiers of the plant's things: plants, machines and camera views.

They name topics, files and database rows, so they are short and plain: 1 to 64 letters,
digits, '_' or '-'.
"""

from __future__ import annotations

import re

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID = re.compile(ID_PATTERN)


def valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))  # `$` alone would let a trailing newline through


def check_id(value: str, what: str) -> str:
    """`value` if it is a valid id, else ValueError naming `what` (the value quoted short)."""
    if not valid_id(value):
        raise ValueError(f"{what} id {shown(value)} must be 1 to 64 letters, digits, '_' or '-'")
    return value


def shown(value: str) -> str:
    """A value quoted in a reason, cut short: reasons quote input, bounded."""
    return repr(value if len(value) <= 40 else value[:39] + "…")
