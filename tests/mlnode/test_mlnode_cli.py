"""`gonka mlnode`: start's failure path and make-tiny-model's delegation."""

from __future__ import annotations

import socket
import sys
import types

from tools.cli import main


def test_start_on_a_port_in_use_is_one_error_line(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["mlnode", "start", "--port", str(port), "--home", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: cannot serve on 127.0.0.1:{port}: " in err
    assert "Traceback" not in err


def test_make_tiny_model_writes_where_it_is_told(tmp_path, capsys, monkeypatch):
    calls = []
    fake = types.ModuleType("mlnode.inference.tiny_model")

    def make_tiny_model(directory, **kw):
        calls.append((directory, kw))
        return tmp_path / "tiny"
    fake.make_tiny_model = make_tiny_model
    monkeypatch.setitem(sys.modules, "mlnode.inference.tiny_model", fake)

    code = main(["mlnode", "make-tiny-model", str(tmp_path / "tiny"), "--hidden", "64"])

    assert code == 0
    assert calls == [(str(tmp_path / "tiny"), dict(hidden=64, n_heads=2, n_layers=2,
                                                    vocab_size=512, seed=0))]
    assert capsys.readouterr().out.strip() == str(tmp_path / "tiny")


def test_a_bad_port_is_a_usage_error():
    assert main(["mlnode", "start", "--port", "70000"]) == 2
