"""Handler of MsgRegisterParticipant: register a host, or update its URL, consensus key, worker
key and ML nodes. An update never resets its balance, stats, status or history (the reference's
re-registration wiped them). A consensus key belongs to one host; every model an ML node names
must be in the registry."""

from __future__ import annotations

import msgspec

from chain.app.context import Context
from chain.app.models.state import get_model
from chain.app.participants import state
from chain.app.validators.state import get_validator
from chain.types.msgs import MsgRegisterParticipant


class ValidatorKeyTaken(state.ParticipantError):
    code = 502

    def __init__(self, key: bytes, owner: str) -> None:
        super().__init__(f"validator key {key.hex()} already belongs to {owner}")
        self.key, self.owner = key, owner


class UnknownModel(state.ParticipantError):
    code = 503

    def __init__(self, model: str, node_id: str) -> None:
        super().__init__(f"ML node {node_id} serves model {model!r}, which is not in the "
                         "model registry")
        self.model, self.node_id = model, node_id


def handle_register(ctx: Context, msg: MsgRegisterParticipant) -> None:
    owner = state.owner_of_validator_key(ctx.store, msg.validator_key)
    if owner is None:
        # A genesis validator's key belongs to its operator.
        validator = get_validator(ctx.store, msg.validator_key)
        if validator is not None:
            owner = validator.operator
    if owner is not None and owner != msg.participant:
        raise ValidatorKeyTaken(msg.validator_key, owner)
    for node in msg.ml_nodes:
        for model in node.models:
            if get_model(ctx.store, model) is None:
                raise UnknownModel(model, node.node_id)
    old = state.get_participant(ctx.store, msg.participant)
    if old is None:
        participant = state.Participant(
            address=msg.participant, inference_url=msg.inference_url,
            validator_key=msg.validator_key, ml_nodes=msg.ml_nodes, join_height=ctx.height,
            worker_key=msg.worker_key)
        event = "participant_registered"
    else:
        participant = msgspec.structs.replace(
            old, inference_url=msg.inference_url, validator_key=msg.validator_key,
            ml_nodes=msg.ml_nodes, worker_key=msg.worker_key)
        event = "participant_updated"
    state.put_participant(ctx.store, participant)
    state.set_validator_key_owner(ctx.store, old.validator_key if old else None,
                                  msg.validator_key, msg.participant)
    ctx.emit(event, participant=msg.participant, inference_url=msg.inference_url,
             ml_nodes=len(msg.ml_nodes))


HANDLERS = {MsgRegisterParticipant: handle_register}
