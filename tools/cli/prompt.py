"""Reading secrets for CLI commands: mnemonics, private keys and key store passphrases.

On a terminal a secret is read without echo (getpass). When stdin is not a terminal, each secret
is the next line of stdin, in the order the command asks for them (for `keys add --recover`: the
mnemonic, then the passphrase), so scripts can pipe them in. A passphrase comes from
$GONKA_KEYRING_PASSPHRASE when that is set, before any prompt.
This module must never echo, print or log a secret.
"""

from __future__ import annotations

import getpass
import os
import sys

from chain.crypto.errors import WeakPassphrase
from chain.crypto.keystore import MIN_PASSPHRASE_LENGTH
from tools.cli.command import CliError

PASSPHRASE_ENV = "GONKA_KEYRING_PASSPHRASE"


def interactive() -> bool:
    return sys.stdin.isatty()


def read_secret(prompt: str, what: str) -> str:
    """One secret: typed at the terminal without echo, or the next line of stdin."""
    if interactive():
        return _typed(prompt, what)
    line = sys.stdin.readline()
    if not line:
        raise CliError(f"expected {what} on stdin, got end of input")
    return line.rstrip("\r\n")


def new_passphrase() -> str:
    """A passphrase for a new key: the env var, or typed twice on a terminal, or one stdin line."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    passphrase = from_env
    if passphrase is None:
        prompt = f"Enter keyring passphrase (at least {MIN_PASSPHRASE_LENGTH} characters): "
        passphrase = read_secret(prompt, "the keyring passphrase")
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise WeakPassphrase(f"use at least {MIN_PASSPHRASE_LENGTH} characters")
    if from_env is None and interactive():
        if _typed("Re-enter keyring passphrase: ", "the keyring passphrase") != passphrase:
            raise CliError("passphrases do not match")
    return passphrase


def passphrase_for(name: str) -> str:
    """The passphrase that opens key `name`: the env var, a terminal prompt, or one stdin line."""
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if passphrase is not None:
        return passphrase
    return read_secret(f"Enter passphrase for key {name!r}: ", "the keyring passphrase")


def confirm(question: str) -> bool:
    """A yes/no answer (default no), from the terminal or the next line of stdin."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    if not interactive():
        print(file=sys.stderr)
    return answer.strip().lower() in ("y", "yes")


def _typed(prompt: str, what: str) -> str:
    try:
        return getpass.getpass(prompt)
    except EOFError:
        raise CliError(f"expected {what}, got end of input") from None
