"""The two shipped parameter profiles, as genesis `app_params`: `mainnet` (Gonka's values: a
17,280-block epoch, about a day) and `devnet` (an epoch of 40 blocks, well under a minute at the
devnet's one-second blocks, with the small PoC function and free-then-cheap inference).

Values absent here take the params types' defaults, which are the mainnet values.
"""

from __future__ import annotations

from typing import Any

from chain.types.common import NGONKA_PER_GONKA

DEVNET_MODEL = "gonka/tiny-llama"

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "mainnet": {
        "epochs": {},
        "poc": {"param_set": "mainnet"},
        "collateral": {"collateral_per_weight_unit": 4_200_000_000},
        "rewards": {"work_vesting_epochs": 180, "reward_vesting_epochs": 180},
        "models": {"models": [
            {"id": "Qwen/QwQ-32B", "hf_repo": "Qwen/QwQ-32B",
             "units_of_compute_per_token": 1_000, "throughput_per_nonce": 1_000,
             "validation_threshold_ppm": 980_000},
            {"id": "Qwen/Qwen2.5-7B-Instruct", "hf_repo": "Qwen/Qwen2.5-7B-Instruct",
             "units_of_compute_per_token": 100, "throughput_per_nonce": 10_000,
             "validation_threshold_ppm": 980_000},
        ]},
    },
    "devnet": {
        "epochs": {"epoch_length": 40, "first_poc_start": 20, "sprint_blocks": 8,
                   "exchange_blocks": 3, "validation_blocks": 6, "set_new_validators_delay": 2,
                   "inference_validation_cutoff": 4},
        "poc": {"param_set": "test", "validation_sample_size": 64},
        "inference": {"expiration_blocks": 20, "grace_period_end_epoch": 2,
                      "utilization_window_s": 30},
        "validation": {"vote_period_blocks": 10},
        # A proposal decided within an epoch of the devnet, not in mainnet's 8 hours.
        "gov": {"deposit_period_blocks": 40, "voting_period_blocks": 40},
        "reputation": {"epochs_to_max": 10},
        "rewards": {"initial_epoch_reward": 1_000 * NGONKA_PER_GONKA},
        "collateral": {"grace_period_end_epoch": 1_000_000},
        "models": {"models": [
            {"id": DEVNET_MODEL, "units_of_compute_per_token": 1, "throughput_per_nonce": 1,
             "validation_threshold_ppm": 900_000, "base_per_token_price": 10},
        ]},
    },
}


def profile_params(name: str) -> dict[str, dict[str, Any]]:
    """A copy of profile `name`'s app_params (KeyError naming the known profiles)."""
    try:
        profile = PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown params profile {name!r}; known: {sorted(PROFILES)}") from None
    return {module: dict(values) for module, values in profile.items()}
