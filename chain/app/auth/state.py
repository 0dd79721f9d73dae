"""State of the auth module: accounts, authz grants, and the tx hashes seen (replay protection).

Keys (see chain/app/PROTOCOL.md):
    auth/account/<address>                                   -> Account
    auth/grant/<granter>/<grantee>/<msg type>                -> Grant
    auth/grant_expiry/<u64 expiration><granter>/<grantee>/<msg type> -> b"" (pruning queue)
    auth/seen/<tx hash>                                      -> u64 timeout_height
    auth/seen_expiry/<u64 timeout><tx hash>                  -> b"" (pruning queue)

Addresses are fixed-length bech32 strings, so a prefix of granter and grantee selects exactly
their grants. This module must never decide whether a message is allowed beyond its own
records: handlers combine these answers.
"""

from __future__ import annotations

import functools

import msgspec

from chain.app.context import Context, get_value, put_value, u64
from chain.crypto.address import address_from_bytes
from chain.crypto.hashing import sha256
from chain.store.kv import KVReader, Overlay, scan_prefix

ACCOUNT = b"auth/account/"
GRANT = b"auth/grant/"
GRANT_EXPIRY = b"auth/grant_expiry/"
SEEN = b"auth/seen/"
SEEN_EXPIRY = b"auth/seen_expiry/"


class Account(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An account exists once it received coins or signed a tx. Module accounts (escrow) carry
    their module's name and have no key."""

    address: str
    created_height: int
    pubkey: bytes | None = None
    module: str | None = None


class Grant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`expiration_height` is the last height at which the grant may be used (None: no end)."""

    expiration_height: int | None = None


class GrantRecord(msgspec.Struct, frozen=True):
    granter: str
    grantee: str
    msg_type: str
    expiration_height: int | None


@functools.cache
def module_address(name: str) -> str:
    """The address of module `name`'s account: bech32 of SHA-256(name)[:20] (Cosmos's rule).
    A pure function of a handful of names, remembered: block execution asks for it per message."""
    return address_from_bytes(sha256(name.encode())[:20])


def get_account(store: KVReader, address: str) -> Account | None:
    return get_value(store, ACCOUNT + address.encode(), Account)


def ensure_account(ctx: Context, address: str) -> Account:
    """The account at `address`, created at the current height if it did not exist."""
    account = get_account(ctx.store, address)
    if account is None:
        account = Account(address=address, created_height=ctx.height)
        put_value(ctx.store, ACCOUNT + address.encode(), account)
        ctx.emit("new_account", address=address)
    return account


def record_signer(ctx: Context, address: str, pubkey: bytes) -> None:
    """Remember the public key of an account the first time it signs."""
    account = ensure_account(ctx, address)
    if account.pubkey is None:
        put_value(ctx.store, ACCOUNT + address.encode(),
                  msgspec.structs.replace(account, pubkey=pubkey))


# The protocol modules' accounts, marked as module accounts at genesis (auth's init_genesis) so
# that no MsgSend can ever put coins in them that their module's books do not account for:
# "inference" (escrow of open inferences), "work" (owed work coins), "rewards" (minted, unclaimed
# rewards), "vesting" (vesting schedules), "collateral" (deposits). Bank refuses a send to a
# module account (103) only once the account is marked, which otherwise happens at first use.
PROTOCOL_ACCOUNTS: tuple[str, ...] = ("inference", "work", "rewards", "vesting", "collateral")


def module_account(ctx: Context, name: str) -> str:
    """The address of module `name`'s account, marking it as a module account on first use."""
    address = module_address(name)
    account = ensure_account(ctx, address)
    if account.module is None:
        put_value(ctx.store, ACCOUNT + address.encode(),
                  msgspec.structs.replace(account, module=name))
    return address


def is_module_account(store: KVReader, address: str) -> bool:
    account = get_account(store, address)
    return account is not None and account.module is not None


def _grant_path(granter: str, grantee: str, msg_type: str) -> bytes:
    return f"{granter}/{grantee}/{msg_type}".encode()


def get_grant(store: KVReader, granter: str, grantee: str, msg_type: str) -> Grant | None:
    return get_value(store, GRANT + _grant_path(granter, grantee, msg_type), Grant)


def set_grant(store: Overlay, granter: str, grantee: str, msg_type: str,
              expiration_height: int | None) -> None:
    delete_grant(store, granter, grantee, msg_type)
    path = _grant_path(granter, grantee, msg_type)
    put_value(store, GRANT + path, Grant(expiration_height=expiration_height))
    if expiration_height is not None:
        store.set(GRANT_EXPIRY + u64(expiration_height) + path, b"")


def delete_grant(store: Overlay, granter: str, grantee: str, msg_type: str) -> bool:
    """Remove a grant; False if there was none."""
    old = get_grant(store, granter, grantee, msg_type)
    if old is None:
        return False
    path = _grant_path(granter, grantee, msg_type)
    store.delete(GRANT + path)
    if old.expiration_height is not None:
        store.delete(GRANT_EXPIRY + u64(old.expiration_height) + path)
    return True


def grants(store: KVReader, granter: str, grantee: str | None = None) -> list[GrantRecord]:
    """The grants `granter` gave (to `grantee` only, if given), sorted by grantee and type."""
    prefix = GRANT + (f"{granter}/" if grantee is None else f"{granter}/{grantee}/").encode()
    out = []
    for key, value in scan_prefix(store, prefix):
        g, e, t = key[len(GRANT):].decode().split("/", 2)
        exp = msgspec.msgpack.decode(value, type=Grant).expiration_height
        out.append(GrantRecord(granter=g, grantee=e, msg_type=t, expiration_height=exp))
    return out


def prune_expired_grants(store: Overlay, height: int) -> None:
    """Delete the grants whose last usable height is below `height`."""
    for key, _ in store.scan(GRANT_EXPIRY, GRANT_EXPIRY + u64(height)):
        path = key[len(GRANT_EXPIRY) + 8:]
        store.delete(key)
        store.delete(GRANT + path)


def seen_timeout(store: KVReader, tx_hash: bytes) -> int | None:
    """The timeout height of a tx already seen, or None."""
    return get_value(store, SEEN + tx_hash, int)


def mark_seen(store: Overlay, tx_hash: bytes, timeout_height: int) -> None:
    put_value(store, SEEN + tx_hash, timeout_height)
    store.set(SEEN_EXPIRY + u64(timeout_height) + tx_hash, b"")


def prune_seen(store: Overlay, height: int) -> None:
    """Forget the txs whose timeout is below `height`: they can never be included again."""
    for key, _ in store.scan(SEEN_EXPIRY, SEEN_EXPIRY + u64(height)):
        store.delete(key)
        store.delete(SEEN + key[len(SEEN_EXPIRY) + 8:])
