"""Parameters of the bank module (changed only by gov)."""

from __future__ import annotations

import msgspec


class BankParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # False stops MsgSend between accounts; module transfers (escrow, rewards) still work.
    send_enabled: bool = True
