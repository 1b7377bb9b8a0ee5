"""Cold-start and demo benchmark: python bench/run.py [--repeat N] [--repeat-demo N] [--json]."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HANDLER_TARGET = 1.2  # import+init <= 1.2x the floor
STORY_TARGET = 3.0  # seconds after start-up

FLOOR = """
import json, time
t, c = time.perf_counter(), time.process_time()
import boto3
boto3.client("acm", region_name="us-east-1")
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - c}))
"""

# Every handler's _dependencies() loads its settings and profiles and creates every boto3
# client it uses. Two make an AWS call at init (the approval functions read their link key
# from Secrets Manager, export asks STS for its role): the bench answers them from a local
# endpoint (init_calls_stub), so their cost here is the client's real CPU work plus a loopback
# round trip, not AWS's latency. "cpu" is the child's own CPU time: wall minus cpu is waiting.
HANDLER = """
import importlib.util, json, sys, time
t, c = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("handler_under_bench", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
module._dependencies()
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - c}))
"""


def template_globals() -> dict[str, str]:
    """The literal environment variables template.yaml gives every function (Globals)."""
    from samtranslator.yaml_helper import yaml_parse

    sam = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))
    variables = sam["Globals"]["Function"]["Environment"]["Variables"]
    return {k: v for k, v in variables.items() if isinstance(v, str)}


def lambda_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOTO"))}
    env.update(template_globals())
    env.update(
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # fake: never sent anywhere
        POWERTOOLS_SERVICE_NAME="certrelay",
        FALLBACK_OWNER_EMAIL="security@example.com",
        STACK_ACCOUNT_ID="123456789012",
        STACK_PARTITION="aws",
        PROFILES_FILE=str(ROOT / "config" / "profiles.yaml"),
        EXPIRY_THRESHOLD_DAYS="45,30,15,7,3,1",
        # the other functions' settings (values only have to be well-formed here)
        APPROVAL_TABLE_NAME="bench-approvals",
        APPROVAL_BASE_URL="https://bench.execute-api.us-east-1.amazonaws.com",
        APPROVAL_KEY_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-key",
        NOTIFICATION_TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:bench",
        BUNDLE_BUCKET="bench-bundles",
        BUNDLE_KMS_KEY_ARN="arn:aws:kms:us-east-1:123456789012:key/bench",
        PASSPHRASE_SECRET_PREFIX="certrelay/export/",
        INSTALL_DOCUMENT="bench-install",
        INSTALL_CALLBACK="bench-install-callback",
        INSTALL_TOKEN_TABLE="bench-install-tokens",
        DISTRIBUTION_RECORD_TABLE_NAME="bench-distributions",
        DIGEST_TABLE_NAME="bench-digest",
        EVENT_TABLE_NAME="bench-events",
        APPROVAL_TOKEN_KEY_ARN="arn:aws:kms:us-east-1:123456789012:key/bench-token",
        PASSPHRASE_KMS_KEY_ARN="arn:aws:kms:us-east-1:123456789012:key/bench-passphrase",
    )
    return env


def child(
    code: str, *args: str, flags: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *flags, "-c", code, *args]
    environment = {**lambda_env(), **(env or {})}
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)


def timed(code: str, *args: str, retries: int = 3) -> float:
    """Seconds measured inside a fresh interpreter; retries (60 s apart) if a file is mid-edit."""
    return timed_figures(code, *args, retries=retries)["seconds"]


def timed_figures(
    code: str, *args: str, retries: int = 3, env: dict[str, str] | None = None
) -> dict[str, float]:
    """The child's figures (wall `seconds`, and `cpu`); retries (60 s apart) if a file is
    mid-edit."""
    for attempt in range(retries):
        done = child(code, *args, env=env)
        if done.returncode == 0:
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            return {key: float(value) for key, value in figures.items()}
        if attempt + 1 < retries:
            print(f"child failed, retrying in 60 s: {done.stderr.strip()[-300:]}", file=sys.stderr)
            time.sleep(60)
    raise RuntimeError(f"child failed: {done.stderr.strip()[-600:]}")


STS_IDENTITY = """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<GetCallerIdentityResult><Arn>{arn}</Arn><UserId>AROABENCH:bench</UserId>
<Account>123456789012</Account></GetCallerIdentityResult>
<ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></GetCallerIdentityResponse>"""


class _InitCalls(BaseHTTPRequestHandler):
    """The two AWS calls a handler's init makes, answered as AWS would (fake values): Secrets
    Manager GetSecretValue (the approval link key) and STS GetCallerIdentity (export's role)."""

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("X-Amz-Target") == "secretsmanager.GetSecretValue":
            secret = json.loads(raw).get("SecretId", "")
            answer = {"ARN": secret, "Name": "bench-key", "SecretString": "k" * 64}
            body, kind = json.dumps(answer).encode(), "application/x-amz-json-1.1"
        elif b"Action=GetCallerIdentity" in raw:
            role = "arn:aws:sts::123456789012:assumed-role/bench-ExportFunctionRole/bench"
            body, kind = STS_IDENTITY.format(arn=role).encode(), "text/xml"
        else:
            self.send_error(400, "the bench answers GetSecretValue and GetCallerIdentity only")
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the bench prints its own table."""


@contextlib.contextmanager
def init_calls_stub() -> Iterator[dict[str, str]]:
    """A local endpoint for the AWS calls handlers make at init; yields the environment that
    points boto3's Secrets Manager and STS clients at it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _InitCalls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield {"AWS_ENDPOINT_URL_SECRETS_MANAGER": url, "AWS_ENDPOINT_URL_STS": url}
    finally:
        server.shutdown()
        server.server_close()


def top_imports(app: Path, env: dict[str, str], count: int = 8) -> list[dict[str, Any]]:
    """The modules with the largest cumulative import time, from one -X importtime run."""
    done = child(HANDLER, str(app), flags=("-X", "importtime"), env=env)
    rows: list[tuple[float, str]] = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)", line)
        if match:
            rows.append((int(match[1]) / 1000, match[2]))
    rows.sort(reverse=True)
    return [{"module": name, "cumulative_ms": ms} for ms, name in rows[:count]]


