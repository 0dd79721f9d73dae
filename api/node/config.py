"""The API node's settings: `HOME/api/config.toml` (or a JSON file), decoded and validated by
its msgspec type, with command-line overrides on top.

Every field has a default except the chain account, so a file may set only what differs:

    account = "gonka1..."                 # the host's (cold) account: creator of its messages
    signer_key = "api-warm"               # a key of HOME/keyring (`gonka keys add`), or
    # signer_key_file = "warm.key"        # a file holding the 64 hex characters of a key
    chain_rpc = "http://127.0.0.1:26657"
    public_url = "http://my-host.example:9000"

    [public]                              # [callbacks] (9100) and [admin] (9200) alike
    host = "0.0.0.0"
    port = 9000

    validator_key = "3a5f..."             # `gonka chain show-validator`: register at start

    [[ml_nodes]]
    id = "gpu0"
    url = "http://10.0.0.5:8080"
    models = ["Qwen/Qwen2.5-7B-Instruct"]
    max_concurrent = 64                   # requests leased to it at once

    [broker]                              # how the ML nodes are driven (defaults shown)
    probe_timeout_s = 5.0
    poll_interval_s = 10.0

    [poc]
    commit_every_blocks = 3

The ML nodes: `ml_nodes` declares them; the broker (api/broker) drives each through the epoch's
stages and lends those serving a model to the request paths. The admin API (/admin/v1/nodes on
the admin server) adds, removes, enables and disables nodes at run time; its list is kept in
STATE_DIR/ml_nodes.json and read back at the next start, where every `ml_nodes` entry missing
from it is added again (remove a node from the config to be rid of it for good).

Registration: when `validator_key` (the hex ed25519 consensus key of the host's chain node) is
set and the account is not yet a participant, the node registers it at start
(MsgRegisterParticipant with `public_url`, that key, the ML nodes and, for a warm signer, its
public key as worker_key). An existing registration is left as it is.

The ML nodes post their PoC batches to the callbacks server, at `callbacks_url` (default:
http://HOST:PORT of the [callbacks] server as bound).

The signer key may be the account key itself or a warm key that the account granted the
inference messages (authz; the TxSender wraps its messages in MsgExec). A keyring key that is
encrypted is opened with $GONKA_KEYRING_PASSPHRASE; an unencrypted one (the keyring's "test"
backend) or a key file needs none: devnet and tests only.

The callback and admin servers bind to 127.0.0.1 by default; bound anywhere else they require
`Authorization: Bearer <token>` ($GONKA_API_ADMIN_TOKEN / $GONKA_API_CALLBACK_TOKEN, or
`token` in their section), and the node refuses to start without one.

This module never logs or prints a secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec

from chain.crypto import secp256k1
from chain.crypto.address import address_to_bytes
from chain.crypto.errors import CryptoError, InvalidAddress
from chain.crypto.keystore import Keystore

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

CONFIG_FILE = "config.toml"
API_DIR = "api"
PASSPHRASE_ENV = "GONKA_KEYRING_PASSPHRASE"
ADMIN_TOKEN_ENV = "GONKA_API_ADMIN_TOKEN"
CALLBACK_TOKEN_ENV = "GONKA_API_CALLBACK_TOKEN"


class ConfigError(ValueError):
    """The API node cannot start on these settings; the message says which and why."""


class ServerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Port = 9000
    # Bearer token required on every request when set (and always when not on loopback, for
    # the admin and callback servers).
    token: str | None = None

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK


class MlNodeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ML node of the static pool: its base URL (control API under /api/v1, OpenAI API
    under /v1) and the models it serves."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://")]
    models: tuple[str, ...] = ()
    # `Authorization: Bearer <token>` the ML node requires, if any.
    token: str | None = None
    # Requests leased to it at once (inference and validation replays together).
    max_concurrent: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 64
    # A disabled node is kept stopped (the admin API switches it).
    enabled: bool = True


class BrokerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the broker drives the ML nodes (api.broker.Broker)."""

    # A state probe unanswered this long marks the node unreachable.
    probe_timeout_s: Seconds = 5.0
    # Each node is probed at every block and at least this often.
    poll_interval_s: Seconds = 10.0
    # A stop / PoC start command; loading a model for inference; recomputing a PoC batch.
    command_timeout_s: Seconds = 120.0
    inference_up_timeout_s: Seconds = 1800.0
    validate_timeout_s: Seconds = 600.0
    # First delay before a refused command is tried again (doubling up to 60 s).
    retry_delay_s: Seconds = 1.0


class PocConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The PoC orchestration (api.poc.orchestrator)."""

    # A new PoC commit (when the nonce count grew) at most this often, and always at the last
    # height whose tx can land before the commit deadline.
    commit_every_blocks: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 3
    # Fetching another host's proofs: per attempt, and attempts.
    proof_timeout_s: Seconds = 30.0
    proof_attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 2


class LimitsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Larger request bodies are refused with 413.
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 << 20)] = 1 << 20
    # The completion limit assumed (escrowed, and passed to the ML node) when a request names
    # none: the reference's DefaultMaxTokens.
    default_max_tokens: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 5000
    # Top-k logprobs the executor always records for the validators (reference: 5).
    record_top_logprobs: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5
    # TA -> executor: connecting, and the longest silence while a response streams.
    executor_connect_timeout_s: Seconds = 5.0
    executor_read_timeout_s: Seconds = 300.0
    # Executors tried for one request: another is chosen (by weight, among those not tried)
    # when one cannot be reached or answers 503 (it did nothing: no ML node, no chain).
    executor_attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    # Executor -> ML node, likewise.
    mlnode_connect_timeout_s: Seconds = 5.0
    mlnode_read_timeout_s: Seconds = 300.0
    # Counting prompt tokens with an ML node's /tokenize; past this, a byte-length estimate.
    tokenize_timeout_s: Seconds = 2.0
    # How long a request waits for a first chain snapshot (at start-up) before a 503.
    chain_state_wait_s: Seconds = 5.0


class ApiNodeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # The host's account address (bech32): transfer agent / executor in its messages.
    account: str = ""
    # A keyring key name (HOME/keyring) or a file with the hex private key; exactly one.
    signer_key: str | None = None
    signer_key_file: str | None = None
    chain_rpc: str = "http://127.0.0.1:26657"
    # The URL other hosts reach this node's public server at (its participant inference_url);
    # an executor chosen whose URL this is runs in-process. Default: http://HOST:PORT.
    public_url: str = ""
    # The URL this host's ML nodes reach the callbacks server at. Default: http://HOST:PORT
    # of the [callbacks] server as bound.
    callbacks_url: str = ""
    # The host chain node's consensus public key (hex, `gonka chain show-validator`): when set,
    # the node registers the account as a participant at start if it is not one yet.
    validator_key: str = ""
    public: ServerConfig = ServerConfig(host="0.0.0.0", port=9000)
    callbacks: ServerConfig = ServerConfig(host="127.0.0.1", port=9100)
    admin: ServerConfig = ServerConfig(host="127.0.0.1", port=9200)
    ml_nodes: tuple[MlNodeConfig, ...] = ()
    limits: LimitsConfig = LimitsConfig()
    broker: BrokerConfig = BrokerConfig()
    poc: PocConfig = PocConfig()
    # Where the node keeps its state (outbox, replay cache, payloads, event cursor); relative
    # paths are under the home folder. Default: HOME/api.
    state_dir: str = ""
    # Payloads are kept for the epoch they were served in and this many more.
    payload_epochs: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    log_level: Annotated[str, msgspec.Meta(pattern="^(debug|info|warning|error)$")] = "info"

    def __post_init__(self) -> None:
        ids = [n.id for n in self.ml_nodes]
        if len(set(ids)) != len(ids):
            raise ValueError("two ml_nodes share an id")
        if self.validator_key:
            try:
                key = bytes.fromhex(self.validator_key)
            except ValueError:
                key = b""
            if len(key) != 32:
                raise ValueError("validator_key must be 64 hex characters (an ed25519 public "
                                 "key, as `gonka chain show-validator` prints)")

    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.public.host in ("0.0.0.0", "::") else self.public.host
        return f"http://{host}:{self.public.port}"


def load_config(path: Path | str, overrides: dict[str, Any] | None = None) -> ApiNodeConfig:
    """The settings in `path` (TOML, or JSON when it ends in .json) with `overrides` (dotted
    keys, e.g. {"public.port": 9001}) applied on top; ConfigError naming the problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    try:
        raw = (msgspec.json.decode(data) if path.suffix == ".json"
               else msgspec.toml.decode(data))
    except msgspec.DecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table of settings")
    return config_from(raw, overrides, source=str(path))


