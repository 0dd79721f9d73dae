"""A stand-in for `python -m vllm.entrypoints.openai.api_server`, for fast tests of the manager
and the proxy. Run as `fake_vllm.py -m vllm.entrypoints.openai.api_server --port N ...`.

FAKE_VLLM_MODE: "ok" (serve), "exit" (print to the log and exit 3), "never-healthy" (serve but
/health is 503), "ignore-term" (serve and ignore SIGTERM). FAKE_VLLM_CHILD_PID_FILE: start a child
process (like vLLM's engine core) and write its pid there. A streamed chat completion sends its
first SSE event, then waits until GET /release before it sends the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RELEASE = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    model = "fake"

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        sys.stdout.write("fake-vllm: " + format % args + "\n")

    def _json(self, status: int, value: object, extra: dict[str, str] | None = None) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for name, v in (extra or {}).items():
            self.send_header(name, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        if self.path == "/health":
            healthy = os.environ.get("FAKE_VLLM_MODE") != "never-healthy"
            self._json(200 if healthy else 503, {})
        elif self.path.startswith("/v1/models"):
            self._json(
                200,
                {
                    "object": "list",
                    "data": [{"id": self.model}],
                    "query": self.path.partition("?")[2],
                },
            )
        elif self.path == "/release":
            RELEASE.set()
            self._json(200, {})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": "not found"})
            return
        echo = {
            "x-fake-echo": self.headers.get("x-custom", ""),
            "x-saw-connection-token": str("x-drop-me" in self.headers),
        }
        if not body.get("stream"):
            self._json(200, {"model": body.get("model"), "choices": [{"index": 0}]}, echo)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        for name, v in echo.items():
            self.send_header(name, v)
        self.end_headers()

        def chunk(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        chunk(b'data: {"n": 1}\n\n')
        RELEASE.wait()
        chunk(b'data: {"n": 2}\n\n')
        chunk(b"data: [DONE]\n\n")
        chunk(b"")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-m")
    parser.add_argument("--model", required=True)
    parser.add_argument("--served-model-name")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args, _ = parser.parse_known_args()
    mode = os.environ.get("FAKE_VLLM_MODE", "ok")
    print(f"fake-vllm: argv {sys.argv[1:]} cwd {os.getcwd()}", flush=True)
    print(f"fake-vllm: HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')}", flush=True)
    if mode == "exit":
        print("fake-vllm: RuntimeError: Engine core initialization failed", flush=True)
        sys.exit(3)
    if mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pid_file = os.environ.get("FAKE_VLLM_CHILD_PID_FILE")
    if pid_file:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        with open(pid_file, "w") as f:
            f.write(str(child.pid))
    Handler.model = args.served_model_name or args.model
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
