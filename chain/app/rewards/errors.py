"""Errors of the rewards module (codes 1001-1099, codespace "rewards")."""

from __future__ import annotations

from chain.app.errors import TxError


class RewardsError(TxError):
    codespace = "rewards"


class NothingToClaim(RewardsError):
    code = 1001

    def __init__(self, participant: str, epoch: int, settled_epoch: int | None) -> None:
        if settled_epoch is None:
            why = "it has no unclaimed settlement"
        else:
            why = f"its unclaimed settlement is for epoch {settled_epoch}"
        super().__init__(f"{participant} has nothing to claim for epoch {epoch}: {why}")
        self.participant, self.epoch, self.settled_epoch = participant, epoch, settled_epoch


class WrongSeed(RewardsError):
    code = 1002

    def __init__(self, participant: str, epoch: int) -> None:
        super().__init__(f"the seed does not open {participant}'s seed commitment for epoch "
                         f"{epoch}")
        self.participant, self.epoch = participant, epoch


class ValidationsMissing(RewardsError):
    code = 1003

    def __init__(self, participant: str, epoch: int, missing: int, required: int,
                 first: bytes) -> None:
        super().__init__(f"{participant} did not validate {missing} of the {required} "
                         f"inferences its seed required in epoch {epoch} (first: {first.hex()})")
        self.participant, self.epoch = participant, epoch
        self.missing, self.required, self.first = missing, required, first


class NoSeedCommitment(RewardsError):
    code = 1004

    def __init__(self, participant: str, epoch: int, reward: int) -> None:
        super().__init__(f"{participant} committed no seed for epoch {epoch}, so its {reward} "
                         f"ngonka of reward coins cannot be claimed")
        self.participant, self.epoch, self.reward = participant, epoch, reward
