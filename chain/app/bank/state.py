"""Balances, the total supply, and the coin movements every module uses.

Keys: `bank/balance/<address>` -> int (absent means 0), `bank/supply` -> int.

The invariant: the sum of all balances equals the supply, and no balance is negative. Every
function here keeps it: transfers move coins, `mint` adds to both a module account and the supply,
`burn` removes from both. Other modules hold coins in escrow through `escrow`/`release` into and
out of their module account (`chain.app.auth.state.module_account`). Functions raise TxError
subclasses on a refused movement and write nothing then; amounts must be >= 0 (a negative amount
is a bug and raises ValueError).
"""

from __future__ import annotations

from chain.app.auth.state import ensure_account, module_account, module_address
from chain.app.bank.errors import InsufficientFunds, SupplyOverflow
from chain.app.context import Context, get_int, put_int
from chain.store.kv import KVReader, scan_prefix
from chain.types.common import MAX_AMOUNT

BALANCE = b"bank/balance/"
SUPPLY = b"bank/supply"


def balance(store: KVReader, address: str) -> int:
    return get_int(store, BALANCE + address.encode())


def supply(store: KVReader) -> int:
    return get_int(store, SUPPLY)


def total_balances(store: KVReader) -> int:
    """Sum of every balance (a full scan: for invariant checks, not for handlers)."""
    return sum(get_int(store, k) for k, _ in scan_prefix(store, BALANCE))


def _check(amount: int) -> None:
    if not isinstance(amount, int) or amount < 0:
        raise ValueError(f"amounts are non-negative integers, got {amount!r}")


def transfer(ctx: Context, sender: str, recipient: str, amount: int) -> None:
    """Move `amount` from `sender` to `recipient`, creating the recipient's account."""
    _check(amount)
    if amount == 0:
        return
    have = balance(ctx.store, sender)
    if have < amount:
        raise InsufficientFunds(sender, have, amount)
    ensure_account(ctx, recipient)
    if recipient != sender:
        put_int(ctx.store, BALANCE + sender.encode(), have - amount)
        # Both balances are at most the supply, itself at most MAX_AMOUNT: no overflow.
        put_int(ctx.store, BALANCE + recipient.encode(),
                balance(ctx.store, recipient) + amount)
    ctx.emit("transfer", sender=sender, recipient=recipient, amount=amount)


def escrow(ctx: Context, address: str, module: str, amount: int) -> None:
    """Move coins from an account into `module`'s account (held until released or burned)."""
    transfer(ctx, address, module_account(ctx, module), amount)


def release(ctx: Context, module: str, address: str, amount: int) -> None:
    """Move coins out of `module`'s account to `address`."""
    transfer(ctx, module_address(module), address, amount)


def mint(ctx: Context, module: str, amount: int) -> None:
    """Create `amount` new coins in `module`'s account."""
    _check(amount)
    total = supply(ctx.store)
    if total + amount > MAX_AMOUNT:
        raise SupplyOverflow(total, amount)
    address = module_account(ctx, module)
    put_int(ctx.store, BALANCE + address.encode(), balance(ctx.store, address) + amount)
    put_int(ctx.store, SUPPLY, total + amount)
    ctx.emit("mint", module=module, amount=amount)


def burn(ctx: Context, module: str, amount: int) -> None:
    """Destroy `amount` coins held by `module`'s account."""
    _check(amount)
    address = module_address(module)
    have = balance(ctx.store, address)
    if have < amount:
        raise InsufficientFunds(address, have, amount)
    put_int(ctx.store, BALANCE + address.encode(), have - amount)
    put_int(ctx.store, SUPPLY, supply(ctx.store) - amount)
    ctx.emit("burn", module=module, amount=amount)


def set_genesis_balance(ctx: Context, address: str, amount: int) -> None:
    """Credit a genesis account (adds to the supply); init_chain only."""
    _check(amount)
    total = supply(ctx.store) + amount
    if total > MAX_AMOUNT:
        raise SupplyOverflow(supply(ctx.store), amount)
    ensure_account(ctx, address)
    put_int(ctx.store, BALANCE + address.encode(), balance(ctx.store, address) + amount)
    put_int(ctx.store, SUPPLY, total)
