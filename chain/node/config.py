"""Node settings: `HOME/config/config.toml`, decoded and validated by its msgspec type.

Every field has a default, so a file may set only what differs. Addresses are `host:port`; the RPC
binds to 127.0.0.1 unless told otherwise (DESIGN.md section 2). `load_config` raises ConfigError
with the file and the problem; a node never starts on a config it could not fully read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import msgspec

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class ConfigError(ValueError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")


def split_host_port(text: str) -> tuple[str, int]:
    """("127.0.0.1", 26657) from "127.0.0.1:26657"; ValueError naming the text otherwise."""
    m = _HOST_PORT.match(text)
    if not m or int(m["port"]) > 65535:
        raise ValueError(f"expected host:port, got {text!r}")
    return m["host"].strip("[]"), int(m["port"])


def _check_address(field: str, text: str) -> None:
    try:
        split_host_port(text)
    except ValueError as e:
        raise ValueError(f"{field}: {e}") from None


class P2PConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    listen: str = "0.0.0.0:26656"
    # The address other nodes should dial ("" = the listen address).
    external_address: str = ""
    # "nodeid@host:port", nodeid = 40 hex characters of the peer's ed25519 node id.
    persistent_peers: list[str] = []
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=1 << 16, le=64 << 20)] = 20 << 20
    dial_backoff_max_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0

    def __post_init__(self) -> None:
        _check_address("p2p.listen", self.listen)
        if self.external_address:
            _check_address("p2p.external_address", self.external_address)


class RpcConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    listen: str = "127.0.0.1:26657"
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 << 20)] = 2 << 20
    # POST /txs mode=commit waits at most this long for inclusion.
    commit_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 30.0

    def __post_init__(self) -> None:
        _check_address("rpc.listen", self.listen)


class MempoolConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_txs: Annotated[int, msgspec.Meta(ge=1)] = 50_000
    max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 256 << 20
    max_per_sender: Annotated[int, msgspec.Meta(ge=1)] = 5_000


class NodeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    moniker: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "node"
    log_level: Annotated[str, msgspec.Meta(pattern="^(debug|info|warning|error)$")] = "info"
    p2p: P2PConfig = P2PConfig()
    rpc: RpcConfig = RpcConfig()
    mempool: MempoolConfig = MempoolConfig()


def load_config(path: Path) -> NodeConfig:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "no such file (run `gonka chain init` first)") from None
    try:
        return msgspec.toml.decode(data, type=NodeConfig)
    except msgspec.DecodeError as e:
        raise ConfigError(path, str(e)) from None


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return msgspec.json.encode(value).decode()  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def render_config(config: NodeConfig) -> str:
    """The TOML text of `config` (every field written, so the file documents the defaults)."""
    lines = []
    sections = []
    for name in config.__struct_fields__:
        value = getattr(config, name)
        if isinstance(value, msgspec.Struct):
            sections.append((name, value))
        else:
            lines.append(f"{name} = {_toml_value(value)}")
    for section, struct in sections:
        lines.append("")
        lines.append(f"[{section}]")
        for name in struct.__struct_fields__:
            lines.append(f"{name} = {_toml_value(getattr(struct, name))}")
    return "\n".join(lines) + "\n"
