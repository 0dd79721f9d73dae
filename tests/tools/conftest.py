"""Every CLI test gets its own home folder and cheap Argon2id (GONKA_KEYRING_KDF=minimum: the
documented test-only preset), and never inherits a passphrase from the environment."""

from __future__ import annotations

import getpass
import io
import sys
from dataclasses import dataclass, field

import pytest

from tools.cli import main


@pytest.fixture(autouse=True)
def gonka_env(tmp_path, monkeypatch):
    home = tmp_path / "gonka-home"
    monkeypatch.setenv("GONKA_HOME", str(home))
    monkeypatch.setenv("GONKA_KEYRING_KDF", "minimum")
    monkeypatch.delenv("GONKA_KEYRING_PASSPHRASE", raising=False)
    return home


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@dataclass
class Result:
    code: int
    out: str
    err: str
    prompts: list[str] = field(default_factory=list)

    @property
    def error(self) -> str:
        """The one `error:` line; also checks the run failed cleanly."""
        assert self.code == 1, (self.code, self.out, self.err)
        assert "Traceback" not in self.err
        lines = [line for line in self.err.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, self.err
        return lines[0]


@pytest.fixture
def gonka(monkeypatch, capsys):
    """gonka(*argv, stdin=..., terminal=[answers typed at getpass prompts]) -> Result."""

    def run(*argv: str, stdin: str = "", terminal: list[str] | None = None) -> Result:
        prompts: list[str] = []
        if terminal is None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        else:
            answers = iter(terminal)

            def typed(prompt: str = "") -> str:
                prompts.append(prompt)
                try:
                    return next(answers)
                except StopIteration:  # what getpass does on Ctrl-D
                    raise EOFError from None

            monkeypatch.setattr(sys, "stdin", FakeTerminal(stdin))
            monkeypatch.setattr(getpass, "getpass", typed)
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err, prompts)

    return run
