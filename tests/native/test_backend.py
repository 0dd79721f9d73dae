"""Which backend `native` loads: the extension when it is there, the fallback when it is not, and
an import error instead of a silent fallback when the extension is required."""

from __future__ import annotations

import os
import subprocess
import sys

import native

# Hides the extension from the import system, as on a machine where it was never built.
HIDE_EXTENSION = "import sys; sys.modules['native._native'] = None; "


def _python(code: str, gonka_native: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GONKA_NATIVE": gonka_native}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_the_suite_runs_on_the_extension():
    assert native.BACKEND == "native"


def test_missing_extension_falls_back_in_auto_mode():
    run = _python(HIDE_EXTENSION + "import native; print(native.BACKEND)", "auto")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "fallback"


def test_missing_extension_is_an_import_error_when_required():
    run = _python(HIDE_EXTENSION + "import native", "native")
    assert run.returncode != 0
    assert "GONKA_NATIVE=native but the compiled extension cannot be imported" in run.stderr


def test_fallback_can_be_forced_and_bad_settings_are_refused():
    run = _python("import native; print(native.BACKEND)", "fallback")
    assert run.stdout.strip() == "fallback", run.stderr
    run = _python("import native", "fast")
    assert run.returncode != 0
    assert "GONKA_NATIVE must be auto, native or fallback" in run.stderr


def test_the_fallback_backend_runs_the_wire_types_end_to_end():
    # Given only the fallback, signing and verifying a tx and hashing a block still work.
    code = (
        HIDE_EXTENSION
        + "from chain.crypto.secp256k1 import PrivateKey\n"
        "from chain.types.tx import TxBody, sign_tx, decode_tx\n"
        "from chain.types.msgs import MsgSend\n"
        "from chain.types.codec import encode\n"
        "from chain.types.block import data_hash\n"
        "k = PrivateKey(bytes(range(1, 33)))\n"
        "body = TxBody(chain_id='t', messages=(MsgSend(from_address=k.address, "
        "to_address=k.address, amount=1),), memo='', timeout_height=5)\n"
        "raw = encode(sign_tx(body, k))\n"
        "tx = decode_tx(raw); tx.validate_basic()\n"
        "import native; print(native.BACKEND, data_hash([raw]).hex())\n"
    )
    run = _python(code, "auto")
    assert run.returncode == 0, run.stderr
    backend, root = run.stdout.split()
    assert backend == "fallback"
    from chain.crypto.secp256k1 import PrivateKey
    from chain.types.block import data_hash
    from chain.types.codec import encode
    from chain.types.msgs import MsgSend
    from chain.types.tx import TxBody, sign_tx

    k = PrivateKey(bytes(range(1, 33)))
    body = TxBody(chain_id="t", messages=(MsgSend(from_address=k.address, to_address=k.address,
                                                  amount=1),), memo="", timeout_height=5)
    # The same tx (deterministic signatures) gives the same data hash on the extension.
    assert data_hash([encode(sign_tx(body, k))]).hex() == root
