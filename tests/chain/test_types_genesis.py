"""The genesis file: decoding is validation, and `validate` refuses a genesis no chain could
start from, each with a message that names the problem."""

from __future__ import annotations

import msgspec
import pytest

from chain.crypto.secp256k1 import PrivateKey
from chain.types.codec import DecodeError
from chain.types.genesis import (
    Genesis,
    GenesisAccount,
    GenesisValidator,
    dump_genesis,
    load_genesis,
)

OP = PrivateKey(bytes([3]) * 32).address


def _validator(name: str = "v0", key: int = 1, power: int = 10) -> GenesisValidator:
    return GenesisValidator(name=name, pubkey=bytes([key]) * 32, power=power, operator=OP)


def _genesis(**kw) -> Genesis:
    base = dict(chain_id="test-1", genesis_time_ns=1, validators=(_validator(),),
                accounts=(GenesisAccount(address=OP, balance=5),))
    return Genesis(**{**base, **kw})


def test_a_genesis_round_trips_through_its_file(tmp_path):
    genesis = _genesis(app_params={"gov": {"voting_period": 10}})
    path = tmp_path / "genesis.json"
    path.write_bytes(dump_genesis(genesis))
    again = load_genesis(path)
    assert again == genesis and again.hash == genesis.hash
    # The hash covers every field: another start time is another network.
    assert msgspec.structs.replace(genesis, genesis_time_ns=2).hash != genesis.hash


@pytest.mark.parametrize(("genesis", "message"), [
    (_genesis(validators=()), "at least one validator is needed"),
    (_genesis(validators=(_validator("a", 1), _validator("b", 1))), "share a consensus key"),
    (_genesis(validators=(_validator("a", 1), _validator("a", 2))), "share a name"),
    (_genesis(validators=(_validator("a", 1, 2**60), _validator("b", 2, 2**60))),
     "total voting power exceeds"),
    (_genesis(accounts=(GenesisAccount(address=OP, balance=1),) * 2), "listed twice"),
])
def test_validate_refuses_an_unstartable_genesis(genesis, message):
    with pytest.raises(DecodeError, match=message):
        genesis.validate()


@pytest.mark.parametrize(("text", "where"), [
    (b'{"chain_id": "has space", "genesis_time_ns": 1}', "$.chain_id"),
    (b'{"chain_id": "c", "genesis_time_ns": -1}', "$.genesis_time_ns"),
    (b'{"chain_id": "c", "genesis_time_ns": 1, "unknown": 1}', "unknown"),
    (b'{"chain_id": "c", "genesis_time_ns": 1, "consensus": {"timeout_commit_ms": -5}}',
     "$.consensus.timeout_commit_ms"),
    (b'{"chain_id": "c", "genesis_time_ns": 1, "app_params": {"gov": {"x": 1.5}}}',
     "app_params"),
    (b'{"chain_id": "c", "genesis_time_ns": 1, "accounts": [{"address": "gonka1xyz", '
     b'"balance": 1}]}', "$.accounts[0]"),
    (b"not json", "malformed"),
])
def test_a_malformed_genesis_file_is_one_decode_error_naming_the_field(tmp_path, text, where):
    path = tmp_path / "genesis.json"
    path.write_bytes(text)
    with pytest.raises(DecodeError) as e:
        load_genesis(path)
    assert where.lower() in str(e.value).lower()
