"""Handlers of the authz messages: grant, revoke, and exec (sending messages for a granter).

MsgExec checks, for each inner message, that every signer it names other than the grantee has
granted the grantee that message type and that the grant is usable at the current height, then
dispatches the message as if that signer had sent it. MsgExec cannot nest (the wire type forbids
it). A failing inner message fails the whole tx.
"""

from __future__ import annotations

from chain.app.auth import state
from chain.app.auth.errors import ExpirationInPast, GrantExpired, GrantNotFound
from chain.app.context import Context
from chain.types.msgs import MsgExec, MsgGrant, MsgRevoke, msg_tag


def handle_grant(ctx: Context, msg: MsgGrant) -> None:
    if msg.expiration_height is not None and msg.expiration_height < ctx.height:
        raise ExpirationInPast(msg.expiration_height, ctx.height)
    state.ensure_account(ctx, msg.grantee)
    for msg_type in msg.msg_types:
        state.set_grant(ctx.store, msg.granter, msg.grantee, msg_type, msg.expiration_height)
        ctx.emit("grant", granter=msg.granter, grantee=msg.grantee, msg_type=msg_type,
                 expiration_height="" if msg.expiration_height is None
                 else msg.expiration_height)


def handle_revoke(ctx: Context, msg: MsgRevoke) -> None:
    for msg_type in msg.msg_types:
        if not state.delete_grant(ctx.store, msg.granter, msg.grantee, msg_type):
            raise GrantNotFound(msg.granter, msg.grantee, msg_type)
        ctx.emit("revoke", granter=msg.granter, grantee=msg.grantee, msg_type=msg_type)


def check_grant(ctx: Context, granter: str, grantee: str, msg_type: str) -> None:
    """Raise unless `granter` lets `grantee` send `msg_type` at the current height."""
    grant = state.get_grant(ctx.store, granter, grantee, msg_type)
    if grant is None:
        raise GrantNotFound(granter, grantee, msg_type)
    if grant.expiration_height is not None and grant.expiration_height < ctx.height:
        raise GrantExpired(granter, grantee, msg_type, grant.expiration_height, ctx.height)


def handle_exec(ctx: Context, msg: MsgExec) -> None:
    for inner in msg.msgs:
        tag = msg_tag(type(inner))
        for signer in inner.signers:
            # A grantee acting for itself needs no grant.
            if signer != msg.grantee:
                check_grant(ctx, signer, msg.grantee, tag)
        ctx.dispatch(ctx, inner)
    ctx.emit("exec", grantee=msg.grantee, msgs=len(msg.msgs))


HANDLERS = {MsgGrant: handle_grant, MsgRevoke: handle_revoke, MsgExec: handle_exec}
