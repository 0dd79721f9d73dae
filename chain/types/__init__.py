"""Wire types of the network: transactions and their messages, blocks, votes, proposals, commits.

These are the `msgspec.Struct`s that cross process boundaries and the one codec that turns them
into bytes (DESIGN.md section 3). The canonical MessagePack form is what is signed and hashed;
decoding is validation and rejects any non-canonical encoding; untrusted input only ever raises
`DecodeError`. `api` and `mlnode` import these types, so they depend on nothing above them.

This package must never do I/O, keep state, read the clock or look at chain state: it defines
what a valid message *looks like*; whether it is allowed is decided by `chain.app` and
`chain.consensus`.
"""

from chain.types.block import Block, BlockHeader, InvalidBlock, block_hash, data_hash, decode_block
from chain.types.block_id import BlockID, PartSetHeader
from chain.types.codec import (
    MAX_TX_BYTES,
    DecodeError,
    decode,
    encode,
    from_json,
    to_json,
    validated,
)
from chain.types.commit import BlockIDFlag, Commit, CommitSig, commit_hash, decode_commit
from chain.types.common import DENOM, MAX_AMOUNT, NGONKA_PER_GONKA, Amount
from chain.types.msgs import MSG_TYPES, Msg, MsgExec, MsgGrant, MsgRevoke, MsgSend
from chain.types.tx import (
    BadSignature,
    InvalidTx,
    Tx,
    TxBody,
    WrongSigner,
    decode_tx,
    sign_bytes,
    sign_tx,
    tx_hash,
)
from chain.types.vote import (
    Proposal,
    Vote,
    VoteType,
    decode_proposal,
    decode_vote,
    proposal_sign_bytes,
    sign_proposal,
    sign_vote,
    verify_proposal,
    verify_vote,
    vote_sign_bytes,
)

__all__ = [
    "Amount",
    "BadSignature",
    "Block",
    "BlockHeader",
    "BlockID",
    "BlockIDFlag",
    "Commit",
    "CommitSig",
    "DENOM",
    "DecodeError",
    "InvalidBlock",
    "InvalidTx",
    "MAX_AMOUNT",
    "MAX_TX_BYTES",
    "MSG_TYPES",
    "Msg",
    "MsgExec",
    "MsgGrant",
    "MsgRevoke",
    "MsgSend",
    "NGONKA_PER_GONKA",
    "PartSetHeader",
    "Proposal",
    "Tx",
    "TxBody",
    "Vote",
    "VoteType",
    "WrongSigner",
    "block_hash",
    "commit_hash",
    "data_hash",
    "decode",
    "decode_block",
    "decode_commit",
    "decode_proposal",
    "decode_tx",
    "decode_vote",
    "encode",
    "from_json",
    "proposal_sign_bytes",
    "sign_bytes",
    "sign_proposal",
    "sign_tx",
    "sign_vote",
    "to_json",
    "tx_hash",
    "validated",
    "verify_proposal",
    "verify_vote",
    "vote_sign_bytes",
]
