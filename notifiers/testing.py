"""A stand-in for the Slack Web API on 127.0.0.1, for tests (ours and our users').

Point slack-sdk at it with ``base_url=server.base_url``. It records every request and
answers ``ok`` with a fresh ``ts``, unless a scripted failure is queued first:

    with FakeSlackServer() as slack:
        slack.fail_next(FakeSlackServer.rate_limited(retry_after_s=1))
        ...
        slack.wait_for_requests(2, timeout_s=5)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

#: The ``method`` recorded for posts to ``FakeSlackServer.webhook_url``.
INCOMING_WEBHOOK = "incoming-webhook"


@dataclass(frozen=True, slots=True)
class SlackRequest:
    """One request the stand-in received."""

    method: str  # the Web API method, e.g. "chat.postMessage"
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    """A reply to give instead of ``ok``: an HTTP status, a JSON body, headers, a delay."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop_connection: bool = False
    #: Sent instead of the JSON ``body`` when set (incoming webhooks answer plain text).
    raw_body: str | None = None


class FakeSlackServer:
    """A real HTTP server on 127.0.0.1 (port 0) that speaks enough of the Slack Web API."""

    def __init__(self) -> None:
        self.requests: list[SlackRequest] = []
        self._script: deque[ScriptedReply] = deque()
        self._lock = threading.Condition()
        self._ts = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __repr__(self) -> str:
        return f"<FakeSlackServer port={self.port} requests={len(self.requests)}>"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give slack-sdk's ``WebClient``."""
        return f"http://127.0.0.1:{self.port}/api/"

    def start(self) -> FakeSlackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSlackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def webhook_url(self) -> str:
        """An incoming-webhook URL served by this stand-in (``SlackWebhookNotifier(url)``)."""
        return f"http://127.0.0.1:{self.port}/services/T000/B000/secret"

    def fail_next(self, *replies: ScriptedReply) -> None:
        """Answer the next requests with ``replies``, in order, then ``ok`` again."""
        with self._lock:
            self._script.extend(replies)

    @staticmethod
    def rate_limited(*, retry_after_s: int = 1) -> ScriptedReply:
        return ScriptedReply(
            status=429,
            body={"ok": False, "error": "ratelimited"},
            headers={"Retry-After": str(retry_after_s)},
        )

    @staticmethod
    def server_error() -> ScriptedReply:
        return ScriptedReply(status=500, body={"ok": False, "error": "internal_error"})

    @staticmethod
    def webhook_error(status: int, code: str) -> ScriptedReply:
        """An incoming-webhook refusal, e.g. ``(404, "no_service")``, as plain text."""
        return ScriptedReply(status=status, raw_body=code)

    @staticmethod
    def api_error(code: str) -> ScriptedReply:
        """An HTTP 200 with ``ok: false``, as Slack reports ``invalid_auth`` and the like."""
        return ScriptedReply(status=200, body={"ok": False, "error": code})

    def messages(self, method: str = "chat.postMessage") -> list[dict[str, Any]]:
        """The bodies of the requests to ``method`` answered so far."""
        with self._lock:
            return [request.body for request in self.requests if request.method == method]

    def wait_for_requests(self, count: int, *, timeout_s: float = 10.0) -> list[SlackRequest]:
        """Block until at least ``count`` requests arrived; fail loudly after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"fake Slack got {len(self.requests)} request(s), expected {count} "
                        f"within {timeout_s}s: {[r.body for r in self.requests]}"
                    )
                self._lock.wait(remaining)
            return list(self.requests)

    def _record(self, request: SlackRequest) -> ScriptedReply:
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()
            if self._script:
                return self._script.popleft()
            if request.method == INCOMING_WEBHOOK:
                return ScriptedReply(raw_body="ok")
            self._ts += 1
            ts = request.body.get("ts") if request.method == "chat.update" else None
            body = {
                "ok": True,
                "channel": request.body.get("channel"),
                "ts": ts or f"{time.time():.0f}.{self._ts:06d}",
            }
            return ScriptedReply(body=body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                reply = server._record(
                    SlackRequest(
                        method=_method(self.path),
                        body=_parse_body(raw, self.headers.get("Content-Type", "")),
                        headers=dict(self.headers.items()),
                        received_at=time.monotonic(),
                    )
                )
                time.sleep(reply.delay_s)
                if reply.drop_connection:
                    self.close_connection = True
                    return
                payload = (
                    reply.raw_body if reply.raw_body is not None else json.dumps(reply.body)
                ).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
                return

        return Handler


def _method(path: str) -> str:
    return INCOMING_WEBHOOK if path.startswith("/services/") else path.rsplit("/", 1)[-1]


def _parse_body(raw: str, content_type: str) -> dict[str, Any]:
    if "json" in content_type:
        return dict(json.loads(raw or "{}"))
    return {key: values[0] for key, values in parse_qs(raw).items()}


@dataclass(frozen=True, slots=True)
class ReceivedWebhook:
    """One POST the webhook receiver got."""

    path: str
    body: bytes
    headers: dict[str, str]
    received_at: float  # time.monotonic()


class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1 (port 0) that records posts and answers 204.

    ``fail_next(503, 503)`` scripts the next statuses; ``answer_all(400)`` makes every
    post answer that status. Receivers check signatures with ``notifiers.verify``.
    """

    def __init__(self) -> None:
        self.received: list[ReceivedWebhook] = []
        self._script: deque[int] = deque()
        self._always: int | None = None
        self._lock = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __repr__(self) -> str:
        return f"<WebhookReceiver port={self.port} received={len(self.received)}>"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/hookbus"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, *statuses: int) -> None:
        """Answer the next posts with ``statuses``, in order, then 204 again."""
        with self._lock:
            self._script.extend(statuses)

    def answer_all(self, status: int | None) -> None:
        """Answer every post with ``status`` (``None``: back to 204)."""
        with self._lock:
            self._always = status

    def wait_for(self, count: int, *, timeout_s: float = 10.0) -> list[ReceivedWebhook]:
        """Block until ``count`` posts arrived; fail loudly after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"webhook receiver got {len(self.received)} post(s), expected {count} "
                        f"within {timeout_s}s"
                    )
                self._lock.wait(remaining)
            return list(self.received)

    def _record(self, received: ReceivedWebhook) -> int:
        with self._lock:
            self.received.append(received)
            self._lock.notify_all()
            if self._script:
                return self._script.popleft()
            return self._always or 204

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status = receiver._record(
                    ReceivedWebhook(
                        path=self.path,
                        body=self.rfile.read(length),
                        headers=dict(self.headers.items()),
                        received_at=time.monotonic(),
                    )
                )
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
                return

        return Handler
