"""api.signing: the developer's and the transfer agent's request signatures, pure.

Every refusal is checked by its type and by what its message names, and every accepted request
is checked against the chain's own verification of the same bytes (MsgStartInference)."""

from __future__ import annotations

import base64

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import native
from api.signing import (
    AUTHORIZATION,
    EXECUTOR_ADDRESS,
    INFERENCE_ID,
    MODEL,
    REQUESTER_ADDRESS,
    REQUESTER_PUBKEY,
    TA_SIGNATURE,
    TIMESTAMP,
    TRANSFER_ADDRESS,
    AddressMismatch,
    BadSignature,
    BadTimestamp,
    BadTransferSignature,
    BearerToken,
    InferenceIdMismatch,
    InvalidBody,
    MalformedHeader,
    MissingHeader,
    MissingSignature,
    ModelMismatch,
    RequestFromFuture,
    RequestTooOld,
    SigningError,
    WrongExecutor,
    WrongTransferAgent,
    check_timestamp,
    parse_chat_request,
    sign_request,
    sign_transfer,
    transfer_agent_of,
    verify_developer,
    verify_transfer,
)
from chain.app.inference.params import InferenceParams
from chain.crypto.hashing import blake3_256
from chain.crypto.secp256k1 import PrivateKey
from chain.types.inference import request_sign_bytes, transfer_sign_bytes

DEV = PrivateKey(bytes([1]) * 32)
OTHER = PrivateKey(bytes([2]) * 32)
TA = PrivateKey(bytes([3]) * 32)
TA_WARM = PrivateKey(bytes([4]) * 32)
EXECUTOR = PrivateKey(bytes([5]) * 32)
OTHER_TA = PrivateKey(bytes([6]) * 32)
TS = 1_700_000_000_123_456_789
BODY = b'{"model":"qwen","messages":[{"role":"user","content":"hi"}],"max_tokens":16}'


def signed(body: bytes = BODY, key: PrivateKey = DEV, ta: str = TA.address,
           ts: int = TS) -> dict[str, str]:
    return sign_request(key, body, ta, ts)


# ---- developer signature ------------------------------------------------------------------


def test_signed_request_verifies_and_its_id_is_what_the_chain_accepts():
    headers = signed()
    assert set(headers) == {AUTHORIZATION, REQUESTER_ADDRESS, REQUESTER_PUBKEY, TIMESTAMP,
                            TRANSFER_ADDRESS}
    assert headers[REQUESTER_ADDRESS] == DEV.address
    assert headers[REQUESTER_PUBKEY] == DEV.public_key.hex()
    assert headers[TIMESTAMP] == str(TS)
    assert headers[TRANSFER_ADDRESS] == TA.address

    verified = verify_developer(headers, BODY, TA.address)

    assert verified.inference_id == base64.b64decode(headers[AUTHORIZATION])
    assert len(verified.inference_id) == 64
    assert verified.prompt_hash == blake3_256(BODY)
    assert (verified.requester, verified.timestamp_ns, verified.transfer_agent) == (
        DEV.address, TS, TA.address)
    # MsgStartInference's check: inference_id is the requester's signature of these bytes.
    chain_bytes = request_sign_bytes(verified.prompt_hash, TS, TA.address)
    assert native.verify_secp256k1(DEV.public_key, chain_bytes, verified.inference_id)
    # The verified request regenerates exactly the headers the TA forwards.
    assert verified.signature.headers() == headers


def test_signing_is_deterministic_so_a_replay_has_the_same_id():
    assert signed() == signed()
    assert signed(ts=TS + 1)[AUTHORIZATION] != signed()[AUTHORIZATION]


def test_header_names_are_case_insensitive():
    lowered = {k.lower(): v for k, v in signed().items()}
    upper = {k.upper(): v for k, v in signed().items()}
    assert verify_developer(lowered, BODY, TA.address) == verify_developer(upper, BODY,
                                                                           TA.address)


def test_absent_transfer_address_means_this_transfer_agent():
    headers = signed()
    del headers[TRANSFER_ADDRESS]
    assert verify_developer(headers, BODY, TA.address).transfer_agent == TA.address
    with pytest.raises(BadSignature):  # the signature names TA, not OTHER_TA
        verify_developer(headers, BODY, OTHER_TA.address)


@pytest.mark.parametrize("body", [
    BODY + b" ",                                    # re-encoded with whitespace
    BODY.replace(b'"hi"', b'"ho"'),                  # a changed prompt
    BODY.replace(b"16", b"17"),                     # a changed limit
    b"",
])  # fmt: skip
def test_tampered_body_is_refused(body):
    with pytest.raises(BadSignature, match=DEV.address) as e:
        verify_developer(signed(), body, TA.address)
    assert e.value.status == 401
    assert "body changed" in str(e.value)


