"""A real local HTTP server speaking the OpenAI chat-completions protocol, for tests of the openai client code."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    """Answers POST /v1/chat/completions and GET /v1/models; records what it was sent.

    `statuses` scripts the first responses (e.g. [429] = one 429, then 200s). Error bodies
    echo the Authorization header, as some real servers do, to test that we redact keys.
    `reply` (request body -> text, or a message dict such as {"content": None, "tool_calls": [...]}) scripts what the
    model says; by default each text names its prompt.
    """

    def __init__(self, statuses: list[int] = (), delay: float = 0.0, max_choices: int | None = None,
                 reply: Callable[[dict], str] | None = None):
        self.reply = reply
        self.statuses = list(statuses)
        self.delay = delay
        self.max_choices = max_choices
        self.requests: list[dict] = []
        self.authorizations: list[str | None] = []  # each POST's Authorization header
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.httpd = QuietServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "ChatServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def completion(self, body: dict) -> dict:
        """One choice per requested n (capped by max_choices)."""
        last = body["messages"][-1]["content"]
        k = min(body.get("n", 1), self.max_choices or 1000)
        prompt, completion = sum(len((m.get("content") or "").split()) for m in body["messages"]), 5 * k
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": i, "message": self._message(body, i, last), "finish_reason": "stop"}
                for i in range(k)
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    def _message(self, body: dict, i: int, last: str) -> dict:
        said = self.reply(body) if self.reply else f"reply {i} to {last}"
        return {"role": "assistant", **(said if isinstance(said, dict) else {"content": said})}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def send_json(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    model = {"id": "tiny", "object": "model", "created": 0, "owned_by": "test"}
                    self.send_json(200, {"object": "list", "data": [model]})
                else:
                    self.send_json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.authorizations.append(self.headers.get("Authorization"))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    status = server.statuses.pop(0) if server.statuses else 200
                try:
                    time.sleep(server.delay)
                    if status == 200:
                        answer = server.completion(body)
                    else:
                        auth = self.headers.get("Authorization")
                        answer = {"error": {"message": f"scripted {status}; you sent {auth}", "type": "test"}}
                finally:
                    # Out of flight before the answer leaves: once the client has it, its next request may come in.
                    with server.lock:
                        server.in_flight -= 1
                self.send_json(status, answer)

        return Handler


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that timed out and hung up is expected here, not worth a traceback."""
