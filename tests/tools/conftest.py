"""Every CLI test gets its own home folder and cheap Argon2id (GONKA_KEYRING_KDF=minimum: the
documented test-only preset), and never inherits a passphrase from the environment."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def gonka_env(tmp_path, monkeypatch):
    home = tmp_path / "gonka-home"
    monkeypatch.setenv("GONKA_HOME", str(home))
    monkeypatch.setenv("GONKA_KEYRING_KDF", "minimum")
    monkeypatch.delenv("GONKA_KEYRING_PASSPHRASE", raising=False)
    return home