def test_request_signed_for_another_transfer_agent_is_refused():
    with pytest.raises(WrongTransferAgent) as e:
        verify_developer(signed(ta=OTHER_TA.address), BODY, TA.address)
    assert (e.value.signed_for, e.value.transfer_agent) == (OTHER_TA.address, TA.address)
    assert "GET /v1/status" in str(e.value)


def test_transfer_address_rewritten_to_this_agent_breaks_the_signature():
    headers = signed(ta=OTHER_TA.address)
    headers[TRANSFER_ADDRESS] = TA.address
    with pytest.raises(BadSignature):
        verify_developer(headers, BODY, TA.address)


def test_rewritten_timestamp_breaks_the_signature():
    headers = signed()
    headers[TIMESTAMP] = str(TS + 1)
    with pytest.raises(BadSignature):
        verify_developer(headers, BODY, TA.address)


def test_signature_by_another_key_is_refused():
    """OTHER signs but claims to be DEV (DEV's address and key in the headers)."""
    headers = signed(key=OTHER)
    headers[REQUESTER_ADDRESS] = DEV.address
    headers[REQUESTER_PUBKEY] = DEV.public_key.hex()
    with pytest.raises(BadSignature):
        verify_developer(headers, BODY, TA.address)


def test_pubkey_that_does_not_derive_to_the_address_is_refused():
    headers = signed()
    headers[REQUESTER_PUBKEY] = OTHER.public_key.hex()
    with pytest.raises(AddressMismatch) as e:
        verify_developer(headers, BODY, TA.address)
    assert OTHER.address in str(e.value) and DEV.address in str(e.value)
    assert e.value.code == "address_mismatch"


def test_missing_authorization_and_bearer_token_are_refused_with_a_hint():
    headers = signed()
    del headers[AUTHORIZATION]
    with pytest.raises(MissingSignature, match="gonka_http_client") as e:
        verify_developer(headers, BODY, TA.address)
    assert e.value.status == 401
    headers[AUTHORIZATION] = "Bearer unused"
    with pytest.raises(BearerToken, match="no API keys"):
        verify_developer(headers, BODY, TA.address)


def _with(header: str, value: str | None) -> dict[str, str]:
    headers = signed()
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    return headers


@pytest.mark.parametrize("header, value, error, says", [
    (REQUESTER_ADDRESS, None, MissingHeader, REQUESTER_ADDRESS),
    (REQUESTER_PUBKEY, None, MissingHeader, REQUESTER_PUBKEY),
    (TIMESTAMP, None, MissingHeader, TIMESTAMP),
    (AUTHORIZATION, "not base64!", MalformedHeader, "base64"),
    (AUTHORIZATION, base64.b64encode(b"x" * 63).decode(), MalformedHeader, "63"),
    (REQUESTER_ADDRESS, "cosmos1qqqq", MalformedHeader, REQUESTER_ADDRESS),
    (REQUESTER_ADDRESS, DEV.address.upper(), MalformedHeader, "lower case"),
    (REQUESTER_PUBKEY, "zz" * 33, MalformedHeader, "not hex"),
    (REQUESTER_PUBKEY, DEV.public_key.hex()[:-2], MalformedHeader, "33-byte"),
    (REQUESTER_PUBKEY, "04" + DEV.public_key.hex()[2:], MalformedHeader, "compressed"),
    (TRANSFER_ADDRESS, "gonka1xyz", MalformedHeader, TRANSFER_ADDRESS),
    (TIMESTAMP, "abc", BadTimestamp, "Unix nanoseconds"),
    (TIMESTAMP, "-5", BadTimestamp, "Unix nanoseconds"),
    (TIMESTAMP, "+5", BadTimestamp, "Unix nanoseconds"),
    (TIMESTAMP, "1_000", BadTimestamp, "Unix nanoseconds"),
    (TIMESTAMP, "1.7e18", BadTimestamp, "Unix nanoseconds"),
    (TIMESTAMP, "0", BadTimestamp, "Unix nanoseconds"),
    (TIMESTAMP, str(2**64), BadTimestamp, "Unix nanoseconds"),
])  # fmt: skip
def test_malformed_headers_are_refused(header, value, error, says):
    with pytest.raises(error) as e:
        verify_developer(_with(header, value), BODY, TA.address)
    assert says in str(e.value)
    assert e.value.status == 401


