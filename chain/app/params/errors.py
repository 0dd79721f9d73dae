"""Errors of the params module (codes 400-499, codespace "params")."""

from __future__ import annotations

from chain.app.errors import TxError


class ParamsError(TxError):
    codespace = "params"


class UnknownParamModule(ParamsError):
    code = 401

    def __init__(self, module: str) -> None:
        super().__init__(f"no module {module!r} has parameters")
        self.module = module


class UnknownParamKey(ParamsError):
    code = 402

    def __init__(self, module: str, key: str) -> None:
        super().__init__(f"module {module!r} has no parameter {key!r}")
        self.module, self.key = module, key


class InvalidParamValue(ParamsError):
    code = 403

    def __init__(self, module: str, key: str, reason: str) -> None:
        super().__init__(f"invalid value for {module}.{key}: {reason}")
        self.module, self.key, self.reason = module, key, reason
