"""`certrelay local up`'s console: a small Step Functions console on 127.0.0.1 for a running
`LocalEngine`.

  GET  /                   executions, newest first (the page refreshes itself)
  GET  /executions/NAME    the state machine with the path taken, the event history, the emails,
                           and the certificate's distribution record
  POST /events             {"event": {...}, "cert": NAME | null}: starts executions, answers 202

GET never changes anything. Every history is redacted before it is read; every value is escaped;
the pages carry no script, and a strict CSP allows only their one stylesheet. POST takes JSON
only (a cross-site form cannot send it) and only from a loopback Host.
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import boto3

from certrelay.console import history, pages
from certrelay.console.diagram import START, Edge, Graph, graph
from certrelay.console.pages import Listed
from certrelay.console.svg import svg
from certrelay.distribution_record import CertificateRecord, read_record
from certrelay.errors import CertrelayError
from certrelay.events import parse_event
from certrelay.local.errors import BadInput
from certrelay.local.fleet.serving import Serving
from certrelay.local.http_api import send
from certrelay.local.intake import check_event

if TYPE_CHECKING:
    from certrelay.local.engine import LocalEngine

DEFAULT_PORT = 8790
MAX_EVENT_BYTES = 256 * 1024  # EventBridge's own limit for one event
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}

Response = tuple[int, dict[str, str], bytes]


class Console:
    """The console's HTTP server around a started engine; `start` serves, `stop` stops."""

    def __init__(self, engine: LocalEngine, *, port: int = DEFAULT_PORT) -> None:
        self.engine = engine
        self._sfn = boto3.client("stepfunctions", region_name=engine.fleet.region)
        self._dynamodb = boto3.client("dynamodb", region_name=engine.fleet.region)
        self._events = threading.Lock()  # one event at a time: the engine counts executions
        self._inputs: dict[str, dict[str, Any]] = {}  # execution arn -> its (redacted) input
        self._graphs: dict[str, Graph] = {}  # state machine arn -> its graph
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._stopped = False
        self._serving = Serving(self._server, name="certrelay-console")  # stops at once

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._serving.start()

    def stop(self) -> None:
        """Stop answering (idempotent): no event gets in once `local up` is shutting down."""
        if self._stopped:
            return
        self._stopped = True
        self._serving.stop()

    def __enter__(self) -> Console:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- requests ------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        path = urlsplit(target).path
        if not _from_loopback_host(headers):
            # Every method: a page of some other site whose name was rebound to 127.0.0.1 must
            # not read the console (its emails hold live approval links), nor post events.
            return _json(403, {"message": "the local console answers for localhost only"})
        if path == "/events" and method == "POST":
            return self.post_event(headers, body)
        if method in ("GET", "HEAD") and path != "/events":
            if path == "/":
                return _page(200, self.executions_page())
            if path.startswith("/executions/"):
                page = self.execution_page(unquote(path.removeprefix("/executions/")))
                return _page(200, page) if page else _page(404, pages.not_found(path))
            return _page(404, pages.not_found(path))
        allow = "POST" if path == "/events" else "GET, HEAD"
        status, answer, payload = _json(405, {"message": f"{method} is not allowed here"})
        return status, {**answer, "Allow": allow}, payload

    def post_event(self, headers: dict[str, str], body: bytes) -> Response:
        """Start the executions an event's rules match: 202 with their names and pages."""
        lowered = {k.lower(): v for k, v in headers.items()}
        if lowered.get("content-type", "").split(";")[0].strip() != "application/json":
            return _json(415, {"message": "send the event as application/json"})
        try:
            request = json.loads(body)
            if not isinstance(request, dict) or not isinstance(request.get("event"), dict):
                raise BadInput('the body must be {"event": {...}, "cert": NAME or null}')
            event: dict[str, Any] = request["event"]
            cert = request.get("cert")
            if cert is not None and not isinstance(cert, str):
                raise BadInput("cert must be the name of a fleet certificate, or null")
            fleet = self.engine.fleet
            with self._events:
                if cert:
                    stamped = self.engine.certificate_event(event, cert)
                    check_event(
                        stamped, account=fleet.account, region=fleet.region, parse=parse_event
                    )
                    event = self.engine.reported_event(event, cert)
                check_event(event, account=fleet.account, region=fleet.region, parse=parse_event)
                matched, started = self.engine.put_event(event)
        except RecursionError:
            return _json(400, {"message": "the body nests JSON too deeply"})
        except ValueError as error:  # invalid JSON
            return _json(400, {"message": f"the body is not valid JSON: {error}"})
        except (BadInput, CertrelayError) as error:
            message = error.args[0] if error.args else str(error)
            return _json(400, {"message": " ".join(str(message).split())})
        executions = [
            {"name": name, "url": f"{self.url}/executions/{quote(name)}"} for name, _ in started
        ]
        return _json(202, {"matched_rules": matched, "executions": executions})

    # -- what the pages show -------------------------------------------------------------------
    def executions(self) -> list[Listed]:
        """Every execution of the stack's state machines, newest first."""
        names = {seeded.arn: name for name, seeded in self.engine.certificates.items()}
        rows = []
        for machine in self._sfn.list_state_machines()["stateMachines"]:
            pages = self._sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"]
            )
            for summary in (item for page in pages for item in page["executions"]):
                event = self._input(summary["executionArn"])
                resources = event.get("resources") or [""]
                detail = event.get("detail")
                action = detail.get("Action") if isinstance(detail, dict) else None
                rows.append(
                    Listed(
                        name=summary["name"],
                        arn=summary["executionArn"],
                        status=summary["status"],
                        started=summary["startDate"],
                        event_kind=f"{event.get('detail-type', '?')}"
                        + (f" ({action})" if action else ""),
                        certificate=names.get(resources[0], str(resources[0]).split("/")[-1]),
                    )
                )
        return sorted(rows, key=lambda row: row.started, reverse=True)

    def _input(self, arn: str) -> dict[str, Any]:
        if arn not in self._inputs:
            text = self._sfn.describe_execution(executionArn=arn).get("input") or "{}"
            (cleaned,) = history.redact([{"input": text}])
            decoded = json.loads(cleaned["input"])
            self._inputs[arn] = decoded if isinstance(decoded, dict) else {}
        return self._inputs[arn]

    def executions_page(self) -> str:
        return pages.executions(self.executions(), self.port, self.engine.approval_url())

    def execution_page(self, name: str) -> str | None:
        found = next((row for row in self.executions() if row.name == name), None)
        if found is None:
            return None
        described = self._sfn.describe_execution(executionArn=found.arn)
        events = history.redact(self.engine.history(found.arn))
        (failure,) = history.redact([{k: described.get(k) for k in ("error", "cause")}])
        steps = history.steps(events)
        drawn = self._graph(described["stateMachineArn"])
        entered, failed, taken = path_taken(drawn, steps)
        drawing = svg(drawn, entered=entered, failed=failed, taken=taken, title=name)
        sent = [m for m in self.engine.notifications() if found.arn in str(m.get("body", ""))]
        return pages.execution(
            found,
            steps,
            drawing,
            error=failure.get("error"),
            cause=failure.get("cause"),
            emails=history.redact(sent),
            approvals=self.engine.approval_url(),
            record=self._record(found.arn),
        )

    def _record(self, arn: str) -> CertificateRecord | None:
        """The distribution record of the execution's certificate (a read: GetItem/Query)."""
        resources = self._input(arn).get("resources") or []
        stack = self.engine.stack
        if not resources or stack is None or "DistributionRecordTable" not in stack.resources:
            return None
        table = stack.ref("DistributionRecordTable")
        return read_record(self._dynamodb, table, str(resources[0]))

    def _graph(self, machine_arn: str) -> Graph:
        if machine_arn not in self._graphs:
            definition = self._sfn.describe_state_machine(stateMachineArn=machine_arn)
            self._graphs[machine_arn] = graph(json.loads(definition["definition"]))
        return self._graphs[machine_arn]


