"""Errors of the bank module (codes 100-199, codespace "bank")."""

from __future__ import annotations

from chain.app.errors import TxError


class BankError(TxError):
    codespace = "bank"


class InsufficientFunds(BankError):
    code = 101

    def __init__(self, address: str, balance: int, needed: int) -> None:
        super().__init__(f"{address} has {balance} ngonka, needs {needed}")
        self.address, self.balance, self.needed = address, balance, needed


class SendDisabled(BankError):
    code = 102

    def __init__(self) -> None:
        super().__init__("transfers are disabled (bank param send_enabled is false)")


class BlockedRecipient(BankError):
    code = 103

    def __init__(self, address: str, module: str) -> None:
        super().__init__(f"{address} is the {module} module's account; only the module moves "
                         "coins into it")
        self.address, self.module = address, module


class SupplyOverflow(BankError):
    code = 104

    def __init__(self, supply: int, amount: int) -> None:
        super().__init__(f"minting {amount} on a supply of {supply} exceeds the maximum amount")
        self.supply, self.amount = supply, amount
