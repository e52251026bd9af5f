"""A tiny stand-in gateway for command-build tests, started from a template by path.

It serves /health/liveliness and optionally /metrics, and can misbehave on request:
crash after a delay, spawn a grandchild, ignore SIGTERM, print its master key.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--crash-after", type=float, default=None)
    parser.add_argument("--exit-code", type=int, default=3)
    parser.add_argument("--kill-self-after", type=float, default=None)
    parser.add_argument("--spawn-child", action="store_true")
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--print-key", action="store_true")
    parser.add_argument("--metrics", action="store_true")
    parser.add_argument("--never-ready", action="store_true")
    args = parser.parse_args()

    print(f"fake gateway starting; config {args.config}", flush=True)
    if not Path(args.config).is_file():
        print(f"config file {args.config} missing", flush=True)
        sys.exit(2)
    if args.print_key:
        print(f"master key is {os.environ['GATEWAY_MASTER_KEY']}", flush=True)
    if args.ignore_term:
        signal.signal(signal.SIGTERM, lambda *_: print("ignoring SIGTERM", flush=True))
    if args.spawn_child:
        child = [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)",
        ]
        proc = subprocess.Popen(child)
        print(f"spawned child {proc.pid}", flush=True)
    if args.crash_after is not None:
        threading.Timer(args.crash_after, _crash, (args.exit_code,)).start()
    if args.kill_self_after is not None:
        threading.Timer(args.kill_self_after, os.kill, (os.getpid(), signal.SIGKILL)).start()
    Handler.never_ready = args.never_ready
    Handler.metrics = args.metrics
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()


def _crash(code: int) -> None:
    print("fatal: simulated crash", flush=True)
    os._exit(code)


class Handler(BaseHTTPRequestHandler):
    never_ready = False
    metrics = False

    def do_GET(self) -> None:
        if self.path == "/health/liveliness" and not self.never_ready:
            self._send(200, b'"I\'m alive!"')
        elif self.path == "/metrics" and self.metrics:
            body = (
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                "# TYPE process_resident_memory_bytes gauge\n"
                "process_resident_memory_bytes 104857600.0\n"
                f"process_cpu_seconds_total {time.process_time() + 1000:.3f}\n"
                "process_open_fds 17.0\n"
            )
            self._send(200, body.encode())
        else:
            self._send(404, b"{}")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    main()
