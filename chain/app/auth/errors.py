"""Errors of the auth module (codes 200-299, codespace "auth")."""

from __future__ import annotations

from chain.app.errors import TxError


class AuthError(TxError):
    codespace = "auth"


class GrantNotFound(AuthError):
    code = 201

    def __init__(self, granter: str, grantee: str, msg_type: str) -> None:
        super().__init__(f"{granter} has not granted {grantee} the right to send {msg_type}")
        self.granter, self.grantee, self.msg_type = granter, grantee, msg_type


class GrantExpired(AuthError):
    code = 202

    def __init__(self, granter: str, grantee: str, msg_type: str, expiration_height: int,
                 height: int) -> None:
        super().__init__(f"the grant of {msg_type} from {granter} to {grantee} expired at height "
                         f"{expiration_height} (now {height})")
        self.granter, self.grantee, self.msg_type = granter, grantee, msg_type
        self.expiration_height, self.height = expiration_height, height


class ExpirationInPast(AuthError):
    code = 203

    def __init__(self, expiration_height: int, height: int) -> None:
        super().__init__(f"grant expiration_height {expiration_height} is before the current "
                         f"height {height}")
        self.expiration_height, self.height = expiration_height, height