def measure_cold_starts(repeat: int) -> dict[str, Any]:
    apps = sorted(ROOT.glob("functions/*/app.py"))
    floor: list[dict[str, float]] = []
    samples: dict[Path, list[dict[str, float]]] = {app: [] for app in apps}
    with init_calls_stub() as stub:
        for _ in range(repeat):  # interleaved so drift hits every figure alike
            floor.append(timed_figures(FLOOR))
            for app in apps:
                samples[app].append(timed_figures(HANDLER, str(app), env=stub))
        tops = {app: top_imports(app, stub) for app in apps}
    floor_wall = statistics.median(f["seconds"] for f in floor)
    floor_cpu = statistics.median(f["cpu"] for f in floor)
    handlers = {}
    for app, figures in samples.items():
        median = statistics.median(f["seconds"] for f in figures)
        cpu = statistics.median(f["cpu"] for f in figures)
        handlers[app.parent.name] = {
            "median_s": median,
            "cpu_s": cpu,
            "measured": "import+init",
            "ratio": median / floor_wall,
            "cpu_ratio": cpu / floor_cpu,
            "ok": median / floor_wall <= HANDLER_TARGET,
            "top_imports": tops[app],
        }
    return {
        "floor_median_s": floor_wall,
        "floor_cpu_s": floor_cpu,
        "target_ratio": HANDLER_TARGET,
        "handlers": handlers,
    }


def measure_demo(repeat: int) -> dict[str, Any]:
    code = "import sys; from certrelay.cli.main import main; sys.exit(main(['demo']))"
    figures: dict[str, list[float]] = {"startup_s": [], "story_s": [], "total_s": [], "wall_s": []}
    for _ in range(repeat):
        started = time.perf_counter()
        done = child(code)
        wall = time.perf_counter() - started
        ready = re.search(r"deployed on an embedded AWS in ([\d.]+) s", done.stdout)
        end = re.search(r"after start-up \(([\d.]+) s in all\)", done.stdout)
        story = re.search(r"in ([\d.]+) s after start-up", done.stdout)
        if done.returncode != 0 or not (ready and end and story):
            tail = (done.stderr.strip() or done.stdout.strip())[-800:]
            return {"error": f"demo failed (exit {done.returncode}):\n{tail}"}
        for key, value in zip(figures, (ready[1], story[1], end[1], wall), strict=True):
            figures[key].append(float(value))
    result: dict[str, Any] = {k: statistics.median(v) for k, v in figures.items()}
    result.update(runs=repeat, target_story_s=STORY_TARGET, ok=result["story_s"] <= STORY_TARGET)
    return result


def show(report: dict[str, Any]) -> None:
    cold, demo = report["cold_start"], report["demo"]
    print(f"Cold start (median of {report['repeat']}, measured inside a fresh interpreter)")
    if "error" in cold:
        print(f"  FAILED: {cold['error']}")
    else:
        wall, cpu = cold["floor_median_s"] * 1000, cold["floor_cpu_s"] * 1000
        print(f"  {'floor (boto3 + acm client)':<30} {wall:8.1f} ms wall {cpu:8.1f} ms cpu")
    for name, figure in cold.get("handlers", {}).items():
        verdict = "ok" if figure["ok"] else f"OVER {HANDLER_TARGET}x"
        label, ms = f"{name} {figure['measured']}", figure["median_s"] * 1000
        cpu = f"{figure['cpu_s'] * 1000:8.1f} ms cpu {figure['cpu_ratio']:.2f}x"
        print(f"  {label:<30} {ms:8.1f} ms wall {cpu}  wall {figure['ratio']:.2f}x  {verdict}")
        for row in figure["top_imports"]:
            print(f"      {row['module']:<40} {row['cumulative_ms']:8.1f} ms cumulative")
    print()
    if "error" in demo:
        print(f"Demo: FAILED: {demo['error']}")
        return
    verdict = "ok" if demo["ok"] else f"OVER {STORY_TARGET} s"
    print(f"Demo (median of {demo['runs']})")
    print(f"  {'start-up (deploy)':<30} {demo['startup_s']:8.2f} s")
    print(f"  {'story after start-up':<30} {demo['story_s']:8.2f} s  {verdict}")
    print(f"  {'total (as the demo reports)':<30} {demo['total_s']:8.2f} s")
    print(f"  {'process wall time':<30} {demo['wall_s']:8.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="cold-start runs (default 7)")
    parser.add_argument("--repeat-demo", type=int, default=3, help="demo runs (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    try:
        cold = measure_cold_starts(args.repeat)
    except RuntimeError as error:
        cold = {"error": str(error)}
    report = {"python": sys.version.split()[0], "repeat": args.repeat, "cold_start": cold}
    report["demo"] = measure_demo(args.repeat_demo)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        show(report)
    failed = "error" in cold or "error" in report["demo"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