def test_every_refusal_is_a_signing_error_with_a_status_and_code():
    for cls in (MissingSignature, MissingHeader, MalformedHeader, BadTimestamp, AddressMismatch,
                WrongTransferAgent, BadSignature, RequestTooOld, RequestFromFuture,
                InferenceIdMismatch, WrongExecutor, ModelMismatch, BadTransferSignature,
                InvalidBody):
        assert issubclass(cls, SigningError)
        assert cls.status in (400, 401) and cls.code


def test_sign_request_refuses_bad_inputs_on_the_developer_side():
    with pytest.raises(ValueError, match="timestamp_ns"):
        sign_request(DEV, BODY, TA.address, 0)
    with pytest.raises(ValueError, match="invalid address"):
        sign_request(DEV, BODY, "gonka1typo", TS)


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=512), ts=st.integers(1, 2**64 - 1), flip=st.integers(0, 511))
def test_any_body_round_trips_and_any_flipped_bit_is_refused(body, ts, flip):
    headers = sign_request(DEV, body, TA.address, ts)
    assert verify_developer(headers, body, TA.address).timestamp_ns == ts
    if body:
        i = flip % len(body)
        tampered = body[:i] + bytes([body[i] ^ 1]) + body[i + 1:]
        with pytest.raises(BadSignature):
            verify_developer(headers, tampered, TA.address)


# ---- the time window ----------------------------------------------------------------------

SEC = 1_000_000_000
PARAMS = InferenceParams()


def test_timestamp_window_is_the_chains_both_ends_included():
    now = TS
    age, advance = PARAMS.max_request_age_s, PARAMS.max_request_advance_s
    check_timestamp(now, now, age, advance)
    check_timestamp(now - age * SEC, now, age, advance)
    check_timestamp(now + advance * SEC, now, age, advance)
    with pytest.raises(RequestTooOld) as old:
        check_timestamp(now - age * SEC - 1, now, age, advance)
    with pytest.raises(RequestFromFuture) as future:
        check_timestamp(now + advance * SEC + 1, now, age, advance)
    assert old.value.status == future.value.status == 400
    assert f"at most {age} s" in str(old.value) and "300.000 s older" in str(old.value)
    assert f"at most {advance} s" in str(future.value) and "clock" in str(future.value)


# ---- transfer agent -> executor -----------------------------------------------------------


def forwarded(key: PrivateKey = TA, executor: str = EXECUTOR.address,
              model: str = "qwen", body: bytes = BODY) -> dict[str, str]:
    request = verify_developer(signed(body=body), body, TA.address)
    return {**request.signature.headers(), **sign_transfer(key, request, executor, model)}


@pytest.mark.parametrize("signer", [TA, TA_WARM])
def test_forwarded_request_verifies_with_account_or_warm_key(signer):
    headers = forwarded(key=signer)
    assert transfer_agent_of(headers) == TA.address

    transfer = verify_transfer(headers, BODY, EXECUTOR.address,
                               [TA.public_key, TA_WARM.public_key])

    assert transfer.signed_by == signer.public_key
    assert (transfer.executor, transfer.model) == (EXECUTOR.address, "qwen")
    assert transfer.inference_id.hex() == headers[INFERENCE_ID]
    assert transfer.chat.token_limit == 16
    # MsgStartInference's check of transfer_signature.
    chain_bytes = transfer_sign_bytes(blake3_256(BODY), TS, TA.address, EXECUTOR.address, "qwen")
    assert native.verify_secp256k1(signer.public_key, chain_bytes, transfer.transfer_signature)


def test_transfer_signed_by_a_key_not_of_the_agent_is_refused():
    with pytest.raises(BadTransferSignature, match=TA.address):
        verify_transfer(forwarded(key=OTHER_TA), BODY, EXECUTOR.address, [TA.public_key])
    with pytest.raises(BadTransferSignature):
        verify_transfer(forwarded(), BODY, EXECUTOR.address, [])


def test_transfer_for_another_executor_is_refused_even_if_the_header_is_rewritten():
    headers = forwarded(executor=OTHER.address)
    with pytest.raises(WrongExecutor, match=OTHER.address):
        verify_transfer(headers, BODY, EXECUTOR.address, [TA.public_key])
    headers[EXECUTOR_ADDRESS] = EXECUTOR.address
    with pytest.raises(BadTransferSignature):
        verify_transfer(headers, BODY, EXECUTOR.address, [TA.public_key])


