"""The API node's parts that need no network: its settings, what the executor sends the ML node
and records of the answer, the replay cache and payload store on disk, and the error shape."""

from __future__ import annotations

import msgspec
import pytest

from api.node.config import ConfigError, config_from, load_config, resolve
from api.node.errors import InsufficientBalance, RateLimited, body_of, parse_error_message
from api.node.responses import (
    DeveloperAsked,
    SseRecorder,
    developer_asked,
    ml_request_body,
    record_json,
)
from api.node.stores import PayloadStore, ReplayCache, StoredPayload
from chain.crypto.keystore import KDF_PRESETS, Keystore
from chain.crypto.secp256k1 import PrivateKey

KEY = PrivateKey(bytes([5]) * 32)
ID = "ab" * 64


# -- settings ---------------------------------------------------------------------------------


def test_a_toml_file_with_overrides_resolves_with_a_key_file(tmp_path):
    (tmp_path / "warm.key").write_text(KEY.secret.hex() + "\n")
    path = tmp_path / "config.toml"
    path.write_text('signer_key_file = "warm.key"\nchain_rpc = "http://10.0.0.1:26657"\n'
                    '[public]\nport = 9000\n[[ml_nodes]]\nid = "gpu0"\n'
                    'url = "http://10.0.0.5:8080"\nmodels = ["m"]\n')
    config = load_config(path, {"public.port": 9001, "public_url": None})
    assert config.public.port == 9001 and config.chain_rpc == "http://10.0.0.1:26657"
    assert config.ml_nodes[0].models == ("m",)
    resolved = resolve(config, tmp_path)
    # Without an account, the signer's own address is the account.
    assert resolved.signer.address == resolved.account == KEY.address
    assert resolved.state_dir == tmp_path / "api"
    assert resolved.public_url == "http://127.0.0.1:9001"


def test_a_keyring_key_is_the_signer_and_an_encrypted_one_needs_the_passphrase(
        tmp_path, monkeypatch):
    store = Keystore(tmp_path, kdf=KDF_PRESETS["minimum"])
    store.add_private_key("warm", KEY.secret, None)
    store.add_private_key("sealed", bytes([6]) * 32, "a long passphrase")
    account = PrivateKey(bytes([9]) * 32).address
    resolved = resolve(config_from({"signer_key": "warm", "account": account}), tmp_path)
    assert resolved.signer.address == KEY.address and resolved.account == account
    monkeypatch.delenv("GONKA_KEYRING_PASSPHRASE", raising=False)
    with pytest.raises(ConfigError, match="GONKA_KEYRING_PASSPHRASE"):
        resolve(config_from({"signer_key": "sealed"}), tmp_path)
    monkeypatch.setenv("GONKA_KEYRING_PASSPHRASE", "a long passphrase")
    assert resolve(config_from({"signer_key": "sealed"}), tmp_path).signer.address == \
        PrivateKey(bytes([6]) * 32).address


@pytest.mark.parametrize(("raw", "message"), [
    ({}, "exactly one of signer_key"),
    ({"signer_key_file": "missing.key"}, "No such file"),
    ({"signer_key_file": "k", "admin": {"host": "0.0.0.0"}}, r"\[admin\] binds to 0.0.0.0"),
    ({"signer_key_file": "k", "callbacks": {"host": "10.1.1.1"}}, "callbacks"),
    ({"signer_key_file": "k", "account": "gonka1nope"}, "account"),
])
def test_bad_settings_are_refused_with_the_reason(tmp_path, monkeypatch, raw, message):
    monkeypatch.delenv("GONKA_API_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("GONKA_API_CALLBACK_TOKEN", raising=False)
    (tmp_path / "k").write_text(KEY.secret.hex())
    with pytest.raises(ConfigError, match=message):
        resolve(config_from(raw), tmp_path)


def test_a_private_server_off_loopback_runs_with_a_token(tmp_path, monkeypatch):
    (tmp_path / "k").write_text(KEY.secret.hex())
    monkeypatch.setenv("GONKA_API_ADMIN_TOKEN", "s3cret")
    resolved = resolve(config_from({"signer_key_file": "k", "admin": {"host": "0.0.0.0"}}),
                       tmp_path)
    assert resolved.admin_token == "s3cret" and resolved.callback_token is None


def test_unknown_or_mistyped_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown"):
        config_from({"publik": {}})
    with pytest.raises(ConfigError, match="port"):
        config_from({"public": {"port": 70000}})
    path = tmp_path / "c.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="table"):
        load_config(path)


# -- what the executor sends and records -------------------------------------------------------


def test_the_ml_node_gets_logprobs_a_limit_and_usage_the_developer_did_not_ask_for():
    body = b'{"model":"m","messages":[],"stream":true,"top_logprobs":1}'
    sent = msgspec.json.decode(ml_request_body(body, top_logprobs=5, max_tokens=77))
    assert sent["logprobs"] is True and sent["top_logprobs"] == 5
    assert sent["max_tokens"] == 77 and sent["stream_options"] == {"include_usage": True}
    # A developer's own larger top_logprobs and limit are kept.
    body = b'{"model":"m","messages":[],"top_logprobs":9,"max_completion_tokens":3}'
    sent = msgspec.json.decode(ml_request_body(body, top_logprobs=5, max_tokens=77))
    assert sent["top_logprobs"] == 9 and "max_tokens" not in sent
    assert developer_asked(body) == DeveloperAsked(top_logprobs=9)


def _entry(token: str) -> dict:
    return {"token": token, "logprob": -0.1, "bytes": None,
            "top_logprobs": [{"token": t, "logprob": -1.0, "bytes": None} for t in "abcde"]}


ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "model": "m",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                       "logprobs": {"content": [_entry("h"), _entry("i")]},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}


