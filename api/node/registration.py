"""`POST /v1/participants`: a host joins through any API node (gonka-api-node.md sections 2 and
13.3), for example a seed node's, before it runs a chain node of its own.

The body is `{"tx": "<base64>"}`: the canonical bytes of a transaction holding exactly one
MsgRegisterParticipant, signed by the participant's own account key. The node checks it (it
decodes, is for this chain, and the participant's signature holds), broadcasts it unchanged
(commit mode) and answers with the chain's verdict:
    200 {address, inference_url, tx_hash, height}    registered (or updated)
    202 {..., height: null}                           accepted, not in a block yet
    400 (OpenAI's error shape)                        anything wrong with the body or the tx,
                                                      or the chain refused it; nothing changes

Why a signed tx and not the reference's `{address, url, validator_key, pub_key, worker_key}`:
the reference's seed node signs MsgSubmitNewUnfundedParticipant itself, so any caller could
register any address with a consensus key of its choosing. Our MsgRegisterParticipant must be
signed by the participant, so the body carries that signature, and the only thing that can be
signed without ambiguity is the tx itself (sign bytes = the tx body with chain id, timeout
height and memo). The node relays it byte for byte: it can neither change nor replay it (the
chain refuses a tx hash it has seen). Building one takes `chain.types` (TxBody, sign_tx,
encode); see api/README.md.

This node relays registrations only: any other message is refused.
"""

from __future__ import annotations

import msgspec

from api.node.context import ApiNode
from api.node.errors import ApiError
from chain.types.codec import DecodeError
from chain.types.msgs import MsgRegisterParticipant, msg_tag
from chain.types.tx import InvalidTx, decode_tx


class RegistrationRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tx: bytes               # base64 in JSON


class Registered(msgspec.Struct, frozen=True):
    address: str
    inference_url: str
    tx_hash: str
    height: int | None      # None: accepted, not included yet


class BadRegistration(ApiError):
    status, code = 400, "invalid_registration"
    param = "tx"


class RegistrationRefused(ApiError):
    """The chain refused the registration (check_tx or execution)."""

    status, code = 400, "registration_refused"
    param = "tx"

    def __init__(self, code: int, codespace: str, log: str, tx_hash: str) -> None:
        super().__init__(f"the chain refused the registration (code {code}"
                         f"{f', {codespace}' if codespace else ''}): {log}")
        self.chain_code, self.codespace, self.log, self.tx_hash = code, codespace, log, tx_hash


async def relay_registration(node: ApiNode, body: bytes) -> Registered:
    try:
        request = msgspec.json.decode(body, type=RegistrationRequest)
    except msgspec.DecodeError as e:
        raise BadRegistration(f"the body must be {{\"tx\": \"<base64 of a signed tx>\"}}: {e}"
                              ) from None
    try:
        tx = decode_tx(request.tx)
    except DecodeError as e:
        raise BadRegistration(f"the tx does not decode: {e.reason}") from None
    messages = tx.body.messages
    if len(messages) != 1 or not isinstance(messages[0], MsgRegisterParticipant):
        tags = ", ".join(msg_tag(type(m)) for m in messages)
        raise BadRegistration("the tx must hold exactly one participants/MsgRegisterParticipant "
                              f"(it holds {tags})")
    msg = messages[0]
    if tx.body.chain_id != node.sender.chain_id:
        raise BadRegistration(f"the tx is for chain {tx.body.chain_id!r}, this node's chain is "
                              f"{node.sender.chain_id!r}")
    try:
        tx.validate_basic()
    except InvalidTx as e:
        raise BadRegistration(f"{e.reason} (the participant signs its own registration)"
                              ) from None
    result = await node.rpc.broadcast(request.tx, "commit")
    if result.code != 0:
        raise RegistrationRefused(result.code, result.codespace, result.log, result.hash)
    if result.result is not None and result.result.code != 0:
        raise RegistrationRefused(result.result.code, result.result.codespace, result.result.log,
                                  result.hash)
    return Registered(address=msg.participant, inference_url=msg.inference_url,
                      tx_hash=result.hash, height=result.height)
