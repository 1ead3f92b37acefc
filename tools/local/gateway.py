"""The local HTTP gateway: what API Gateway's HTTP API does, on 127.0.0.1.

Each request is matched against the same route list the CDK app deploys
(`modelfn.api_routes`), turned into a payload-2.0 event and handed to that model's function
process. Responses and errors mirror the HTTP API's: 404 `{"message":"Not Found"}` for a route it
does not have, 413 for a body over its 10 MB limit or an event over Lambda's 6 MB, 500 when the function raises, crashes or
runs past its timeout (Lambda reports all three as a function error). Beyond the deployed API,
it serves `/docs` and `/openapi.json` for every model it routes to (tools/local/api_docs.py),
and, where the route list has the playground's routes, `/` (tools/local/playground.py): an
index of the models, each linking its page, which its function serves.

With an authorizer (`modelfn serve --auth iam|jwt`, tools/local/auth.py) every route is
authorized before its function runs, health routes included, as the deployed API authorizes them:
with JWT the playground page's own files open without a token, as on a JWT stage
(`modelfn.api_routes.skips_authorizer` decides for both), and the page sends the token on its
calls. A request for no route is still the 404 (API Gateway matches the route first). `/docs` and
`/openapi.json` (and the index `/`) are local additions the deployed API does not have, and stay
open so they load in a browser; behind an authorizer the index lists the models without their
cards, which are model data.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from modelfn.api_routes import PLAYGROUND_ROUTES, Route, find_route, skips_authorizer
from tools.local import api_docs, cors, playground
from tools.local.auth import Answer, Authorizer
from tools.local.events import http_api_event, response_parts
from tools.local.worker import LocalFunction, WorkerError

# API Gateway HTTP API payload quota (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html).
MAX_BODY_BYTES = 10 * 1024 * 1024
# Lambda's synchronous invocation payload quota: the whole event, base64 body included, must fit.
MAX_EVENT_BYTES = 6 * 1024 * 1024

log = logging.getLogger("modelfn.gateway")


def _json(message: str) -> bytes:
    return json.dumps({"message": message}).encode()


class _GatewayServer(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: 16 clients connecting at once overflowed it, and the
    # refused connections were reset or retried after the kernel's 1 s SYN timeout (the
    # benchmark's 16-client figure fell to 45 requests/s). API Gateway queues far more.
    request_queue_size = 128
    daemon_threads = True


class Gateway:
    """Routes (method, path) to a LocalFunction; runs a threading HTTP server until `stop`."""

    def __init__(
        self,
        routes: Sequence[tuple[Route, str]],
        functions: Mapping[str, LocalFunction],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        authorizer: Authorizer | None = None,
        cors_origins: Sequence[str] = (),
    ) -> None:
        self.routes = list(routes)
        self.cors_origins = list(cors_origins)  # [] (the default): no CORS, as on the API
        self.functions = dict(functions)
        self.authorizer = authorizer  # None: every route open (`modelfn:auth = "none"`)
        # The index is served where the models' pages are routed (`route_table(playground=True)`).
        self.playground = any(
            (route.for_model(model), model) in self.routes
            for model in self.functions
            for route in PLAYGROUND_ROUTES
        )
        handler = _make_handler(self)
        self._server = _GatewayServer((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{self._server.server_port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="modelfn-gateway", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def dispatch(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """The answer to any request, any method: CORS preflights are the API's own, and every
        other answer carries the CORS headers the API adds."""
        if cors.is_preflight(self.cors_origins, method, headers):
            return cors.preflight_answer(self.cors_origins, headers)
        status, out_headers, out_body = self._answer(method, target, headers, body)
        return status, cors.with_cors(self.cors_origins, headers, out_headers), out_body

    def _answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        try:
            docs = api_docs.answer(method, parts.path, self.documents, self.routes)
        except WorkerError as exc:
            log.error("%s", exc)
            return 500, {"content-type": "application/json"}, _json("Internal Server Error")
        if docs is not None:
            return docs
        if self.playground:
            # Behind an authorizer the cards (versions, metrics) are for token holders only.
            cards = self.cards if self.authorizer is None else self.names
            index = playground.answer(method, parts.path, cards)
            if index is not None:
                return index
        found = find_route(self.routes, method, parts.path)
        if found is None:
            return 404, {"content-type": "application/json"}, _json("Not Found")
        route, model, params = found
        authorized = None
        if self.authorizer is not None and not skips_authorizer(route, self.authorizer.mode):
            decision = self.authorizer.authorize(method, parts.path, parts.query, headers, body)
            if isinstance(decision, Answer):
                return decision.status, decision.headers, decision.body
            authorized = decision.context
        event = http_api_event(
            method,
            parts.path,
            query=parts.query,
            headers=headers,
            body=body,
            route_key=route.key,
            path_parameters=params or None,
        )
        if authorized is not None:
            event["requestContext"]["authorizer"] = authorized
        if len(json.dumps(event)) > MAX_EVENT_BYTES:
            return 413, {"content-type": "application/json"}, _json("Request Entity Too Large")
        try:
            result = self.functions[model].invoke(event)
        except WorkerError as exc:
            log.error("%s", exc)
            return 500, {"content-type": "application/json"}, _json("Internal Server Error")
        return response_parts(result)

    def cards(self) -> dict[str, playground.Card]:
        """Each function's model card, by model, or why it has none (asked for as any request is)."""
        found: dict[str, playground.Card] = {}
        for model, function in self.functions.items():
            path = f"/models/{model}/card.json"
            event = http_api_event("GET", path, route_key=f"GET {path}")
            try:
                status, _, body = response_parts(function.invoke(event))
            except WorkerError as exc:
                log.error("%s", exc)
                found[model] = "the function failed; see its log"
                continue
            if status == 200:
                found[model] = json.loads(body)
            else:
                try:
                    found[model] = str(json.loads(body).get("error", f"HTTP {status}"))
                except ValueError:
                    found[model] = f"HTTP {status}"
        return found

    def names(self) -> dict[str, playground.Card]:
        """The index's rows without the cards: each page asks for its token, then shows its card."""
        return dict.fromkeys(self.functions)

    def documents(self) -> dict[str, dict[str, Any]]:
        """Each function's own OpenAPI document, by model, asked for as any request is."""
        found = {}
        for model, function in self.functions.items():
            path = api_docs.OPENAPI_PATH
            event = http_api_event("GET", path, route_key=f"GET {path}")
            status, _, body = response_parts(function.invoke(event))
            if status != 200:
                raise WorkerError(f"{model}: GET {path} answered {status}: {body[:200]!r}")
            found[model] = json.loads(body)
        return found


def _make_handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "modelfn-local-gateway"

        def _handle(self) -> None:
            try:
                length = int(self.headers.get("content-length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._send(400, {"content-type": "application/json"}, _json("Bad Request"))
                self.close_connection = True
                return
            if length > MAX_BODY_BYTES:
                self._send(
                    413, {"content-type": "application/json"}, _json("Request Entity Too Large")
                )
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items()}
            status, out_headers, out_body = gateway.dispatch(self.command, self.path, headers, body)
            self._send(status, out_headers, out_body)

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() not in {"content-length", "connection", "transfer-encoding"}:
                    self.send_header(key, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":  # HEAD's answer is the headers alone (RFC 9110 9.3.2)
                self.wfile.write(body)

        def __getattr__(self, name: str) -> Any:
            # http.server answers a method it has no do_<METHOD> for with its own 501 HTML page;
            # the HTTP API matches every method against its routes and answers the rest with its
            # 404 JSON, so every method goes through dispatch (TRACE, CONNECT, PROPFIND, ...).
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

        def log_message(self, format: str, *args: object) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return Handler