def path_taken(drawn: Graph, steps: list[history.Step]) -> tuple[set[str], set[str], set[Edge]]:
    """The node ids entered, the ones that failed, and the edges followed, from the steps.

    Steps of one region (the top level, or one Map iteration) follow each other in order; a
    step that failed left by a Catch edge, any other by a Next / Choice / Default edge.
    """
    ids = {node.name: node.id for node in drawn.nodes if node.kind != START}  # unique in ASL
    entered: set[str] = set()
    failed: set[str] = set()
    taken: set[Edge] = set()
    sequences: dict[tuple[int, str | None, int | None], list[history.Step]] = {}
    for step in steps:
        if step.name in ids:
            entered.add(ids[step.name])
            if step.failed:
                failed.add(ids[step.name])
            sequences.setdefault((step.depth, step.within, step.iteration), []).append(step)
    for sequence in sequences.values():
        first = drawn.node(ids[sequence[0].name])
        start = next(n for n in drawn.region(first.parent) if n.kind == START)
        entered.add(start.id)
        taken.update(e for e in drawn.edges if e.source == start.id and e.target == first.id)
        for before, after in itertools.pairwise(sequence):
            between = [
                e
                for e in drawn.edges
                if e.source == ids[before.name] and e.target == ids[after.name]
            ]
            fitting = [e for e in between if e.catch == before.failed]
            taken.update(fitting or between)
    return entered, failed, taken


def _page(status: int, html: str) -> Response:
    return status, {"Content-Type": "text/html; charset=utf-8", **pages.HEADERS}, html.encode()


def _json(status: int, payload: dict[str, Any]) -> Response:
    headers = {"Content-Type": "application/json", **pages.HEADERS}
    return status, headers, json.dumps(payload).encode()


def _handler(console: Console) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "certrelay-console"

        def version_string(self) -> str:
            return self.server_version

        def _serve(self) -> None:
            declared = self.headers.get("content-length") or "0"
            length = int(declared) if declared.isdigit() else -1
            if length < 0:
                status, headers, body = _json(400, {"message": "a bad Content-Length"})
            elif length > MAX_EVENT_BYTES:
                status, headers, body = _json(413, {"message": "the event is over 256 KB"})
            else:
                data = self.rfile.read(length) if length else b""
                try:
                    status, headers, body = console.handle(
                        self.command, self.path, dict(self.headers.items()), data
                    )
                except Exception as error:  # the console must outlive one bad request
                    status, headers, body = _json(500, {"message": type(error).__name__})
            send(self, status, headers.items(), body)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the terminal shows what happened, not every request."""

    return Handler


def _from_loopback_host(headers: dict[str, str]) -> bool:
    """The request names this machine in its Host header (a DNS-rebinding page does not)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get("host", "").rsplit(":", 1)[0].strip("[]") in LOOPBACK_HOSTS
