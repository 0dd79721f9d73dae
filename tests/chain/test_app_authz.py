"""Authz through the app: a granter lets a grantee send named message types for it, until an
expiry height; MsgExec runs inner messages only under such grants; revoke ends them."""

from __future__ import annotations

import pytest

from chain.app import abci
from chain.types import MsgExec, MsgGrant, MsgRevoke, MsgSend
from tests.chain.app_builders import ALICE, BOB, CAROL, GONKA, Chain, signed_tx

SEND = "bank/MsgSend"


def grant(types=(SEND,), expiration_height=None, granter=ALICE, grantee=BOB) -> bytes:
    return signed_tx(MsgGrant(granter=granter.address, grantee=grantee.address, msg_types=types,
                              expiration_height=expiration_height), key=granter,
                     memo=f"grant {types} {expiration_height}")


def exec_send(amount: int, memo: str = "") -> bytes:
    """Bob sends `amount` of Alice's coins to Carol, under a grant."""
    inner = MsgSend(from_address=ALICE.address, to_address=CAROL.address, amount=amount)
    return signed_tx(MsgExec(grantee=BOB.address, msgs=(inner,)), key=BOB, memo=memo)


def code_of(result) -> tuple[int, str]:
    r = result.tx_results[0]
    return r.code, r.codespace


@pytest.fixture
def chain(tmp_path):
    c = Chain(tmp_path / "state.db")
    yield c
    c.close()


def test_a_grantee_sends_for_the_granter_under_a_grant(chain):
    # Given Alice granted Bob MsgSend,
    assert code_of(chain.run([grant()])) == (abci.OK, "")
    assert chain.query("auth/grants", granter=ALICE.address, grantee=BOB.address) == [
        {"granter": ALICE.address, "grantee": BOB.address, "msg_type": SEND,
         "expiration_height": None}]
    # when Bob executes a send of Alice's coins to Carol,
    result = chain.run([exec_send(7)])
    # then the coins left Alice's account, and the events show the transfer and the exec.
    assert code_of(result) == (abci.OK, "")
    assert chain.balance(CAROL) == 7 and chain.balance(ALICE) == 100 * GONKA - 7
    assert chain.balance(BOB) == 50 * GONKA
    types = [e.type for e in result.tx_results[0].events]
    assert types == ["message", "message", "new_account", "transfer", "exec"]


def test_without_a_grant_for_that_type_exec_fails_and_changes_nothing(chain):
    # Given Alice granted Bob only authz/MsgRevoke,
    chain.run([grant(types=("authz/MsgRevoke",))])
    # when Bob tries a send for her,
    result = chain.run([exec_send(7)])
    # then the tx fails with the missing grant named, and nothing moved.
    assert code_of(result) == (201, "auth")
    assert "has not granted" in result.tx_results[0].log and SEND in result.tx_results[0].log
    assert chain.balance(CAROL) == 0 and chain.balance(ALICE) == 100 * GONKA


def test_a_grant_is_usable_through_its_expiration_height_then_gone(chain):
    # Given a grant that expires at height 3 (granted in block 1),
    chain.run([grant(expiration_height=3)])
    # then it works in block 3,
    chain.run([])
    assert code_of(chain.run([exec_send(1, "h3")])) == (abci.OK, "")
    # check_tx for block 4 says it expired,
    expired = chain.app.check_tx(exec_send(1, "h4"))
    assert expired.code == 202 and "expired at height 3" in expired.log
    # and from block 4 on it is pruned from state.
    assert code_of(chain.run([exec_send(1, "h4")])) == (201, "auth")
    assert chain.query("auth/grants", granter=ALICE.address) == []
    assert chain.balance(CAROL) == 1


def test_a_grant_cannot_expire_in_the_past(chain):
    chain.run_until(5)
    result = chain.run([grant(expiration_height=5)])
    assert code_of(result) == (203, "auth")


def test_revoke_ends_a_grant_and_revoking_nothing_fails(chain):
    chain.run([grant(types=(SEND, "authz/MsgGrant"))])
    revoke = MsgRevoke(granter=ALICE.address, grantee=BOB.address, msg_types=(SEND,))
    assert code_of(chain.run([signed_tx(revoke)])) == (abci.OK, "")
    remaining = chain.query("auth/grants", granter=ALICE.address)
    assert [g["msg_type"] for g in remaining] == ["authz/MsgGrant"]
    assert code_of(chain.run([exec_send(1)])) == (201, "auth")
    assert code_of(chain.run([signed_tx(revoke, memo="again")])) == (201, "auth")


def test_a_regrant_replaces_the_expiry(chain):
    chain.run([grant(expiration_height=2)])
    chain.run([grant(expiration_height=None)])
    chain.run_until(5)
    assert code_of(chain.run([exec_send(3)])) == (abci.OK, "")


def test_a_grantee_acting_for_itself_needs_no_grant(chain):
    inner = MsgSend(from_address=BOB.address, to_address=CAROL.address, amount=4)
    result = chain.run([signed_tx(MsgExec(grantee=BOB.address, msgs=(inner,)), key=BOB)])
    assert code_of(result) == (abci.OK, "") and chain.balance(CAROL) == 4


def test_grant_queries_check_their_parameters(chain):
    assert chain.app.query("auth/grants", {}).code == 2
    assert chain.app.query("auth/grants", {"granter": "gonka1nope"}).code == 2
    assert chain.app.query("auth/account", {"address": CAROL.address}).code == 3
