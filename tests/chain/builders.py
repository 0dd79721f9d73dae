"""Fixed keys and small builders for the wire-type tests: the same inputs on every run."""

from __future__ import annotations

import msgspec

from chain.crypto import ed25519, secp256k1
from chain.types import (
    Block,
    BlockHeader,
    BlockID,
    BlockIDFlag,
    Commit,
    CommitSig,
    MsgExec,
    MsgGrant,
    MsgSend,
    PartSetHeader,
    Tx,
    TxBody,
    Vote,
    VoteType,
    block_hash,
    commit_hash,
    data_hash,
    encode,
    sign_tx,
    sign_vote,
)
from chain.types.block import EMPTY_EVIDENCE_HASH

CHAIN_ID = "gonka-test-1"
ALICE = secp256k1.PrivateKey(bytes([1]) * 32)
BOB = secp256k1.PrivateKey(bytes([2]) * 32)
CAROL = secp256k1.PrivateKey(bytes([3]) * 32)
VALIDATORS = [ed25519.PrivateKey(bytes([10 + i]) * 32) for i in range(4)]
T0 = 1_700_000_000_000_000_000


def send(frm=ALICE, to=BOB, amount=1_000_000_000) -> MsgSend:
    return MsgSend(from_address=frm.address, to_address=to.address, amount=amount)


def body(*messages, memo="golden", timeout_height=100, chain_id=CHAIN_ID) -> TxBody:
    return TxBody(chain_id=chain_id, messages=messages or (send(),), memo=memo,
                  timeout_height=timeout_height)


def signed(*messages, key=ALICE, **kw) -> Tx:
    return sign_tx(body(*messages, **kw), key)


def grant(granter=ALICE, grantee=BOB, msg_types=("bank/MsgSend",), expiration_height=None):
    return MsgGrant(granter=granter.address, grantee=grantee.address, msg_types=msg_types,
                    expiration_height=expiration_height)


def exec_(grantee=BOB, *msgs) -> MsgExec:
    return MsgExec(grantee=grantee.address, msgs=msgs or (send(),))


def as_tree(obj) -> object:
    """The value as plain dicts/lists/bytes in field order, for hand-made (mis)encodings."""
    return _lists(msgspec.to_builtins(obj, builtin_types=(bytes,)))


def _lists(x):
    if isinstance(x, dict):
        return {k: _lists(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_lists(v) for v in x]
    return x


def raw_msgpack(tree) -> bytes:
    """MessagePack of a tree exactly as given: dict insertion order, no canonical rules."""
    return msgspec.msgpack.encode(tree)


def block_id(seed: int) -> BlockID:
    parts = PartSetHeader(total=1, root=bytes([seed + 1]) * 32)
    return BlockID(hash=bytes([seed]) * 32, parts=parts)


def unsigned_vote(type_=VoteType.PREVOTE, height=5, round_=0, bid=None, index=0) -> Vote:
    return Vote(type=type_, height=height, round=round_, block_id=bid, time_ns=T0 + height,
                validator=VALIDATORS[index].id, validator_index=index, signature=bytes(64))


def commit_for(height: int, bid: BlockID, flags=(BlockIDFlag.COMMIT,) * 4) -> Commit:
    sigs = []
    for i, flag in enumerate(flags):
        if flag == BlockIDFlag.ABSENT:
            sigs.append(CommitSig(flag=flag, validator=VALIDATORS[i].id, time_ns=0, signature=b""))
            continue
        vote = unsigned_vote(VoteType.PRECOMMIT, height, 0,
                             bid if flag == BlockIDFlag.COMMIT else None, i)
        v = sign_vote(CHAIN_ID, vote, VALIDATORS[i])
        sigs.append(CommitSig(flag=flag, validator=v.validator, time_ns=v.time_ns,
                              signature=v.signature))
    return Commit(height=height, round=0, block_id=bid, signatures=tuple(sigs))


def make_block(height=1, txs=None, last_block_id=None, last_commit=None) -> Block:
    txs = (encode(signed()),) if txs is None else tuple(txs)
    header = BlockHeader(
        chain_id=CHAIN_ID, height=height, time_ns=T0 + height, last_block_id=last_block_id,
        last_commit_hash=commit_hash(last_commit), data_hash=data_hash(txs),
        validators_hash=bytes([7]) * 32, next_validators_hash=bytes([7]) * 32,
        app_hash=bytes([8]) * 32, last_results_hash=bytes([9]) * 32,
        evidence_hash=EMPTY_EVIDENCE_HASH, proposer=VALIDATORS[0].id,
    )
    return Block(header=header, txs=txs, last_commit=last_commit)


def chain_of_two() -> tuple[Block, Block]:
    """Block 1 and block 2, the second carrying the commit of the first."""
    b1 = make_block(1)
    bid = BlockID(hash=block_hash(b1.header), parts=PartSetHeader(total=1, root=bytes(32)))
    commit = commit_for(1, bid)
    return b1, make_block(2, last_block_id=bid, last_commit=commit)
