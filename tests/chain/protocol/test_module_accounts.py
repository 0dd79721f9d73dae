"""The protocol modules' accounts are module accounts from genesis: a plain MsgSend to any of
them is refused by bank (103) before its module ever used it, so each holds only what its
module's books account for."""

from __future__ import annotations

import pytest

from chain.app.auth.state import PROTOCOL_ACCOUNTS, module_address
from chain.types.msgs import MsgSend
from tests.chain.protocol.harness import Host, Net


def test_the_protocol_accounts_are_the_five_protocol_modules():
    assert PROTOCOL_ACCOUNTS == ("inference", "work", "rewards", "vesting", "collateral")


@pytest.mark.parametrize("name", PROTOCOL_ACCOUNTS)
def test_a_send_to_a_protocol_module_account_right_after_genesis_is_refused(tmp_path, name):
    # Given a fresh chain (only genesis committed)
    host = Host(0)
    net = Net(tmp_path / "state.db", [host])
    try:
        assert net.height == 0
        address = module_address(name)
        # the account exists and is marked as the module's
        assert net.query("auth/account", address=address)["module"] == name
        before = (net.balance(host.address), net.balance(address))
        # When a host sends coins to it
        [result] = net.send((host.key, MsgSend(from_address=host.address, to_address=address,
                                               amount=5)))
        # Then bank refuses it as a module account, and no coin moved
        assert (result.code, result.codespace) == (103, "bank"), result.log
        assert f"{name} module's account" in result.log
        assert (net.balance(host.address), net.balance(address)) == before
        assert before[1] == 0
    finally:
        net.close()
