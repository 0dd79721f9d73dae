"""Builders for driving GonkaApp directly (no network): a genesis, signed txs and a `Chain` that
makes minimal valid blocks (right height, app hash, last commit, data hash) and commits them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from chain.app.abci import FinalizeBlockResult
from chain.app.app import GonkaApp
from chain.crypto import secp256k1
from chain.types import (
    Block,
    BlockHeader,
    BlockID,
    PartSetHeader,
    TxBody,
    block_hash,
    commit_hash,
    data_hash,
    encode,
    sign_tx,
)
from chain.types.block import EMPTY_EVIDENCE_HASH
from chain.types.genesis import ConsensusParams, Genesis, GenesisAccount, GenesisValidator
from tests.chain.builders import ALICE, BOB, CAROL, CHAIN_ID, T0, VALIDATORS, commit_for

DAVE = secp256k1.PrivateKey(bytes([4]) * 32)
KEYS = (ALICE, BOB, CAROL, DAVE)
GONKA = 10**9


def make_genesis(balances: dict[str, int] | None = None,
                 powers: Sequence[tuple[str, int]] = ((ALICE.address, 10),),
                 app_params: dict | None = None, max_tx_timeout_blocks: int = 100,
                 chain_id: str = CHAIN_ID) -> Genesis:
    """A genesis with `balances` and one validator per (operator, power)."""
    if balances is None:
        balances = {ALICE.address: 100 * GONKA, BOB.address: 50 * GONKA}
    validators = tuple(
        GenesisValidator(name=f"val{i}", pubkey=VALIDATORS[i].public_key, power=power,
                         operator=operator)
        for i, (operator, power) in enumerate(powers)
    )
    return Genesis(
        chain_id=chain_id, genesis_time_ns=T0,
        consensus=ConsensusParams(max_tx_timeout_blocks=max_tx_timeout_blocks),
        validators=validators,
        accounts=tuple(GenesisAccount(address=a, balance=b) for a, b in balances.items()),
        app_params=app_params or {},
    )


def signed_tx(*msgs, key=ALICE, timeout_height: int = 50, memo: str = "",
              chain_id: str = CHAIN_ID) -> bytes:
    body = TxBody(chain_id=chain_id, messages=tuple(msgs), memo=memo,
                  timeout_height=timeout_height)
    return encode(sign_tx(body, key))


class Chain:
    """One app fed blocks in order, as consensus would."""

    def __init__(self, path: Path, genesis: Genesis | None = None, *, init: bool = True) -> None:
        self.path = path
        self.app = GonkaApp(path)
        self.genesis = genesis or make_genesis()
        self.last_block: Block | None = None
        if init:
            self.genesis_hash = self.app.init_chain(self.genesis).app_hash

    @property
    def height(self) -> int:
        return self.app.info().last_height

    def block(self, txs: Sequence[bytes] = (), *, app_hash: bytes | None = None,
              time_ns: int | None = None) -> Block:
        """The next block with `txs`, chained to the last one this Chain committed."""
        height = self.height + 1
        last_id = last_commit = None
        if self.last_block is not None:
            last_id = BlockID(hash=block_hash(self.last_block.header),
                              parts=PartSetHeader(total=1, root=bytes(32)))
            last_commit = commit_for(height - 1, last_id)
        txs = tuple(txs)
        header = BlockHeader(
            chain_id=self.genesis.chain_id, height=height,
            time_ns=T0 + height if time_ns is None else time_ns,
            last_block_id=last_id, last_commit_hash=commit_hash(last_commit),
            data_hash=data_hash(txs), validators_hash=bytes(32), next_validators_hash=bytes(32),
            app_hash=self.app.info().last_app_hash if app_hash is None else app_hash,
            last_results_hash=bytes(32), evidence_hash=EMPTY_EVIDENCE_HASH,
            proposer=VALIDATORS[0].id,
        )
        return Block(header=header, txs=txs, last_commit=last_commit)

    def run(self, txs: Sequence[bytes] = ()) -> FinalizeBlockResult:
        """Finalize and commit the next block with `txs`."""
        block = self.block(txs)
        result = self.app.finalize_block(block)
        self.app.commit()
        self.last_block = block
        return result

    def run_until(self, height: int) -> None:
        while self.height < height:
            self.run()

    def query(self, path: str, **params: str):
        """The decoded JSON value of a query; fails the test on a non-zero code."""
        result = self.app.query(path, dict(params))
        assert result.code == 0, result.log
        return msgspec.json.decode(result.value)

    def balance(self, key_or_address) -> int:
        address = getattr(key_or_address, "address", key_or_address)
        return self.query("bank/balance", address=address)["amount"]

    def reopen(self) -> None:
        self.app.close()
        self.app = GonkaApp(self.path)

    def close(self) -> None:
        self.app.close()


__all__ = ["ALICE", "BOB", "CAROL", "CHAIN_ID", "Chain", "DAVE", "GONKA", "KEYS", "make_genesis",
           "signed_tx"]
