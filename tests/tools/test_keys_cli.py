"""`gonka keys` through its public interface: main([...]) with stdin/terminal stand-ins, and the
installed console script in a subprocess."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from chain.crypto.secp256k1 import PrivateKey
from testermint_py.cluster import gonka_command

ABANDON = " ".join(["abandon"] * 11 + ["about"])
ABANDON_GONKA = "gonka19rl4cm2hmr8afy4kldpxz3fka4jguq0av42rch"
PASS = "correct horse"


def key_file(home: Path, name: str) -> Path:
    return home / "keyring" / f"{name}.json"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def field_of(out: str, name: str) -> str:
    match = re.search(rf"^{name}: (\S+)$", out, re.MULTILINE)
    assert match, out
    return match[1]


# -- add --recover


@pytest.mark.parametrize(
    ("backend", "stdin"),
    [("file", f"{ABANDON}\n{PASS}\n"), ("test", f"{ABANDON}\n")],
)
def test_recover_gives_the_known_address_every_time(gonka, gonka_env, backend, stdin):
    for name in ("k1", "k2", "k3"):
        result = gonka("keys", "add", name, "--recover", "--keyring-backend", backend, stdin=stdin)

        assert result.code == 0, result.err
        assert field_of(result.out, "address") == ABANDON_GONKA
        assert field_of(result.out, "backend") == backend
        assert "abandon" not in result.out + result.err
        assert PASS not in result.out + result.err
    listed = gonka("keys", "list", "-o", "json")
    assert {k["address"] for k in json.loads(listed.out)} == {ABANDON_GONKA}


def test_recover_on_a_terminal_reads_without_echo_and_asks_the_passphrase_twice(gonka):
    result = gonka("keys", "add", "alice", "--recover", terminal=[ABANDON, PASS, PASS])

    assert result.code == 0, result.err
    assert field_of(result.out, "address") == ABANDON_GONKA
    assert len(result.prompts) == 3
    assert "mnemonic" in result.prompts[0] and "Re-enter" in result.prompts[2]
    exported = gonka("keys", "export", "alice", terminal=[PASS])
    assert exported.prompts == ["Enter passphrase for key 'alice': "]
    assert PrivateKey.from_hex(exported.out).address == ABANDON_GONKA


def test_mismatched_passphrases_on_a_terminal_store_nothing(gonka, gonka_env):
    result = gonka("keys", "add", "alice", "--recover", terminal=[ABANDON, PASS, PASS + "x"])

    assert result.error == "error: passphrases do not match"
    assert not key_file(gonka_env, "alice").exists()


def test_end_of_input_at_a_terminal_prompt_is_a_clear_error(gonka):
    result = gonka("keys", "add", "alice", "--recover", terminal=[])

    assert result.error == "error: expected the mnemonic, got end of input"


def test_short_passphrase_is_refused(gonka, gonka_env):
    result = gonka("keys", "add", "alice", "--recover", stdin=f"{ABANDON}\nshort\n")

    assert "at least 8 characters" in result.error
    assert not key_file(gonka_env, "alice").exists()


def test_missing_stdin_lines_are_a_clear_error(gonka):
    assert gonka("keys", "add", "a", "--recover").error == (
        "error: expected the mnemonic on stdin, got end of input"
    )
    assert "passphrase on stdin" in gonka("keys", "add", "a", "--recover", stdin=ABANDON).error


def test_passphrase_from_the_environment(gonka, monkeypatch):
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", PASS)

    added = gonka("keys", "add", "alice", "--recover", stdin=f"{ABANDON}\n")
    exported = gonka("keys", "export", "alice")

    assert added.code == 0 and exported.code == 0
    assert PrivateKey.from_hex(exported.out).address == ABANDON_GONKA


@pytest.mark.parametrize(
    ("mnemonic", "message"),
    [
        ("hello world this is not a mnemonic", "expected 12, 15, 18, 21 or 24 words, got 7"),
        ("abandon " * 12, "checksum mismatch"),
        (ABANDON.replace("abandon", "abandn", 1), "word 1 'abandn' is not in the BIP-39 English"),
        ("", "it is empty"),
    ],
)
def test_bad_mnemonics_give_one_clear_error_and_store_nothing(gonka, gonka_env, mnemonic, message):
    result = gonka("keys", "add", "alice", "--recover", stdin=f"{mnemonic}\n{PASS}\n")

    assert result.error.startswith("error: invalid mnemonic: ")
    assert message in result.error
    assert not key_file(gonka_env, "alice").exists()


def test_bad_mnemonic_is_reported_before_the_passphrase_is_asked(gonka):
    result = gonka("keys", "add", "alice", "--recover", terminal=["abandon " * 12])

    assert "checksum mismatch" in result.error
    assert len(result.prompts) == 1


# -- add (new key), import, export


def test_new_key_prints_its_mnemonic_last_and_it_recovers_the_same_address(gonka, tmp_path):
    created = gonka("keys", "add", "fresh", stdin=f"{PASS}\n")
    mnemonic = created.out.strip().splitlines()[-1]
    address = field_of(created.out, "address")

    recovered = gonka(
        "keys", "add", "again", "--recover", "--home", str(tmp_path / "elsewhere"),
        "--keyring-backend", "test", stdin=f"{mnemonic}\n",
    )  # fmt: skip

    assert created.code == 0 and len(mnemonic.split()) == 24
    assert "write this mnemonic phrase down" in created.err
    assert field_of(recovered.out, "address") == address
    assert gonka("keys", "export", "fresh", "--mnemonic", stdin=f"{PASS}\n").out == mnemonic + "\n"


def test_new_key_as_json_includes_the_mnemonic(gonka):
    result = gonka("keys", "add", "fresh", "--keyring-backend", "test", "-o", "json")
    shown = json.loads(result.out)

    assert len(shown["mnemonic"].split()) == 24
    assert shown["backend"] == "test" and shown["address"].startswith("gonka1")
    assert shown["hd_path"] == "m/44'/118'/0'/0/0"


def test_account_and_index_flags_pick_another_path(gonka):
    result = gonka(
        "keys", "add", "a", "--recover", "--account", "1", "--index", "2",
        "--keyring-backend", "test", stdin=ABANDON,
    )  # fmt: skip

    assert field_of(result.out, "hd_path") == "m/44'/118'/1'/0/2"
    assert field_of(result.out, "address") != ABANDON_GONKA


def test_export_then_import_gives_the_same_address(gonka):
    gonka("keys", "add", "alice", "--recover", stdin=f"{ABANDON}\n{PASS}\n")

    exported = gonka("keys", "export", "alice", stdin=f"{PASS}\n")
    imported = gonka("keys", "import", "copy", stdin=f"{exported.out}{PASS}\n")

    assert re.fullmatch(r"[0-9a-f]{64}\n", exported.out)
    assert field_of(imported.out, "address") == ABANDON_GONKA
    assert gonka("keys", "export", "copy", stdin=f"{PASS}\n").out == exported.out
    no_mnemonic = gonka("keys", "export", "copy", "--mnemonic", stdin=f"{PASS}\n")
    assert "has no mnemonic" in no_mnemonic.error


def test_import_rejects_a_malformed_private_key(gonka, gonka_env):
    for text in ("nothex", "00" * 31, "00" * 32):
        result = gonka("keys", "import", "bad", "--keyring-backend", "test", stdin=text)
        assert "invalid secp256k1 private key" in result.error
    assert not key_file(gonka_env, "bad").exists()


def test_unencrypted_key_exports_without_asking(gonka):
    gonka("keys", "add", "t", "--recover", "--keyring-backend", "test", stdin=ABANDON)

    result = gonka("keys", "export", "t", terminal=[])

    assert result.code == 0 and result.prompts == []
    assert PrivateKey.from_hex(result.out).address == ABANDON_GONKA


def test_wrong_passphrase_fails_cleanly_and_leaves_the_file(gonka, gonka_env):
    gonka("keys", "add", "alice", "--recover", stdin=f"{ABANDON}\n{PASS}\n")
    before = key_file(gonka_env, "alice").read_bytes()

    result = gonka("keys", "export", "alice", stdin="not the passphrase\n")

    assert result.error == "error: wrong passphrase for key 'alice'"
    assert result.out == ""
    assert key_file(gonka_env, "alice").read_bytes() == before


# -- names, existing keys, files


@pytest.mark.parametrize("name", [".hidden", "a/b", "x" * 65, "sp ace"])
def test_bad_names_are_refused_before_any_prompt(gonka, gonka_env, name):
    result = gonka("keys", "add", name, "--recover", terminal=[])

    assert result.error.startswith("error: invalid key name")
    assert result.prompts == []
    assert not (gonka_env / "keyring").exists() or not any((gonka_env / "keyring").iterdir())


def test_existing_name_needs_overwrite(gonka, gonka_env):
    gonka("keys", "add", "alice", "--keyring-backend", "test")
    before = key_file(gonka_env, "alice").read_bytes()

    refused = gonka("keys", "add", "alice", "--recover", terminal=[])
    replaced = gonka(
        "keys", "add", "alice", "--recover", "--overwrite", "--keyring-backend", "test",
        stdin=ABANDON,
    )  # fmt: skip

    assert refused.error == (
        "error: a key named 'alice' already exists; pass --overwrite to replace it"
    )
    assert refused.prompts == []
    assert replaced.code == 0 and key_file(gonka_env, "alice").read_bytes() != before
    assert gonka("keys", "show", "alice", "--address").out == ABANDON_GONKA + "\n"


def test_key_files_are_0600_in_a_0700_keyring(gonka, gonka_env):
    gonka("keys", "add", "alice", "--recover", stdin=f"{ABANDON}\n{PASS}\n")
    gonka("keys", "add", "bob", "--keyring-backend", "test")

    assert mode(gonka_env / "keyring") == 0o700
    assert mode(key_file(gonka_env, "alice")) == 0o600
    assert mode(key_file(gonka_env, "bob")) == 0o600


def test_corrupt_key_file_is_one_error_for_every_command(gonka, gonka_env):
    gonka("keys", "add", "alice", "--recover", stdin=f"{ABANDON}\n{PASS}\n")
    path = key_file(gonka_env, "alice")
    path.write_text(path.read_text().replace(ABANDON_GONKA[-6:], "qqqqqq"))

    for argv in (["show", "alice"], ["list"], ["export", "alice"]):
        result = gonka("keys", *argv, stdin=f"{PASS}\n")
        assert result.error.startswith(f"error: corrupt key file {path}: ")


# -- list, show, delete


def test_list_and_show(gonka):
    assert gonka("keys", "list").err.startswith("no keys in ")
    assert gonka("keys", "list", "-o", "json").out == "[]\n"
    gonka("keys", "add", "zed", "--recover", stdin=f"{ABANDON}\n{PASS}\n")
    gonka("keys", "add", "amy", "--recover", "--index=1", "--keyring-backend=test", stdin=ABANDON)

    table = gonka("keys", "list").out.splitlines()
    shown = gonka("keys", "show", "zed")
    as_json = json.loads(gonka("keys", "show", "zed", "-o", "json").out)

    assert table[0].split() == ["NAME", "ADDRESS", "BACKEND"]
    assert [row.split()[0] for row in table[1:]] == ["amy", "zed"]
    assert table[2].split()[1:] == [ABANDON_GONKA, "file"]
    assert field_of(shown.out, "address") == ABANDON_GONKA
    assert field_of(shown.out, "pubkey") == as_json["pubkey"]
    assert PrivateKey.from_hex(
        gonka("keys", "export", "zed", stdin=f"{PASS}\n").out
    ).public_key.hex() == as_json["pubkey"]
    assert gonka("keys", "show", "nobody").error.startswith("error: no key named 'nobody'")


def test_delete_asks_unless_yes(gonka, gonka_env):
    gonka("keys", "add", "alice", "--keyring-backend", "test")

    kept = gonka("keys", "delete", "alice", stdin="n\n")
    assert kept.error == "error: key 'alice' was not deleted"
    assert key_file(gonka_env, "alice").exists()

    assert gonka("keys", "delete", "alice", stdin="y\n").code == 0
    assert not key_file(gonka_env, "alice").exists()

    gonka("keys", "add", "bob", "--keyring-backend", "test")
    assert gonka("keys", "delete", "bob", "--yes").code == 0
    assert gonka("keys", "delete", "bob", "--yes").error.startswith("error: no key named 'bob'")


# -- home folder and top level


def test_home_option_before_or_after_the_command_beats_the_environment(gonka, tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    gonka("--home", str(before), "keys", "add", "a", "--keyring-backend", "test")
    gonka("keys", "add", "b", "--keyring-backend", "test", "--home", str(after))

    assert key_file(before, "a").exists() and key_file(after, "b").exists()
    assert gonka("keys", "list", "-o", "json").out == "[]\n"
    assert gonka("--home", str(before), "keys", "list", "--home", str(after)).out.split()[3] == "b"


def test_default_home_is_dot_gonka(gonka, tmp_path, monkeypatch):
    monkeypatch.delenv("GONKA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))

    gonka("keys", "add", "a", "--keyring-backend", "test")

    assert key_file(tmp_path / "user" / ".gonka", "a").exists()


def test_version_and_usage_errors(gonka):
    assert gonka("--version").out.startswith("gonka ")
    assert gonka().code == 2
    assert gonka("keys").code == 2
    assert gonka("keys", "add").code == 2
    assert gonka("keys", "add", "x", "--keyring-backend", "plain").code == 2
    assert gonka("keys", "add", "x", "--index", "-1").code == 2
    assert gonka("keys", "add", "x", "--account", str(2**31)).code == 2


# -- the installed command


def test_console_script_round_trips_the_known_mnemonic(gonka_env):
    env = {**os.environ, "GONKA_HOME": str(gonka_env), "GONKA_KEYRING_KDF": "minimum"}

    def run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [*gonka_command(), *argv], input=stdin, env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip

    for name in ("one", "two"):
        added = run("keys", "add", name, "--recover", stdin=f"{ABANDON}\n{PASS}\n")
        assert added.returncode == 0, added.stderr
        assert field_of(added.stdout, "address") == ABANDON_GONKA
    assert run("keys", "show", "two", "-a").stdout == ABANDON_GONKA + "\n"

    wrong = run("keys", "export", "one", stdin="wrong passphrase\n")
    assert wrong.returncode == 1
    assert wrong.stderr == "error: wrong passphrase for key 'one'\n"

    usage = run("keys", "frobnicate")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
