"""The layout of a chain node's home folder, in one place.

    HOME/config/config.toml                 node settings (chain.node.config)
    HOME/config/genesis.json                the network's genesis (chain.types.genesis)
    HOME/config/node_key.json               ed25519 p2p identity
    HOME/config/priv_validator_key.json     ed25519 consensus key
    HOME/data/                              state.db, blocks.db, the consensus WAL, sign state
    HOME/keyring/                           account keys (chain.crypto.keystore)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NodeHome:
    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def genesis_file(self) -> Path:
        return self.config_dir / "genesis.json"

    @property
    def node_key_file(self) -> Path:
        return self.config_dir / "node_key.json"

    @property
    def validator_key_file(self) -> Path:
        return self.config_dir / "priv_validator_key.json"

    @property
    def state_db(self) -> Path:
        return self.data_dir / "state.db"

    @property
    def blocks_db(self) -> Path:
        return self.data_dir / "blocks.db"

    @property
    def wal_file(self) -> Path:
        return self.data_dir / "cs.wal"

    @property
    def sign_state_file(self) -> Path:
        return self.data_dir / "priv_validator_state.json"
