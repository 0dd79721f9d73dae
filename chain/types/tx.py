"""Transactions: a body of messages signed by one secp256k1 account key (DESIGN.md sections 3-4).

The signature covers `sign_bytes(body)`: the canonical MessagePack of the body, whose first field
is the tag "gonka/TxBody" (domain separation from every other signed thing) and which carries the
chain id (no replay across chains). There is no account sequence: replay within a chain is stopped
by `timeout_height` and the chain's record of tx hashes seen before it.

The tx hash is BLAKE3-256 of the tx's canonical bytes. Since `decode` rejects every non-canonical
encoding, a signed tx has exactly one hash.

Checks here are stateless (encoding, signature, who signed which message). This module must never
read chain state, the clock or the network.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from chain.crypto import secp256k1
from chain.crypto.address import address_from_pubkey
from chain.crypto.hashing import blake3_256
from chain.types.codec import MAX_TX_BYTES, decode, encode, validated
from chain.types.common import AccountPubKey, ChainId, Height, Signature
from chain.types.msgs import Msg

MAX_TX_MSGS = 64
MAX_MEMO_CHARS = 256


class InvalidTx(ValueError):
    """A decoded transaction that breaks a stateless rule; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid transaction: {reason}")
        self.reason = reason


class WrongSigner(InvalidTx):
    """Message `index` needs `expected`'s signature but the tx is signed by `signer`."""

    def __init__(self, index: int, expected: str, signer: str) -> None:
        super().__init__(
            f"message {index} must be signed by {expected}, the tx is signed by {signer}"
        )
        self.index = index
        self.expected = expected
        self.signer = signer


class BadSignature(InvalidTx):
    def __init__(self, signer: str) -> None:
        super().__init__(f"signature does not verify for {signer} over this body and chain id")
        self.signer = signer


class TxBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="type",
             tag="gonka/TxBody"):
    """What the signer signs: the messages, for which chain, valid up to which height."""

    chain_id: ChainId
    messages: Annotated[tuple[Msg, ...], msgspec.Meta(min_length=1, max_length=MAX_TX_MSGS)]
    memo: Annotated[str, msgspec.Meta(max_length=MAX_MEMO_CHARS)]
    # Last height at which the tx may be included; the chain remembers its hash until then.
    timeout_height: Height


class Tx(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A signed transaction: the body, the signer's compressed public key and its signature."""

    body: TxBody
    pubkey: AccountPubKey
    signature: Signature

    def __post_init__(self) -> None:
        # Only the prefix byte is checked here (whether the point is on the curve is the signature
        # check's business); it is what `signer` needs, so `signer` cannot fail on a decoded tx.
        if len(self.pubkey) != 33 or self.pubkey[0] not in (2, 3):
            raise ValueError(
                "pubkey must be a 33-byte compressed secp256k1 key starting with 0x02 or 0x03, "
                f"got {len(self.pubkey)} bytes starting with {self.pubkey[:1].hex() or 'nothing'}"
            )

    @property
    def signer(self) -> str:
        """The account address of `pubkey`."""
        return address_from_pubkey(self.pubkey)

    @property
    def hash(self) -> bytes:
        """BLAKE3-256 of the canonical bytes: the tx's id in blocks, the RPC and replay checks."""
        return blake3_256(encode(self))

    def verify_signature(self) -> bool:
        """True iff `signature` is `pubkey`'s valid low-S signature over `sign_bytes(body)`."""
        return secp256k1.verify(self.pubkey, sign_bytes(self.body), self.signature)

    def check_signers(self) -> None:
        """Raise WrongSigner unless the tx signer is the signer every message requires.

        For MsgExec that is the grantee; the inner messages' signers are the granters, whose
        grants the state machine checks.
        """
        signer = self.signer
        for i, msg in enumerate(self.body.messages):
            for expected in msg.signers:
                if expected != signer:
                    raise WrongSigner(i, expected, signer)

    def validate_basic(self) -> None:
        """All stateless checks a decoded tx still needs: signers, then the signature.

        Raises WrongSigner or BadSignature. The mempool may instead call `check_signers` and
        verify signatures in batches through `native.verify_batch_secp256k1`.
        """
        self.check_signers()
        if not self.verify_signature():
            raise BadSignature(self.signer)


def sign_bytes(body: TxBody) -> bytes:
    """The exact bytes an account signs for `body`."""
    return encode(body)


def sign_tx(body: TxBody, key: secp256k1.PrivateKey) -> Tx:
    """Sign `body` with `key`. Raises DecodeError if the body breaks a wire rule (peers would
    refuse it) and WrongSigner if `key` is not the signer its messages require."""
    body = validated(body)
    tx = Tx(body=body, pubkey=key.public_key, signature=key.sign(sign_bytes(body)))
    tx.check_signers()
    return tx


def tx_hash(raw: bytes) -> bytes:
    """Hash of a tx from its raw bytes, equal to `decode_tx(raw).hash` for any valid tx."""
    return blake3_256(raw)


def decode_tx(raw: bytes) -> Tx:
    """Decode and validate the encoding of a tx from untrusted bytes; raises DecodeError only.

    The signature and signers are not checked here: call `validate_basic`.
    """
    return decode(raw, Tx, max_size=MAX_TX_BYTES)
