"""Issue 14's five figures, each measured in one run against a floor measured in the same run.

python bench/run.py [--repeat N] [--repeat-cli N] [--make-test] [--only PARTS] [--cli-only]
    [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HANDLER_TARGET = 1.2  # import+init <= 1.2x the floor
DEMO_TARGET = 4.0  # `certrelay demo --decision approve` <= 4x FLOOR_PROCESS
BAD_EVENT_TARGET = 1.5  # `certrelay local run` on a bad event <= 1.5x BOTO3_PROCESS
GOOD_EVENT_TARGET = 3.0  # `certrelay local run` on a good event <= 3x FLOOR_PROCESS
MAKE_TEST_TARGET = 150.0  # seconds
SLEEP_TARGET = 0  # time.sleep calls while the engine runs the demo

# The floors of figures 1 and 2, as whole processes (the commands).
FLOOR_PROCESS = "import boto3, moto; boto3.client('acm', region_name='us-east-1')"
BOTO3_PROCESS = "import boto3"
# Figure 5: the demo with time.sleep counted (any thread, any caller).
COUNT_SLEEPS = """
import json, sys, time
real, calls = time.sleep, []
def sleep(seconds):
    calls.append(seconds)
    real(seconds)
time.sleep = sleep
from certrelay.cli.main import main
status = main(["demo", "--decision", "approve", "--json"])
print(json.dumps({"status": status, "calls": len(calls), "seconds": sum(calls)}))
"""

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
    from certrelay.local.fleet.serving import Serving  # stops at once, not at a 0.5 s poll

    serving = Serving(ThreadingHTTPServer(("127.0.0.1", 0), _InitCalls), name="bench-init-calls")
    serving.start()
    url = f"http://127.0.0.1:{serving.server.server_address[1]}"
    try:
        yield {"AWS_ENDPOINT_URL_SECRETS_MANAGER": url, "AWS_ENDPOINT_URL_STS": url}
    finally:
        serving.stop()


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


def compile_bytecode() -> None:
    """The tree's bytecode before anything is timed, as it is deployed and run: the Lambda layer
    ships its modules compiled (src/Makefile: layer-bytecode), and a plain Python run leaves
    them compiled for the next. Where PYTHONDONTWRITEBYTECODE is set no run writes it, and every
    measured process would compile the modules it imports again (`make bytecode` does the same)."""
    folders = [str(ROOT / "src")]  # not functions/: their packages ship app.py uncompiled
    command = [sys.executable, "-m", "compileall", "-q", "-j", "0", *folders]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    # ... and a test run may have left bytecode of theirs (the tests write it while collected):
    # sam build leaves __pycache__ out, and Lambda compiles app.py at each cold start.
    for cache in ROOT.glob("functions/*/__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def measure_cold_starts(repeat: int) -> dict[str, Any]:
    apps = sorted(ROOT.glob("functions/*/app.py"))
    floor: list[dict[str, float]] = []
    samples: dict[Path, list[dict[str, float]]] = {app: [] for app in apps}
    load = [os.getloadavg()[0]]  # 1-minute load before and after: 2 cores shared, ratios move
    with init_calls_stub() as stub:
        for _ in range(repeat):  # interleaved so drift hits every figure alike
            floor.append(timed_figures(FLOOR))
            for app in apps:
                samples[app].append(timed_figures(HANDLER, str(app), env=stub))
        tops = {app: top_imports(app, stub) for app in apps}
    load.append(os.getloadavg()[0])
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
        "load": load,
        "floor_median_s": floor_wall,
        "floor_cpu_s": floor_cpu,
        "target_ratio": HANDLER_TARGET,
        "handlers": handlers,
    }


def cli_env() -> dict[str, str]:
    """The caller's environment without AWS settings, importing this tree's certrelay."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOTO"))}
    paths = [str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def process_seconds(*args: str, expect: int = 0) -> tuple[float, str]:
    """Wall seconds of `python ARGS` as a whole process (no terminal), and its stdout."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != expect:
        tail = (done.stderr.strip() or done.stdout.strip())[-800:]
        raise RuntimeError(f"python {' '.join(args)[:80]} exited {done.returncode}:\n{tail}")
    return seconds, done.stdout


def bad_event_file(folder: Path) -> Path:
    """events/expired.json without its detail: the stack refuses it (issue 14's example)."""
    event = json.loads((ROOT / "events" / "expired.json").read_text(encoding="utf-8"))
    event.pop("detail")
    path = folder / "no-detail.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    return path


def measure_cli(repeat: int) -> dict[str, Any]:
    """Figures 1 and 2: the demo and `local run` against their floors, interleaved; medians."""
    with tempfile.TemporaryDirectory() as folder:
        bad = str(bad_event_file(Path(folder)))
        good = ("events/expired.json", "--cert", "public-site")
        commands: dict[str, tuple[tuple[str, ...], int]] = {
            "floor": (("-c", FLOOR_PROCESS), 0),
            "boto3": (("-c", BOTO3_PROCESS), 0),
            "bad_event": (("-m", "certrelay.cli", "local", "run", bad), 2),
            "good_event": (("-m", "certrelay.cli", "local", "run", *good), 0),
            "demo": (("-m", "certrelay.cli", "demo", "--decision", "approve"), 0),
        }
        for args, expect in commands.values():  # warm-up: OS caches, the engine's disk cache
            process_seconds(*args, expect=expect)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        outputs: list[str] = []
        for _ in range(repeat):  # interleaved so drift (other load) hits every figure alike
            for name, (args, expect) in commands.items():
                seconds, out = process_seconds(*args, expect=expect)
                samples[name].append(seconds)
                if name == "demo":
                    outputs.append(out)
    median = {name: statistics.median(times) for name, times in samples.items()}
    return {"runs": repeat, "median_s": median, "samples_s": samples, **_demo_phases(outputs)}


def _demo_phases(outputs: list[str]) -> dict[str, float]:
    """The demo's own report, medians: start-up (template deployed) and the story after it."""
    ready = [re.search(r"deployed on an embedded AWS in ([\d.]+) s", out) for out in outputs]
    story = [re.search(r"in ([\d.]+) s after start-up", out) for out in outputs]
    found = [(a, b) for a, b in zip(ready, story, strict=True) if a and b]
    if not found:
        return {}
    return {
        "demo_startup_s": statistics.median(float(a[1]) for a, _ in found),
        "demo_story_s": statistics.median(float(b[1]) for _, b in found),
    }


def measure_sleeps() -> dict[str, Any]:
    """Figure 5: time.sleep calls (and seconds asleep) while `certrelay demo` runs, any thread."""
    done = subprocess.run(
        [sys.executable, "-c", COUNT_SLEEPS],
        cwd=ROOT,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip() or done.stdout.strip())[-800:]}
    counted = json.loads(done.stdout.strip().splitlines()[-1])
    return {"calls": counted["calls"], "seconds": counted["seconds"]}


def measure_make_test() -> dict[str, Any]:
    """Figure 4 (opt-in: minutes): `make test` itself on this tree, lint and all, as CI runs it
    (on a fresh clone it also installs checkov's venv, which this tree may already have)."""
    started = time.perf_counter()
    done = subprocess.run(
        ["make", "--no-print-directory", "test"],
        cwd=ROOT,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if " passed" in line or " failed" in line]
    lines = lines or done.stderr.strip().splitlines() or [""]
    return {"seconds": seconds, "exit": done.returncode, "summary": lines[-1][-200:]}


def _ratio_rows(cli: dict[str, Any]) -> list[dict[str, Any]]:
    if "skipped" in cli:
        return [{"figure": "1-2", "name": "demo and local run", "skipped": "--only cli"}]
    if "error" in cli:
        return [{"figure": "1-2", "name": "demo and local run", "error": cli["error"]}]
    m = cli["median_s"]
    rows = []
    for number, name, key, floor, target in (
        ("1", "demo --decision approve", "demo", "floor", DEMO_TARGET),
        ("2", "local run, bad event", "bad_event", "boto3", BAD_EVENT_TARGET),
        ("2", "local run, good event", "good_event", "floor", GOOD_EVENT_TARGET),
    ):
        ratio = m[key] / m[floor]
        detail = f"{m[key]:.2f} s / {floor} {m[floor]:.2f} s"
        rows.append(
            {"figure": number, "name": name, "value": ratio, "unit": "x", "detail": detail}
            | {"target": target, "ok": ratio <= target}
        )
    return rows


def figures(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 14's five figures: name, value, unit, target, ok (or error, or skipped)."""
    rows = _ratio_rows(report["cli"])
    cold = report["cold_start"]
    if "skipped" in cold:
        rows.append({"figure": "3", "name": "handler cold start", "skipped": "--only handlers"})
    elif "error" in cold:
        rows.append({"figure": "3", "name": "handler cold start", "error": cold["error"]})
    else:
        worst_name, worst = max(cold["handlers"].items(), key=lambda item: item[1]["ratio"])
        within = sum(h["ok"] for h in cold["handlers"].values())
        detail = f"{worst_name}, {worst['measured']}; {within} of {len(cold['handlers'])} within"
        rows.append(
            {"figure": "3", "name": "handler cold start, worst", "value": worst["ratio"]}
            | {"unit": "x", "detail": detail}
            | {"target": HANDLER_TARGET, "ok": all(h["ok"] for h in cold["handlers"].values())}
        )
    tests = report.get("make_test")
    if tests is None:
        rows.append({"figure": "4", "name": "make test (pytest)", "skipped": "--make-test"})
    else:
        ok = tests["exit"] == 0 and tests["seconds"] <= MAKE_TEST_TARGET
        rows.append(
            {"figure": "4", "name": "make test (pytest)", "value": tests["seconds"], "unit": "s"}
            | {"detail": tests["summary"], "target": MAKE_TEST_TARGET, "ok": ok}
        )
    sleeps = report["sleeps"]
    if "skipped" in sleeps:
        rows.append({"figure": "5", "name": "time.sleep in the demo", "skipped": "--only sleeps"})
    elif "error" in sleeps:
        rows.append({"figure": "5", "name": "time.sleep in the demo", "error": sleeps["error"]})
    else:
        rows.append(
            {"figure": "5", "name": "time.sleep calls in the demo", "value": sleeps["calls"]}
            | {"unit": "", "detail": f"{sleeps['seconds']:.2f} s asleep"}
            | {"target": SLEEP_TARGET, "ok": sleeps["calls"] <= SLEEP_TARGET}
        )
    return rows


def show_figures(report: dict[str, Any]) -> None:
    runs = report["cli"].get("runs")
    rounds = f"figures 1-2: medians of {runs} interleaved runs, " if runs else ""
    print(f"Issue 14 ({rounds}floors measured alongside)")
    for row in report["figures"]:
        label = f"{row['figure']}. {row['name']}"
        if "error" in row:
            print(f"  {label:<32} FAILED: {row['error']}")
        elif "skipped" in row:
            print(f"  {label:<32} not measured (opt in with {row['skipped']})")
        else:
            value = f"{row['value']:.2f}{row['unit']}" if row["unit"] else str(row["value"])
            verdict = "ok" if row["ok"] else "OVER"
            target = f"<= {row['target']}{row['unit']}"
            print(f"  {label:<32} {value:>8}  target {target:<8} {verdict:<4}  ({row['detail']})")
    cli = report["cli"]
    if "demo_startup_s" in cli:
        print(
            f"  (the demo reports start-up {cli['demo_startup_s']:.2f} s, "
            f"story {cli['demo_story_s']:.2f} s)"
        )
    print()


def show(report: dict[str, Any]) -> None:
    show_figures(report)
    cold = report["cold_start"]
    if "skipped" in cold:
        return
    print(f"Cold start (median of {report['repeat']}, measured inside a fresh interpreter)")
    if "error" in cold:
        print(f"  FAILED: {cold['error']}")
    else:
        wall, cpu = cold["floor_median_s"] * 1000, cold["floor_cpu_s"] * 1000
        print(f"  {'floor (boto3 + acm client)':<30} {wall:8.1f} ms wall {cpu:8.1f} ms cpu")
        before, after = cold["load"]
        print(f"  (load average {before:.1f} before, {after:.1f} after, on {os.cpu_count()} CPUs)")
    for name, figure in cold.get("handlers", {}).items():
        verdict = "ok" if figure["ok"] else f"OVER {HANDLER_TARGET}x"
        label, ms = f"{name} {figure['measured']}", figure["median_s"] * 1000
        cpu = f"{figure['cpu_s'] * 1000:8.1f} ms cpu {figure['cpu_ratio']:.2f}x"
        print(f"  {label:<30} {ms:8.1f} ms wall {cpu}  wall {figure['ratio']:.2f}x  {verdict}")
        for row in figure["top_imports"]:
            print(f"      {row['module']:<40} {row['cumulative_ms']:8.1f} ms cumulative")


PARTS = {  # --only's names: the figures each part measures
    "cli": "figures 1 and 2 (the demo and local run)",
    "handlers": "figure 3 (handler cold starts)",
    "sleeps": "figure 5 (time.sleep in the demo)",
}


def _parts(value: str) -> frozenset[str]:
    chosen = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = chosen - PARTS.keys()
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(PARTS)}, comma-separated")
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="cold-start runs (default 7)")
    parser.add_argument("--repeat-cli", type=int, default=3, help="figure 1-2 rounds (default 3)")
    parser.add_argument("--make-test", action="store_true", help="also time the tests (minutes)")
    parser.add_argument(
        "--only",
        type=_parts,
        default=frozenset(PARTS),
        help=f"comma-separated parts to measure, of {', '.join(PARTS)} (default all)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--cli-only", action="store_true", help="figures 1 and 2 only: the same as --only cli"
    )
    args = parser.parse_args()
    if args.cli_only:
        args.only = frozenset({"cli"})
    report: dict[str, Any] = {"python": sys.version.split()[0], "repeat": args.repeat}
    compile_bytecode()
    skipped = {"skipped": "--only"}
    report["cli"] = skipped
    if "cli" in args.only:
        try:
            report["cli"] = measure_cli(args.repeat_cli)
        except RuntimeError as error:
            report["cli"] = {"error": str(error)}
    report["cold_start"] = skipped
    if "handlers" in args.only:
        try:
            report["cold_start"] = measure_cold_starts(args.repeat)
        except RuntimeError as error:
            report["cold_start"] = {"error": str(error)}
    report["sleeps"] = measure_sleeps() if "sleeps" in args.only else skipped
    if args.make_test:
        report["make_test"] = measure_make_test()
    report["figures"] = figures(report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        show(report)
    return 1 if any("error" in row for row in report["figures"]) else 0


if __name__ == "__main__":
    sys.exit(main())
