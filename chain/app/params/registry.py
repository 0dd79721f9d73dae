"""Which module has which parameters type: the one list to extend when a module gets params.

Each type is a frozen `msgspec.Struct` with `forbid_unknown_fields=True`, a default for every
field (the chain starts from them when genesis says nothing) and constraints as `msgspec.Meta`;
it may define `validate(self)` raising ValueError for rules across fields. Values are integers,
strings, booleans and lists/dicts of them: no floats (fractions are basis points).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from chain.app.bank.params import BankParams
from chain.app.collateral.params import CollateralParams
from chain.app.epochs.params import EpochParams
from chain.app.gov.params import GovParams
from chain.app.inference.params import InferenceParams
from chain.app.models.params import ModelsParams
from chain.app.poc.params import PocChainParams
from chain.app.reputation.params import ReputationParams
from chain.app.rewards.params import RewardsParams
from chain.app.validation.params import ValidationParams

PARAMS_TYPES: Mapping[str, type] = MappingProxyType({
    "bank": BankParams,
    "gov": GovParams,
    "epochs": EpochParams,
    "poc": PocChainParams,
    "models": ModelsParams,
    "inference": InferenceParams,
    "validation": ValidationParams,
    "reputation": ReputationParams,
    "rewards": RewardsParams,
    "collateral": CollateralParams,
})

# The consensus parameters come from genesis and are readable as params/consensus, but gov cannot
# change them: consensus reads them too and has no way yet to learn of a change.
CONSENSUS = "consensus"
if CONSENSUS in PARAMS_TYPES:
    raise RuntimeError("'consensus' is reserved for the genesis consensus parameters")
