"""Parameter changes, the content of a governance proposal: set `key` of `module`'s params to the
JSON `value`. Parameters change only through gov; there is no message that sets them directly.

Checks here are stateless (names well-formed, the value is one JSON value without floats). Whether
the module and key exist and the value fits the params type is decided against state by
`chain.app.params`, when the proposal is submitted (names) and when it passes (value).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

MAX_PARAM_VALUE_CHARS = 4096
ParamName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]


def _has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False


class ParamChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One change: `value` is JSON text, e.g. "100", "true", "\\"abc\\"" or "{...}"."""

    module: ParamName
    key: ParamName
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PARAM_VALUE_CHARS)]

    def __post_init__(self) -> None:
        try:
            decoded = msgspec.json.decode(self.value)
        except msgspec.DecodeError as e:
            raise ValueError(f"value of {self.module}.{self.key} is not JSON: {e}") from None
        # Floats would make nodes depend on float formatting; params are integers (basis points).
        if _has_float(decoded):
            raise ValueError(f"value of {self.module}.{self.key} contains a float")

    @property
    def decoded_value(self) -> object:
        return msgspec.json.decode(self.value)