def test_a_json_answer_is_recorded_whole_and_the_developer_gets_what_was_asked():
    raw = msgspec.json.encode(ANSWER)
    recorded, developer = record_json(raw, ID, DeveloperAsked())
    kept = msgspec.json.decode(recorded.response)
    assert kept["id"] == ID and len(kept["choices"][0]["logprobs"]["content"]) == 2
    assert recorded.usage.prompt_tokens == 7 and recorded.logprob_tokens == 2
    shown = msgspec.json.decode(developer)
    assert shown["id"] == ID and shown["choices"][0]["logprobs"] is None
    assert shown["usage"]["completion_tokens"] == 2
    _, developer = record_json(raw, ID, DeveloperAsked(logprobs=True, top_logprobs=2))
    entries = msgspec.json.decode(developer)["choices"][0]["logprobs"]["content"]
    assert [len(e["top_logprobs"]) for e in entries] == [2, 2]


def test_an_answer_without_usage_leaves_the_count_to_the_logprobs():
    answer = dict(ANSWER, usage=None)
    recorded, _ = record_json(msgspec.json.encode(answer), ID, DeveloperAsked())
    assert recorded.usage is None and recorded.logprob_tokens == 2


def _sse(obj: dict) -> bytes:
    return b"data: " + msgspec.json.encode(obj)


def test_a_stream_is_recorded_line_by_line_and_the_unasked_usage_chunk_is_dropped():
    chunk = {"id": "x", "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"content": "h"},
                          "logprobs": {"content": [_entry("h")]}, "finish_reason": None}]}
    usage = {"id": "x", "object": "chat.completion.chunk", "choices": [],
             "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}
    lines = [_sse(chunk), b"", _sse(usage), b"", b"data: [DONE]", b""]
    recorder = SseRecorder(ID, DeveloperAsked(stream=True))
    out = [recorder.feed(line) for line in lines]
    assert out[2] is None and out[3] is None  # the usage chunk and its blank line
    assert msgspec.json.decode(out[0][6:])["choices"][0]["logprobs"] is None
    assert out[4] == b"data: [DONE]" and recorder.done
    recorded = recorder.recorded()
    assert recorded.usage.prompt_tokens == 7 and recorded.logprob_tokens == 1
    kept = recorded.response.split(b"\n")
    assert kept[0].startswith(b"data: ") and msgspec.json.decode(kept[0][6:])["id"] == ID
    assert msgspec.json.decode(kept[2][6:])["usage"]["completion_tokens"] == 1
    # Asked for, the usage chunk goes through.
    recorder = SseRecorder(ID, DeveloperAsked(stream=True, include_usage=True))
    assert recorder.feed(_sse(usage)) is not None


# -- stores -------------------------------------------------------------------------------------


def test_the_replay_cache_survives_a_reopen_and_forgets_ids_past_the_window(tmp_path):
    cache = ReplayCache(tmp_path / "replay.db")
    assert cache.add(b"a" * 64, "transfer_agent", 100)
    assert not cache.add(b"a" * 64, "transfer_agent", 100)
    assert cache.add(b"a" * 64, "executor", 100)  # the other role is its own check
    assert cache.add(b"b" * 64, "transfer_agent", 300)
    cache.close()
    cache = ReplayCache(tmp_path / "replay.db")
    assert not cache.add(b"a" * 64, "transfer_agent", 100)
    assert cache.prune(200) == 2
    assert cache.seen(b"b" * 64, "transfer_agent") and len(cache) == 1
    cache.close()


def test_payloads_are_kept_for_their_epoch_and_the_next(tmp_path):
    store = PayloadStore(tmp_path / "payloads.db")
    for epoch in (3, 4, 5):
        store.put(StoredPayload(inference_id=bytes([epoch]) * 64, epoch=epoch, model="m",
                                request=b"{}", response=b"r", streamed=False, prompt_tokens=1,
                                completion_tokens=2, response_hash=bytes(32)))
    assert store.prune(current_epoch=5, keep_epochs=1) == 1
    assert store.get(bytes([3]) * 64) is None
    assert store.get(bytes([4]) * 64).completion_tokens == 2
    store.close()


# -- the error shape ----------------------------------------------------------------------------


def test_errors_are_openai_shaped_with_their_headers():
    body = msgspec.json.decode(body_of(InsufficientBalance(KEY.address, 5, 90)))
    assert body == {"error": {"message": body["error"]["message"],
                              "type": "insufficient_quota", "param": None,
                              "code": "insufficient_balance"}}
    assert "90 ngonka" in body["error"]["message"]
    assert RateLimited("busy", 7, "http://x").headers() == {"Retry-After": "7"}
    assert parse_error_message(b'{"error": "plain"}') == "plain"
    assert parse_error_message(b"not json") is None
