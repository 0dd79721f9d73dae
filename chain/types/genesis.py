"""The genesis file: the JSON document every node of one network starts from (DESIGN.md section 4).

It fixes the chain id, the start time, the consensus parameters (block size, timeouts), the first
validator set (ed25519 consensus keys and voting power), the funded accounts and the application
parameters. Decoding is validation: `load_genesis` raises DecodeError for a malformed file, and
`Genesis.validate` for one that is well-formed but inconsistent. No I/O beyond reading the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from chain.crypto.hashing import blake3_256
from chain.types.codec import DecodeError, encode, from_json, to_json
from chain.types.common import Address, Amount, ChainId, TimeNs, check_address

MAX_GENESIS_BYTES = 64 << 20
MAX_VALIDATORS = 10_000
# Voting powers are summed and multiplied in proposer selection; keep the total far from int64.
MAX_TOTAL_POWER = 2**60

Ed25519PubKey = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Millis = Annotated[int, msgspec.Meta(ge=1, le=3_600_000)]


class ConsensusParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Block limits and the Tendermint timeouts: round r of a step waits base + r * delta ms."""

    block_max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16 << 20)] = 4 << 20
    block_max_txs: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 20_000
    timeout_propose_ms: Millis = 1000
    timeout_propose_delta_ms: Millis = 500
    timeout_prevote_ms: Millis = 500
    timeout_prevote_delta_ms: Millis = 500
    timeout_precommit_ms: Millis = 500
    timeout_precommit_delta_ms: Millis = 500
    # Pause after a commit before the next height starts: sets the block time when all is well.
    timeout_commit_ms: Annotated[int, msgspec.Meta(ge=0, le=3_600_000)] = 1000
    # A tx is remembered (and its replay refused) until its timeout_height; cap how far ahead.
    max_tx_timeout_blocks: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000


class GenesisValidator(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A validator of the first block: its ed25519 consensus key, power, and a readable name."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    pubkey: Ed25519PubKey
    power: Annotated[int, msgspec.Meta(ge=1, le=MAX_TOTAL_POWER)]
    # The account that operates it (receives rewards, votes in governance on its behalf).
    operator: Address

    def __post_init__(self) -> None:
        check_address("operator", self.operator)


class GenesisAccount(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    address: Address
    balance: Amount

    def __post_init__(self) -> None:
        check_address("address", self.address)


class Genesis(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    chain_id: ChainId
    genesis_time_ns: TimeNs
    consensus: ConsensusParams = ConsensusParams()
    validators: Annotated[
        tuple[GenesisValidator, ...], msgspec.Meta(max_length=MAX_VALIDATORS)
    ] = ()
    accounts: tuple[GenesisAccount, ...] = ()
    # Application parameters by module ("gov", "bank", ...), each converted to its module's typed
    # params (msgspec.convert) and validated at init_chain; plain values here so that this type
    # does not import chain.app. No floats: every node must hash the same bytes.
    app_params: dict[str, dict[str, int | str | bool | None | list | dict]] = {}

    def validate(self) -> None:
        """Raise DecodeError for a well-formed genesis that no chain could start from."""

        def fail(reason: str) -> DecodeError:
            return DecodeError("Genesis", reason)

        if not self.validators:
            raise fail("at least one validator is needed")
        keys = [v.pubkey for v in self.validators]
        if len(set(keys)) != len(keys):
            raise fail("two validators share a consensus key")
        names = [v.name for v in self.validators]
        if len(set(names)) != len(names):
            raise fail("two validators share a name")
        if sum(v.power for v in self.validators) > MAX_TOTAL_POWER:
            raise fail(f"total voting power exceeds {MAX_TOTAL_POWER}")
        addresses = [a.address for a in self.accounts]
        if len(set(addresses)) != len(addresses):
            raise fail("an account is listed twice")

    @property
    def hash(self) -> bytes:
        """BLAKE3-256 of the canonical MessagePack: nodes compare it in the p2p handshake."""
        return blake3_256(encode(self))


def load_genesis(path: Path) -> Genesis:
    """Read, decode and validate a genesis file; DecodeError (naming the problem) or OSError."""
    data = Path(path).read_bytes()
    genesis = from_json(data, Genesis, max_size=MAX_GENESIS_BYTES)
    genesis.validate()
    return genesis


def dump_genesis(genesis: Genesis) -> bytes:
    """Indented JSON, for humans who edit genesis files."""
    return msgspec.json.format(to_json(genesis), indent=2) + b"\n"