def config_from(raw: dict[str, Any], overrides: dict[str, Any] | None = None, *,
                source: str = "settings") -> ApiNodeConfig:
    merged = _apply(raw, overrides or {})
    try:
        return msgspec.convert(merged, ApiNodeConfig)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{source}: {e}") from None


def _apply(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        table = out
        for p in parents:
            table = table.setdefault(p, {})
        table[leaf] = value
    return out


@dataclass(frozen=True)
class ResolvedConfig:
    """Settings checked against the world: the signer key loaded, tokens resolved, paths made
    absolute. What `serve_api` runs on."""

    config: ApiNodeConfig
    home: Path
    state_dir: Path
    signer: secp256k1.PrivateKey
    account: str
    public_url: str
    admin_token: str | None
    callback_token: str | None


def resolve(config: ApiNodeConfig, home: Path | str, *,
            signer: secp256k1.PrivateKey | None = None) -> ResolvedConfig:
    """Load the signer key (unless given), check the account and the server tokens."""
    home = Path(home).expanduser()
    account = config.account
    if signer is None:
        signer = load_signer(config, home)
    if not account:
        account = signer.address
    try:
        address_to_bytes(account)
    except InvalidAddress as e:
        raise ConfigError(f"account {account!r}: {e.reason}") from None
    admin_token = config.admin.token or os.environ.get(ADMIN_TOKEN_ENV) or None
    callback_token = config.callbacks.token or os.environ.get(CALLBACK_TOKEN_ENV) or None
    for name, server, token in (("admin", config.admin, admin_token),
                                ("callbacks", config.callbacks, callback_token)):
        if not server.loopback and token is None:
            env = ADMIN_TOKEN_ENV if name == "admin" else CALLBACK_TOKEN_ENV
            raise ConfigError(f"[{name}] binds to {server.host}, not a loopback address: set "
                              f"its token (or ${env}) so that it requires a bearer token")
    state_dir = Path(config.state_dir) if config.state_dir else Path(API_DIR)
    if not state_dir.is_absolute():
        state_dir = home / state_dir
    return ResolvedConfig(config=config, home=home, state_dir=state_dir, signer=signer,
                          account=account, public_url=config.effective_public_url(),
                          admin_token=admin_token, callback_token=callback_token)


def load_signer(config: ApiNodeConfig, home: Path) -> secp256k1.PrivateKey:
    if (config.signer_key is None) == (config.signer_key_file is None):
        raise ConfigError("set exactly one of signer_key (a keyring key name) and "
                          "signer_key_file (a file with the hex private key)")
    if config.signer_key_file is not None:
        path = Path(config.signer_key_file).expanduser()
        if not path.is_absolute():
            path = home / path
        try:
            text = path.read_text().strip()
        except OSError as e:
            raise ConfigError(f"signer_key_file {path}: {e.strerror or e}") from None
        try:
            return secp256k1.PrivateKey.from_hex(text)
        except (ValueError, CryptoError):
            raise ConfigError(f"signer_key_file {path}: not a private key (64 hex "
                              "characters, as `gonka keys export NAME` prints)") from None
    assert config.signer_key is not None
    store = Keystore(home)
    try:
        info = store.show(config.signer_key)
        passphrase = os.environ.get(PASSPHRASE_ENV) if info.encrypted else None
        if info.encrypted and passphrase is None:
            raise ConfigError(f"signer key {config.signer_key!r} is encrypted: set "
                              f"${PASSPHRASE_ENV}")
        return store.load(config.signer_key, passphrase)
    except CryptoError as e:
        raise ConfigError(f"signer key {config.signer_key!r}: {e}") from None
