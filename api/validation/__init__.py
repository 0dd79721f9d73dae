"""The inference validation worker and reward claims (gonka-api-node.md sections 8 and 9):
which completed inferences this host must re-execute (the chain's own selection function), the
executor's payload fetched on signed request and checked against the chain's hashes, a
teacher-forced replay on one of this host's ML nodes, the score (chain/types/inference_scoring),
MsgValidation; revalidation ballots on open votes; MsgClaimRewards with the epoch's seed."""

from api.validation.worker import ValidationWorker, validation_service

__all__ = ["ValidationWorker", "validation_service"]
