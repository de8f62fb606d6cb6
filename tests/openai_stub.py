"""A real HTTP server on 127.0.0.1 that speaks OpenAI's two text endpoints, with faults on demand.

Replies are drawn from a fixed distribution by each request's seed, so the same request always gets
the same reply (like a server that honours `seed`). Faults: the first `reject` requests get 429, every
answer can wait `delay` seconds, and the server can stop dead after `die_after` answers.
"""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubServer:
    def __init__(self, replies: dict[str, float], *, reject: int = 0, delay: float = 0.0, die_after: int | None = None,
                 honour_n: bool = True, port: int = 0):
        self.replies = replies
        self.reject = reject
        self.delay = delay
        self.die_after = die_after
        self.honour_n = honour_n
        self.rejected = 0
        self.answered = 0
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub._lock:
                    stub.bodies.append(body)
                    stub.headers.append({k.lower(): v for k, v in self.headers.items()})
                    if stub.rejected < stub.reject:
                        stub.rejected += 1
                        return self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"Retry-After": "0"})
                    if stub.die_after is not None and stub.answered >= stub.die_after:
                        self.close_connection = True
                        self.connection.close()  # a crashed server: the connection drops with no answer
                        return None
                    stub.answered += 1
                if stub.delay:
                    time.sleep(stub.delay)
                n = body.get("n", 1) if stub.honour_n else 1
                texts = [random.Random(body.get("seed", 0) * 1000 + i).choices(list(stub.replies), list(stub.replies.values()))[0] for i in range(n)]
                if self.path.endswith("/chat/completions"):
                    choices = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"} for i, t in enumerate(texts)]
                    kind = "chat.completion"
                else:
                    choices = [{"index": i, "text": t, "finish_reason": "stop", "logprobs": None} for i, t in enumerate(texts)]
                    kind = "text_completion"
                usage = {"prompt_tokens": 10, "completion_tokens": 2 * len(texts), "total_tokens": 10 + 2 * len(texts)}
                return self._send(200, {"id": "stub", "object": kind, "created": 0, "model": body["model"], "choices": choices, "usage": usage})

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "StubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
