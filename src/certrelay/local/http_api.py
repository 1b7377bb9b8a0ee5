"""An HTTP API of the stack, served on localhost by the same Lambda handler.

API Gateway HTTP APIs (payload format 2.0) are emulated from the template's own
`AWS::ApiGatewayV2::Route` and `Integration` resources: each request becomes the v2 event API
Gateway would send, the integration's function runs in-process, and its answer (statusCode,
headers, cookies, body, isBase64Encoded) goes back to the client. Only loopback is served.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from certrelay.local.fleet.serving import Serving

MAX_BODY = 1024 * 1024  # API Gateway's own limit is 10 MB; nothing here needs more than a form
TEXT_TYPES = ("text/", "application/json")


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as in the route key: /approvals/{id}
    function: str
    authorization: str = "NONE"

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None


Invoke = Callable[[str, bytes], tuple[bytes, str | None]]


class LocalHttpApi:
    """One HTTP API on 127.0.0.1:<port>; `url` is what the template's execute-api URL maps to."""

    def __init__(self, api_id: str, *, account: str, invoke: Invoke, port: int = 0) -> None:
        self.api_id = api_id
        self.account = account
        self.routes: list[Route] = []
        self._invoke = invoke
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._serving = Serving(self._server, name=f"http-api-{api_id}")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._serving.start()

    def stop(self) -> None:
        self._serving.stop()

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request in, (status, headers, body) out."""
        parts = urlsplit(target)
        for route in self.routes:
            parameters = route.match(method, parts.path)
            if parameters is None:
                continue
            event = self._event(route, parameters, parts.path, parts.query, headers, body, ip)
            payload, error = self._invoke(route.function, json.dumps(event).encode())
            if error:
                return _plain(500, '{"message":"Internal Server Error"}', "application/json")
            return _response(json.loads(payload or b"null"))
        return _plain(404, '{"message":"Not Found"}', "application/json")

    def _event(
        self,
        route: Route,
        parameters: dict[str, str],
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        ip: str,
    ) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        lowered = {k.lower(): v for k, v in headers.items()}
        # Payload 2.0 lists the Cookie header's pairs in `cookies`, not among the headers.
        cookie_header = lowered.pop("cookie", "")
        content_type = lowered.get("content-type", "")
        is_text = not body or content_type.startswith(TEXT_TYPES)
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": lowered,
            "requestContext": {
                "accountId": self.account,
                "apiId": self.api_id,
                "domainName": lowered.get("host", "127.0.0.1"),
                "domainPrefix": self.api_id,
                "http": {
                    "method": route.method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": ip,
                    "userAgent": lowered.get("user-agent", ""),
                },
                "requestId": uuid.uuid4().hex,
                "routeKey": route.key,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "pathParameters": parameters,
            "isBase64Encoded": not is_text,
        }
        if cookie_header:
            event["cookies"] = [c.strip() for c in cookie_header.split(";") if c.strip()]
        if query:
            event["queryStringParameters"] = dict(parse_qsl(query, keep_blank_values=True))
        if body:
            event["body"] = body.decode("utf-8") if is_text else base64.b64encode(body).decode()
        return event

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "certrelay-local"
            sys_version = ""

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    status, headers, body = _plain(
                        413, '{"message":"Request too large"}', "application/json"
                    )
                else:
                    data = self.rfile.read(length) if length else b""
                    status, headers, body = api.handle(
                        self.command,
                        self.path,
                        dict(self.headers.items()),
                        data,
                        self.client_address[0],
                    )
                send(self, status, headers, body)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the stack's access log is the function's own structured log."""

        return Handler


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    headers: Iterable[tuple[str, str]],
    body: bytes,
) -> None:
    """Write one response: status, headers, Content-Length, and the body unless it is HEAD."""
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def _response(answer: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """API Gateway's reading of a v2 Lambda answer (a bare value becomes a JSON 200)."""
    if not isinstance(answer, dict) or "statusCode" not in answer:
        return 200, [("Content-Type", "application/json")], json.dumps(answer).encode()
    headers = [(k, str(v)) for k, v in (answer.get("headers") or {}).items()]
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    headers.extend(("Set-Cookie", cookie) for cookie in answer.get("cookies") or [])
    raw = answer.get("body") or ""
    body = base64.b64decode(raw) if answer.get("isBase64Encoded") else str(raw).encode()
    return int(answer["statusCode"]), headers, body


def _plain(status: int, text: str, content_type: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", content_type)], text.encode()
