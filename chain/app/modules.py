"""The modules of the application, in the order their block hooks run. Add a module here (and
its params type to chain.app.params.registry): the app routes messages, queries and hooks from
this list, and refuses a list in which two modules handle the same message type.

The epochs module is last: its end-of-block clock (new PoC, group formation, settlement and the
epoch switch) sees the block's transactions and the other modules' end-of-block work (inference
expiry, vote deadlines) first."""

from __future__ import annotations

from chain.app.auth.module import MODULE as AUTH
from chain.app.bank.module import MODULE as BANK
from chain.app.collateral.module import MODULE as COLLATERAL
from chain.app.context import Module
from chain.app.epochs.module import MODULE as EPOCHS
from chain.app.evidence.module import MODULE as EVIDENCE
from chain.app.gov.module import MODULE as GOV
from chain.app.inference.module import MODULE as INFERENCE
from chain.app.models.module import MODULE as MODELS
from chain.app.params.module import MODULE as PARAMS
from chain.app.participants.module import MODULE as PARTICIPANTS
from chain.app.poc.module import MODULE as POC
from chain.app.rewards.module import MODULE as REWARDS
from chain.app.validation.module import MODULE as VALIDATION
from chain.app.validators.module import MODULE as VALIDATORS

MODULES: tuple[Module, ...] = (AUTH, BANK, PARAMS, VALIDATORS, GOV, PARTICIPANTS, MODELS,
                               COLLATERAL, EVIDENCE, POC, INFERENCE, VALIDATION, REWARDS, EPOCHS)
