"""The signed byte strings of the inference protocol, and the seed commitment, shared by the chain
(which checks them) and the API node (which produces them). Pure functions, no state.

An inference is authorised by three secp256k1 signatures (ECDSA over SHA-256 of these bytes):

* the developer signs `request_sign_bytes(prompt_hash, timestamp, transfer_agent)`; that signature
  *is* the inference id (low-S and RFC 6979 make it unique per request, so a replayed request has
  the same id and is refused);
* the transfer agent signs `transfer_sign_bytes(...)`: the same plus the executor it chose;
* the executor signs `execution_sign_bytes(...)`: the transfer bytes plus what it produced.

`prompt_hash` and `response_hash` are BLAKE3-256 of the exact request and response bodies; the
payloads stay with the API nodes. Every field is fixed-width or length-prefixed so that no two
different tuples give the same bytes.
"""

from __future__ import annotations

from chain.crypto.hashing import blake3_256

REQUEST_DOMAIN = b"gonka/inference/request/v1\x00"
TRANSFER_DOMAIN = b"gonka/inference/transfer/v1\x00"
EXECUTION_DOMAIN = b"gonka/inference/execution/v1\x00"
SEED_DOMAIN = b"gonka/validation/seed/v1\x00"


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _text(s: str) -> bytes:
    raw = s.encode()
    return len(raw).to_bytes(2, "big") + raw


def request_sign_bytes(prompt_hash: bytes, timestamp_ns: int, transfer_agent: str) -> bytes:
    return REQUEST_DOMAIN + prompt_hash + _u64(timestamp_ns) + _text(transfer_agent)


def transfer_sign_bytes(prompt_hash: bytes, timestamp_ns: int, transfer_agent: str,
                        executor: str, model: str) -> bytes:
    return (TRANSFER_DOMAIN + prompt_hash + _u64(timestamp_ns) + _text(transfer_agent)
            + _text(executor) + _text(model))


def execution_sign_bytes(prompt_hash: bytes, timestamp_ns: int, transfer_agent: str,
                         executor: str, model: str, response_hash: bytes, prompt_tokens: int,
                         completion_tokens: int) -> bytes:
    return (EXECUTION_DOMAIN + prompt_hash + _u64(timestamp_ns) + _text(transfer_agent)
            + _text(executor) + _text(model) + response_hash + _u64(prompt_tokens)
            + _u64(completion_tokens))


def seed_commitment(participant: str, epoch: int, seed: bytes) -> bytes:
    """What MsgSubmitSeed carries for a 32-byte secret `seed`; MsgClaimRewards reveals `seed`."""
    if len(seed) != 32:
        raise ValueError(f"a seed is 32 bytes, got {len(seed)}")
    return blake3_256(SEED_DOMAIN + _text(participant) + _u64(epoch) + seed)
