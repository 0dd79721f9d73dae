"""The broker: the host's ML nodes, their intended and actual states, and leases (DESIGN.md 6).

  state.py          what each node should do in each epoch stage (pure: `plan`)
  mlnode_client.py  the ML node control API, typed
  broker.py         `Broker`: per-node reconciliation workers, leases, admin operations
  admin.py          `admin_blueprint(broker)`: /admin/v1/nodes...
"""

from api.broker.admin import admin_blueprint
from api.broker.broker import (
    Broker,
    BrokerError,
    DuplicateNode,
    NodeView,
    NoPocValidator,
    UnknownNode,
)
from api.broker.state import Goal, NodeSpec, PocSession, StageInfo, Target, plan

__all__ = ["Broker", "BrokerError", "DuplicateNode", "Goal", "NoPocValidator", "NodeSpec",
           "NodeView", "PocSession", "StageInfo", "Target", "UnknownNode", "admin_blueprint",
           "plan"]