def test_model_header_must_be_the_bodys_and_signed():
    headers = forwarded(model="other")
    with pytest.raises(ModelMismatch, match="'other'"):
        verify_transfer(headers, BODY, EXECUTOR.address, [TA.public_key])
    other_body = BODY.replace(b"qwen", b"other")
    headers = forwarded(body=other_body)
    headers[MODEL] = "other"
    with pytest.raises(BadTransferSignature):  # the TA signed "qwen"
        verify_transfer(headers, other_body, EXECUTOR.address, [TA.public_key])


def test_inference_id_must_be_the_developers_signature():
    headers = forwarded()
    headers[INFERENCE_ID] = "00" * 64
    with pytest.raises(InferenceIdMismatch):
        verify_transfer(headers, BODY, EXECUTOR.address, [TA.public_key])


def test_forwarded_body_and_developer_signature_are_checked_at_the_executor():
    with pytest.raises(BadSignature):
        verify_transfer(forwarded(), BODY + b" ", EXECUTOR.address, [TA.public_key])
    headers = forwarded()
    headers[TRANSFER_ADDRESS] = OTHER_TA.address  # the TA's keys looked up for another agent
    with pytest.raises(BadSignature):
        verify_transfer(headers, BODY, EXECUTOR.address, [OTHER_TA.public_key])


@pytest.mark.parametrize("header", [INFERENCE_ID, EXECUTOR_ADDRESS, MODEL, TA_SIGNATURE,
                                    TRANSFER_ADDRESS])
def test_forwarded_request_without_a_transfer_header_is_refused(header):
    headers = forwarded()
    del headers[header]
    with pytest.raises(MissingHeader, match=header):
        verify_transfer(headers, BODY, EXECUTOR.address, [TA.public_key])


# ---- the body -----------------------------------------------------------------------------


def test_chat_request_reads_what_it_needs_and_ignores_the_rest():
    chat = parse_chat_request(
        b'{"model":"m","messages":[{"role":"system","content":"be brief"},'
        b'{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"}]},'
        b'{"role":"assistant","content":null,"tool_calls":[]}],'
        b'"max_tokens":9,"max_completion_tokens":7,"stream":true,"temperature":0.5,'
        b'"logit_bias":{"1":2}}')
    assert chat.model == "m" and chat.stream is True
    assert chat.token_limit == 7
    assert chat.prompt_text() == "be brief\na\n"
    assert parse_chat_request(b'{"model":"m","max_tokens":9}').token_limit == 9
    assert parse_chat_request(b'{"model":"m"}').token_limit is None


@pytest.mark.parametrize("body, says", [
    (b"not json", "malformed"),
    (b"{}", "model"),
    (b'{"model":""}', "model"),
    (b'{"model":"m","max_tokens":0}', "max_tokens"),
    (b'{"model":"m","max_tokens":"5"}', "max_tokens"),
    (b'{"model":"m","messages":{}}', "messages"),
])  # fmt: skip
def test_invalid_body_is_a_400_with_msgspecs_reason(body, says):
    with pytest.raises(InvalidBody, match=says) as e:
        parse_chat_request(body)
    assert e.value.status == 400


def test_parsed_request_is_not_what_is_forwarded():
    """Decoding does not normalise: the signature is over the raw bytes only."""
    spaced = BODY.replace(b",", b", ")
    assert parse_chat_request(spaced) == parse_chat_request(BODY)
    assert msgspec.json.encode(parse_chat_request(BODY)) != BODY
    with pytest.raises(BadSignature):
        verify_developer(signed(), spaced, TA.address)


def test_payload_requests_are_signed_by_the_validator_or_its_warm_key():
    from api.signing import (
        BadPayloadSignature,
        MissingSignature,
        sign_payload_request,
        verify_payload_request,
    )
    from chain.crypto.secp256k1 import PrivateKey as Key

    validator, warm, other = Key(bytes([61]) * 32), Key(bytes([62]) * 32), Key(bytes([63]) * 32)
    inference_id = bytes([7]) * 64
    for signer in (validator, warm):
        headers = sign_payload_request(signer, inference_id, validator.address, 42)
        got = verify_payload_request(headers, inference_id,
                                     [validator.public_key, warm.public_key])
        assert (got.validator, got.timestamp_ns) == (validator.address, 42)
    headers = sign_payload_request(other, inference_id, validator.address, 42)
    with pytest.raises(BadPayloadSignature):
        verify_payload_request(headers, inference_id, [validator.public_key, warm.public_key])
    headers = sign_payload_request(validator, inference_id, validator.address, 42)
    with pytest.raises(BadPayloadSignature):  # another inference
        verify_payload_request(headers, bytes(64), [validator.public_key])
    with pytest.raises(MissingSignature):
        verify_payload_request({}, inference_id, [validator.public_key])
