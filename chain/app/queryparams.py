"""Reading query parameters (strings from the RPC) into checked values; errors are BadQuery."""

from __future__ import annotations

import re
from collections.abc import Mapping

from chain.app.errors import BadQuery
from chain.crypto.address import is_valid_address

_DIGITS = re.compile(r"[0-9]{1,19}")


def address_param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise BadQuery(f"parameter {name!r} is required")
    if not is_valid_address(value):
        raise BadQuery(f"parameter {name!r} is not a gonka1... address: {value!r}")
    return value


def optional_address_param(params: Mapping[str, str], name: str) -> str | None:
    return address_param(params, name) if name in params else None


def int_param(params: Mapping[str, str], name: str, *, minimum: int = 0) -> int:
    value = params.get(name)
    if value is None:
        raise BadQuery(f"parameter {name!r} is required")
    # A plain pattern: int() would also take "1_000", " 7" and non-ASCII digits.
    if not _DIGITS.fullmatch(value):
        raise BadQuery(f"parameter {name!r} is not a decimal integer: {value!r}")
    number = int(value)
    if not minimum <= number < 2**63:
        raise BadQuery(f"parameter {name!r} is out of range: {value}")
    return number
