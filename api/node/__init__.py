"""The API node service (DESIGN.md section 6; `gonka api start`).

  config.py       ApiNodeConfig (TOML/JSON + overrides) and its resolution (signer key, tokens)
  chain_state.py  ChainStateCache: the chain as the request paths see it, refreshed per block;
                  TransferAgentKeys: the keys a transfer agent signs with
  stores.py       ReplayCache (ids served, durable) and PayloadStore (what the executor served)
  errors.py       the refusals as types, and their OpenAI-shaped HTTP form
  responses.py    what the executor sends its ML node and records of the answer (pure)
  context.py      ApiNode: what the request paths share
  transfer.py     the transfer-agent path of POST /v1/chat/completions
  executor.py     the executor path
  app.py          the public, callback and admin Quart-trio apps (the validators' payload
                  endpoint included)
  host.py         the host's services from the config: broker, PoC orchestrator, the admin
                  node list on disk, self-registration
  server.py       serve_api: everything above in one nursery, three Hypercorn servers
"""

from api.node.config import ApiNodeConfig, ConfigError, ResolvedConfig, load_config, resolve
from api.node.server import ApiServer, ServerBlueprints, serve_api

__all__ = ["ApiNodeConfig", "ApiServer", "ConfigError", "ResolvedConfig", "ServerBlueprints",
           "load_config", "resolve", "serve_api"]
