"""The key store (chain.crypto.keystore) and node key files (chain.crypto.node_key).

Keys here are stretched with the "minimum" Argon2id preset so the suite stays fast; the preset is
recorded in each file, which one test relies on.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from chain.crypto import ed25519, keystore
from chain.crypto.errors import (
    CorruptKeyFile,
    CryptoError,
    InvalidKeyName,
    InvalidMnemonic,
    KeyExists,
    KeyFileNotFound,
    KeyNotFound,
    WeakPassphrase,
    WrongPassphrase,
)
from chain.crypto.keystore import KDF_PRESETS, Keystore
from chain.crypto.mnemonic import key_from_mnemonic
from chain.crypto.node_key import load_node_key, save_node_key
from chain.crypto.private_files import write_private_file

ABANDON = " ".join(["abandon"] * 11 + ["about"])
ABANDON_GONKA = "gonka19rl4cm2hmr8afy4kldpxz3fka4jguq0av42rch"
PASS = "correct horse"
CHEAP = KDF_PRESETS["minimum"]


@pytest.fixture
def store(tmp_path):
    return Keystore(tmp_path / "home", kdf=CHEAP)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def edit(path, **changes):
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


# -- adding and loading


@pytest.mark.parametrize("passphrase", [PASS, None], ids=["encrypted", "unencrypted"])
def test_recovered_key_has_the_known_address_and_loads_back(store, passphrase):
    info = store.add_recovered("alice", ABANDON, passphrase)

    assert info.address == ABANDON_GONKA
    assert info.hd_path == "m/44'/118'/0'/0/0"
    assert info.encrypted is (passphrase is not None)
    assert store.load("alice", passphrase).address == ABANDON_GONKA
    assert store.load_mnemonic("alice", passphrase) == ABANDON
    assert store.show("alice") == info


def test_new_key_mnemonic_recovers_the_same_key_elsewhere(store, tmp_path):
    info, mnemonic = store.add_new("fresh", PASS, words=12)

    other = Keystore(tmp_path / "other", kdf=CHEAP).add_recovered("again", mnemonic, None)

    assert len(mnemonic.split()) == 12
    assert other.address == info.address == key_from_mnemonic(mnemonic).address
    assert store.load_mnemonic("fresh", PASS) == mnemonic


def test_account_and_index_are_kept_in_the_file(store):
    info = store.add_recovered("second", ABANDON, PASS, account=2, index=5)

    assert info.hd_path == "m/44'/118'/2'/0/5"
    assert info.address == key_from_mnemonic(ABANDON, account=2, index=5).address
    assert store.load("second", PASS).address == info.address


def test_exported_private_key_reimports_to_the_same_address(store):
    store.add_recovered("alice", ABANDON, PASS)
    secret = store.load("alice", PASS).secret

    info = store.add_private_key("copy", secret, None)

    assert info.address == ABANDON_GONKA
    assert info.hd_path is None
    assert store.load_mnemonic("copy", None) is None


def test_weak_passphrase_is_refused_before_anything_is_written(store):
    with pytest.raises(WeakPassphrase):
        store.add_recovered("alice", ABANDON, "short")

    assert not store.exists("alice")


def test_invalid_mnemonic_writes_nothing(store):
    with pytest.raises(InvalidMnemonic):
        store.add_recovered("alice", "abandon " * 12, PASS)

    assert store.list() == []


# -- files on disk


def test_files_are_0600_in_a_0700_folder_whatever_the_umask(store):
    old = os.umask(0)
    try:
        store.add_recovered("alice", ABANDON, PASS)
        store.add_recovered("bob", ABANDON, None)
    finally:
        os.umask(old)

    assert mode(store.dir) == 0o700
    assert mode(store.home) == 0o700
    assert {p.name: mode(p) for p in store.dir.iterdir()} == {
        "alice.json": 0o600,
        "bob.json": 0o600,
    }


def test_a_loose_keyring_folder_is_tightened_on_write(store):
    store.add_recovered("alice", ABANDON, None)
    os.chmod(store.dir, 0o755)

    store.add_recovered("bob", ABANDON, None)

    assert mode(store.dir) == 0o700


def test_encrypted_file_holds_no_secret_in_clear(store):
    store.add_recovered("alice", ABANDON, PASS)
    secret_hex = store.load("alice", PASS).secret.hex()
    text = (store.dir / "alice.json").read_text()
    record = json.loads(text)

    assert "abandon" not in text and secret_hex not in text
    assert record["encryption"] == "argon2id+xsalsa20poly1305"
    assert record["kdf"]["opslimit"] == CHEAP.opslimit
    assert record["kdf"]["memlimit"] == CHEAP.memlimit
    assert len(bytes.fromhex(record["kdf"]["salt"])) == 16
    assert len(bytes.fromhex(record["nonce"])) == 24
    assert "plaintext" not in record


def test_kdf_cost_is_read_from_the_file_not_the_store(store):
    store.add_recovered("alice", ABANDON, PASS)

    costly = Keystore(store.home, kdf=KDF_PRESETS["interactive"])

    assert costly.load("alice", PASS).address == ABANDON_GONKA


def test_kdf_preset_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(keystore.KDF_ENV, "minimum")
    assert Keystore(tmp_path).kdf == CHEAP
    monkeypatch.delenv(keystore.KDF_ENV)
    assert Keystore(tmp_path).kdf == KDF_PRESETS["interactive"]
    monkeypatch.setenv(keystore.KDF_ENV, "fast")
    with pytest.raises(CryptoError, match="GONKA_KEYRING_KDF"):
        Keystore(tmp_path)


def test_writes_leave_no_temp_files(store):
    store.add_recovered("alice", ABANDON, PASS)
    store.add_recovered("alice", ABANDON, None, overwrite=True)
    with pytest.raises(KeyExists):
        store.add_recovered("alice", ABANDON, None)

    assert [p.name for p in store.dir.iterdir()] == ["alice.json"]


def test_no_clobber_write_keeps_the_existing_file(tmp_path):
    target = tmp_path / "k.json"
    write_private_file(target, b"first", overwrite=False)

    with pytest.raises(FileExistsError):
        write_private_file(target, b"second", overwrite=False)

    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


# -- names


@pytest.mark.parametrize(
    "name", ["", ".hidden", "a/b", "../up", "a b", "x" * 65, "naïve", "semi;colon"]
)
def test_bad_names_are_refused(store, name):
    with pytest.raises(InvalidKeyName):
        store.add_recovered(name, ABANDON, None)

    assert not store.dir.exists() or list(store.dir.iterdir()) == []


@pytest.mark.parametrize("name", ["a", "A-b_c.d", "x" * 64, "val.0", "_x"])
def test_good_names_are_accepted(store, name):
    assert store.add_recovered(name, ABANDON, None).name == name


def test_existing_name_is_not_overwritten_unless_asked(store):
    store.add_recovered("alice", ABANDON, None)
    before = (store.dir / "alice.json").read_bytes()

    with pytest.raises(KeyExists, match="'alice' already exists"):
        store.add_new("alice", None)
    assert (store.dir / "alice.json").read_bytes() == before

    info, _ = store.add_new("alice", None, overwrite=True)
    assert info.address != ABANDON_GONKA
    assert store.show("alice").address == info.address


# -- passphrases


def test_wrong_passphrase_is_one_typed_error_and_changes_nothing(store):
    store.add_recovered("alice", ABANDON, PASS)
    before = (store.dir / "alice.json").read_bytes()

    with pytest.raises(WrongPassphrase, match="wrong passphrase for key 'alice'"):
        store.load("alice", PASS + "!")
    with pytest.raises(WrongPassphrase):
        store.load_mnemonic("alice", None)

    assert (store.dir / "alice.json").read_bytes() == before


def test_list_and_show_never_decrypt(store, monkeypatch):
    store.add_recovered("bob", ABANDON, PASS)
    store.add_recovered("alice", ABANDON, None)

    def no_kdf(*args):
        raise AssertionError("list/show must not stretch a passphrase")

    monkeypatch.setattr(keystore, "_stretch", no_kdf)

    assert [i.name for i in store.list()] == ["alice", "bob"]
    assert store.show("bob").address == ABANDON_GONKA


def test_secrets_do_not_appear_in_reprs(store):
    store.add_recovered("plain", ABANDON, None)
    key = store.load("plain", None)
    record = store._read(store.dir / "plain.json")

    for text in (repr(key), repr(record), repr(record.plaintext), str(record)):
        assert key.secret.hex() not in text
        assert "abandon" not in text


# -- missing and corrupt files


def test_missing_keys(store):
    assert store.list() == []
    with pytest.raises(KeyNotFound, match="no key named 'ghost'"):
        store.show("ghost")
    with pytest.raises(KeyNotFound):
        store.load("ghost", PASS)
    with pytest.raises(KeyNotFound):
        store.delete("ghost")


def test_delete_removes_the_key_even_when_corrupt(store):
    store.add_recovered("alice", ABANDON, None)
    (store.dir / "alice.json").write_text("{not json")

    store.delete("alice")

    assert not store.exists("alice")
    assert store.list() == []


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_text("{not json"), "JSON"),
        (lambda p: p.write_bytes(p.read_bytes()[:40]), "truncated"),
        (lambda p: p.write_text("[]"), "Expected `object`"),
        (lambda p: edit(p, version=2), "unsupported format version 2"),
        (lambda p: edit(p, name="bob"), "holds key 'bob'"),
        (lambda p: edit(p, extra=1), "unknown field"),
        (lambda p: edit(p, address="gonka1wkun449zn3f7f9sr8kzqvc58tzux287r4f9qsr"), "address"),
        (lambda p: edit(p, pubkey="02" + "00" * 32), "pubkey"),
        (lambda p: edit(p, encryption="rot13"), "encryption"),
        (lambda p: edit(p, kdf={"opslimit": 1, "memlimit": 1, "salt": "00" * 16}), "Argon2id"),
        (lambda p: edit(p, nonce="zz"), "not hex"),
        (lambda p: edit(p, nonce="00"), "wrong length"),
        (lambda p: edit(p, ciphertext=None), "'kdf', 'nonce' and 'ciphertext'"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_corrupt_encrypted_files_are_named_with_the_reason(store, damage, reason):
    store.add_recovered("alice", ABANDON, PASS)
    path = store.dir / "alice.json"
    damage(path)

    for attempt in (lambda: store.show("alice"), store.list, lambda: store.load("alice", PASS)):
        with pytest.raises(CorruptKeyFile) as caught:
            attempt()
        assert str(path) in str(caught.value)
        assert reason in caught.value.reason


OTHER_SECRET = key_from_mnemonic(ABANDON, index=9).secret.hex()


@pytest.mark.parametrize(
    ("plaintext", "reason"),
    [
        ({"private_key": OTHER_SECRET}, "does not match the stored address"),
        ({"private_key": "00" * 32}, "malformed"),
        ({"private_key": "xyz"}, "malformed"),
        (
            {"private_key": None},
            "Expected `str`",
        ),
        (
            {"private_key": key_from_mnemonic(ABANDON).secret.hex(), "mnemonic": "legal " * 12},
            "mnemonic",
        ),
    ],
)
def test_tampered_unencrypted_secrets_are_detected(store, plaintext, reason):
    store.add_recovered("alice", ABANDON, None)
    path = store.dir / "alice.json"
    edit(path, plaintext=plaintext)

    with pytest.raises(CorruptKeyFile, match=reason):
        store.load("alice", None)


def test_tampered_ciphertext_reads_as_a_wrong_passphrase(store):
    store.add_recovered("alice", ABANDON, PASS)
    path = store.dir / "alice.json"
    record = json.loads(path.read_text())
    flipped = bytes.fromhex(record["ciphertext"])
    flipped = bytes([flipped[0] ^ 1]) + flipped[1:]
    edit(path, ciphertext=flipped.hex())

    with pytest.raises(WrongPassphrase):
        store.load("alice", PASS)


def test_a_stray_file_with_a_bad_name_is_reported_by_list(store):
    store.add_recovered("alice", ABANDON, None)
    (store.dir / "bad name.json").write_text((store.dir / "alice.json").read_text())

    with pytest.raises(CorruptKeyFile, match="not a key name"):
        store.list()


# -- ed25519 node and validator key files


def test_node_key_round_trips_with_mode_0600(tmp_path):
    key = ed25519.PrivateKey.generate()
    path = tmp_path / "config" / "node_key.json"

    save_node_key(path, key)
    loaded = load_node_key(path)

    assert loaded.seed == key.seed and loaded.id == key.id
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert json.loads(path.read_text())["pubkey"] == key.public_key.hex()
    assert key.seed.hex() not in repr(loaded)


def test_node_key_is_not_overwritten_unless_asked(tmp_path):
    path = tmp_path / "priv_validator_key.json"
    first, second = ed25519.PrivateKey.generate(), ed25519.PrivateKey.generate()
    save_node_key(path, first)

    with pytest.raises(KeyExists):
        save_node_key(path, second)
    assert load_node_key(path).seed == first.seed

    save_node_key(path, second, overwrite=True)
    assert load_node_key(path).seed == second.seed


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("garbage", "JSON"),
        ('{"kind": "ed25519", "pubkey": "00"}', "missing required field"),
        ('{"kind": "secp256k1", "pubkey": "00", "seed": "00"}', "kind"),
        ('{"kind": "ed25519", "pubkey": "00", "seed": "0011"}', "seed is not 32 bytes"),
        ('{"kind": "ed25519", "pubkey": "00", "seed": "' + "zz" * 32 + '"}', "seed"),
        ('{"kind": "ed25519", "pubkey": "00", "seed": "' + "11" * 32 + '"}', "does not belong"),
    ],
)
def test_malformed_node_key_files_are_typed_errors(tmp_path, content, reason):
    path = tmp_path / "node_key.json"
    path.write_text(content)

    with pytest.raises(CorruptKeyFile) as caught:
        load_node_key(path)
    assert reason in caught.value.reason


def test_missing_node_key_file(tmp_path):
    with pytest.raises(KeyFileNotFound):
        load_node_key(tmp_path / "nope.json")
