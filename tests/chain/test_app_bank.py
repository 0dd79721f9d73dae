"""Bank through the app: genesis balances and supply, exact transfers, insufficient funds refused
by check_tx and failed without side effects by finalize_block, module accounts, mint and burn,
and (property) random transfers that never create or lose a coin."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.app import abci
from chain.app.auth.state import module_address
from chain.app.bank import state as bank
from chain.app.bank.errors import InsufficientFunds, SupplyOverflow
from chain.app.context import Context
from chain.store.kv import Overlay
from chain.store.state import StateStore
from chain.types import MAX_AMOUNT, MsgSend
from chain.types.msgs import MsgSubmitProposal
from chain.types.msgs.params import ParamChange
from tests.chain.app_builders import (
    ALICE,
    BOB,
    CAROL,
    GONKA,
    KEYS,
    Chain,
    make_genesis,
    signed_tx,
)


def send(frm, to, amount) -> MsgSend:
    to_address = getattr(to, "address", to)
    return MsgSend(from_address=frm.address, to_address=to_address, amount=amount)


@pytest.fixture
def chain(tmp_path):
    c = Chain(tmp_path / "state.db")
    yield c
    c.close()


def test_genesis_sets_balances_supply_and_accounts(chain):
    assert chain.balance(ALICE) == 100 * GONKA and chain.balance(BOB) == 50 * GONKA
    assert chain.balance(CAROL) == 0
    assert chain.query("bank/supply") == {"denom": "ngonka", "amount": 150 * GONKA}
    assert chain.query("bank/invariants") == {"supply": 150 * GONKA,
                                              "balances_total": 150 * GONKA, "holds": True}
    assert chain.query("auth/account", address=BOB.address)["created_height"] == 0


def test_a_transfer_moves_the_exact_amount_and_creates_the_recipient(chain):
    # Given a transfer of 1.5 GNK from Alice to Carol, who has no account yet,
    tx = signed_tx(send(ALICE, CAROL, 1_500_000_000))
    # when it is checked and then included in block 1,
    assert chain.app.check_tx(tx).code == abci.OK
    result = chain.run([tx])
    # then it succeeded with a transfer event, and exactly that amount moved.
    assert result.tx_results[0].code == abci.OK
    transfer = [e for e in result.tx_results[0].events if e.type == "transfer"][0]
    assert [(a.key, a.value) for a in transfer.attributes] == [
        ("sender", ALICE.address), ("recipient", CAROL.address), ("amount", "1500000000")]
    assert chain.balance(ALICE) == 100 * GONKA - 1_500_000_000
    assert chain.balance(CAROL) == 1_500_000_000
    assert chain.query("auth/account", address=CAROL.address)["created_height"] == 1
    assert chain.query("bank/supply")["amount"] == 150 * GONKA


def test_insufficient_funds_are_refused_by_check_tx(chain):
    tx = signed_tx(send(BOB, ALICE, 50 * GONKA + 1), key=BOB)
    result = chain.app.check_tx(tx)
    assert (result.code, result.codespace) == (InsufficientFunds.code, "bank")
    assert "has 50000000000 ngonka, needs 50000000001" in result.log
    assert result.sender == BOB.address


def test_check_tx_counts_what_the_mempool_already_admitted_until_the_next_commit(chain):
    # Given Bob's two sends of 30 GNK (he has 50),
    first = signed_tx(send(BOB, ALICE, 30 * GONKA), key=BOB, memo="1")
    second = signed_tx(send(BOB, CAROL, 30 * GONKA), key=BOB, memo="2")
    # then the mempool admits the first and refuses the second on top of it,
    assert chain.app.check_tx(first).code == abci.OK
    assert chain.app.check_tx(second).code == InsufficientFunds.code
    # and after a commit without them the check state is reset: the second passes a recheck.
    chain.run([])
    assert chain.app.check_tx(second, recheck=True).code == abci.OK


def test_a_failing_tx_in_a_block_changes_nothing_but_is_recorded_as_seen(chain):
    # Given a block with a good transfer, then a tx whose second message overdraws Bob,
    good = signed_tx(send(ALICE, CAROL, 10), memo="good")
    bad = signed_tx(send(BOB, CAROL, 7), send(BOB, CAROL, 50 * GONKA), key=BOB)
    result = chain.run([good, bad])
    # then the good one applied, the bad one failed as a whole (its first message too),
    assert result.tx_results[0].code == abci.OK
    failed = result.tx_results[1]
    assert (failed.code, failed.codespace) == (InsufficientFunds.code, "bank")
    assert failed.log.startswith("message 1 (bank/MsgSend):") and failed.events == ()
    assert chain.balance(CAROL) == 10 and chain.balance(BOB) == 50 * GONKA
    # and its hash is remembered: the same bytes cannot run again.
    assert chain.run([bad]).tx_results[0].code == abci.ERR_DUPLICATE


def test_coins_cannot_be_sent_into_a_module_account(chain):
    # Given the gov module account holds a proposal's deposit of 5,
    gov = module_address("gov")
    proposal = MsgSubmitProposal(proposer=ALICE.address, initial_deposit=5, title="t",
                                 changes=(ParamChange(module="bank", key="send_enabled",
                                                      value="false"),))
    assert chain.run([signed_tx(proposal)]).tx_results[0].code == abci.OK
    assert chain.query("auth/account", address=gov)["module"] == "gov"
    # when Bob sends to it,
    result = chain.run([signed_tx(send(BOB, gov, 1), key=BOB)])
    # then bank refuses, and the escrow holds only the deposit.
    assert (result.tx_results[0].code, result.tx_results[0].codespace) == (103, "bank")
    assert "gov module's account" in result.tx_results[0].log
    assert chain.query("bank/module_account", name="gov") == {"name": "gov", "address": gov,
                                                             "amount": 5}


def test_transfers_can_be_disabled_by_a_bank_param(tmp_path):
    c = Chain(tmp_path / "s.db", make_genesis(app_params={"bank": {"send_enabled": False}}))
    result = c.run([signed_tx(send(ALICE, BOB, 1))])
    assert (result.tx_results[0].code, result.tx_results[0].codespace) == (102, "bank")
    assert c.balance(BOB) == 50 * GONKA
    c.close()


def test_mint_and_burn_keep_the_supply_equal_to_the_sum_of_balances(chain):
    # Given a context on top of the committed genesis state,
    store = StateStore(chain.path)
    overlay = Overlay(store)
    ctx = Context(overlay, "c", 1, 0, dispatch=lambda c, m: None)
    # when a module mints, releases part to Carol, takes escrow from Alice and burns,
    bank.mint(ctx, "rewards", 1_000)
    bank.release(ctx, "rewards", CAROL.address, 400)
    bank.escrow(ctx, ALICE.address, "rewards", 100)
    bank.burn(ctx, "rewards", 650)
    # then supply and balances moved together,
    assert bank.supply(overlay) == 150 * GONKA + 1_000 - 650
    assert bank.total_balances(overlay) == bank.supply(overlay)
    assert bank.balance(overlay, module_address("rewards")) == 50
    assert bank.balance(overlay, CAROL.address) == 400
    # and over-burning, over-releasing and minting past the maximum are refused.
    with pytest.raises(InsufficientFunds):
        bank.burn(ctx, "rewards", 51)
    with pytest.raises(InsufficientFunds):
        bank.release(ctx, "rewards", BOB.address, 51)
    with pytest.raises(SupplyOverflow):
        bank.mint(ctx, "rewards", MAX_AMOUNT)
    with pytest.raises(ValueError):
        bank.escrow(ctx, ALICE.address, "rewards", -1)
    assert bank.total_balances(overlay) == bank.supply(overlay)
    store.close()


transfers = st.lists(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 60 * GONKA)),
             min_size=0, max_size=5),
    min_size=1, max_size=4,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=transfers)
def test_random_transfers_conserve_supply_and_never_go_negative(blocks):
    # Given four accounts and blocks of random transfers (many more than their balance),
    balances = {ALICE.address: 100 * GONKA, BOB.address: 50 * GONKA}
    with tempfile.TemporaryDirectory() as tmp:
        chain = Chain(Path(tmp) / "s.db", make_genesis(balances))
        model = {k.address: balances.get(k.address, 0) for k in KEYS}
        for n, block in enumerate(blocks):
            txs = [signed_tx(send(KEYS[f], KEYS[t], amount), key=KEYS[f], memo=f"{n}.{i}")
                   for i, (f, t, amount) in enumerate(block)]
            # when each block runs,
            results = chain.run(txs).tx_results
            for (f, t, amount), r in zip(block, results, strict=True):
                sender, recipient = KEYS[f].address, KEYS[t].address
                # then a transfer succeeds exactly when the sender could pay,
                assert (r.code == abci.OK) == (model[sender] >= amount)
                if r.code == abci.OK:
                    model[sender] -= amount
                    model[recipient] += amount
            # and balances match the model, none negative, summing to the unchanged supply.
            actual = {a: chain.balance(a) for a in model}
            assert actual == model and min(actual.values()) >= 0
            assert chain.query("bank/invariants")["holds"]
            assert chain.query("bank/supply")["amount"] == 150 * GONKA
        chain.close()
