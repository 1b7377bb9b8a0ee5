"""`certrelay local up` and `certrelay local send`, as a person runs them in two terminals.

GIVEN `certrelay local up --port 0` running as its own process, WHEN `local send` feeds it an
event, THEN the console lists the execution; WHEN it gets SIGINT (Ctrl-C), THEN it stops with
status 0, no traceback, and no state file left behind. Mistakes are one line on stderr, exit 2.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from certrelay.cli.send import NOT_RUNNING, STATE_FILE
from tests.functional.cli_helpers import assert_one_line_error
from tests.functional.cli_helpers import run as cli

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
START_SECONDS = 90  # the engine deploys the template in a few seconds; CI machines are slower


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "state"
    monkeypatch.setenv("CERTRELAY_STATE_DIR", str(directory))
    return directory


@pytest.fixture
def local_up(state_dir: Path, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    out, err = (tmp_path / "up.out").open("wb"), (tmp_path / "up.err").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "certrelay.cli", "local", "up", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "CERTRELAY_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"},
        stdout=out,
        stderr=err,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        out.close()
        err.close()


def wait_for_state_file(state_dir: Path, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    path = state_dir / STATE_FILE
    deadline = time.monotonic() + START_SECONDS
    while not path.exists():
        assert process.poll() is None, f"local up exited with {process.returncode}"
        assert time.monotonic() < deadline, f"no {path} after {START_SECONDS} s"
        time.sleep(0.1)
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def post(url: str, body: bytes, **headers: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_up_serves_send_feeds_it_and_ctrl_c_stops_it_cleanly(local_up, state_dir, tmp_path, capsys):
    record = wait_for_state_file(state_dir, local_up)
    url = record["url"]
    assert record["pid"] == local_up.pid
    assert url == f"http://127.0.0.1:{record['port']}"

    status, out, err = cli(
        capsys, "local", "send", str(EVENTS / "expired.json"), "--cert", "expired-imported"
    )
    assert status == 0, err
    name = out.split("\n")[1].split()[0]
    assert f"{url}/executions/{name}" in out

    deadline = time.monotonic() + 30
    while ">SUCCEEDED<" not in (page := get(url)[1]):
        assert time.monotonic() < deadline, f"not SUCCEEDED in the list within 30 s:\n{page}"
        time.sleep(0.2)
    assert name in page
    assert "ACM Certificate Expired" in page
    code, execution_page = get(f"{url}/executions/{name}")
    assert code == 200
    assert "Owners Alerted" in execution_page

    local_up.send_signal(signal.SIGINT)
    assert local_up.wait(timeout=60) == 0
    err_text = (tmp_path / "up.err").read_text(encoding="utf-8")
    out_text = (tmp_path / "up.out").read_text(encoding="utf-8")
    assert "Traceback" not in err_text, err_text
    assert not (state_dir / STATE_FILE).exists(), "the state file is removed on the way out"
    assert url in out_text
    assert "old-partner.example.com" in out_text, "the owners' email is printed as it is sent"
    assert "stopped" in out_text.splitlines()[-1]


JSON = {"Content-Type": "application/json"}


def test_up_refuses_and_answers_in_one_line_while_it_runs(local_up, state_dir, capsys):
    record = wait_for_state_file(state_dir, local_up)
    url = record["url"]

    status, _, err = cli(capsys, "local", "send", str(EVENTS / "expired.json"), "--cert", "nope")
    assert_one_line_error(status, err, "unknown certificate 'nope'")
    status, _, err = cli(capsys, "local", "up", "--port", "0")
    assert_one_line_error(status, err, "already running", url)
    status, _, err = cli(capsys, "local", "send", str(EVENTS / "expired.json"), "--port", "1")
    assert_one_line_error(status, err, NOT_RUNNING)

    event = json.dumps({"event": {"detail-type": "nonsense"}}).encode()
    assert post(f"{url}/events", event, **{"Content-Type": "application/json"})[0] == 400
    assert post(f"{url}/events", b"{not json", **{"Content-Type": "application/json"})[0] == 400
    deep = b'{"event": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert post(f"{url}/events", deep, **{"Content-Type": "application/json"})[0] == 400
    foreign = json.loads((EVENTS / "expired.json").read_text())
    foreign["resources"] = [foreign["resources"][0].replace("123456789012", "999999999999")]
    answer = post(f"{url}/events", json.dumps({"event": foreign}).encode(), **JSON)
    assert answer[0] == 400
    assert "999999999999" in answer[1]["message"]
    assert post(f"{url}/events", event, **{"Content-Type": "text/plain"})[0] == 415
    assert (
        post(
            f"{url}/events", event, **{"Content-Type": "application/json", "Host": "evil.example"}
        )[0]
        == 403
    )
    rebound = urllib.request.Request(url, headers={"Host": "attacker.example:8790"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(rebound, timeout=30)
    assert refused.value.code == 403, "a DNS-rebound page may not read the console"
    assert get(f"{url}/events")[0] == 405
    assert get(f"{url}/executions/no-such-execution")[0] == 404
    assert "No executions yet" in get(url)[1], "GET and refused POSTs started nothing"

    local_up.send_signal(signal.SIGTERM)
    assert local_up.wait(timeout=60) == 0
    assert not (state_dir / STATE_FILE).exists()


def test_send_with_nothing_running_says_how_to_start_one(state_dir, capsys):
    status, out, err = cli(capsys, "local", "send", str(EVENTS / "expired.json"))

    assert_one_line_error(status, err, NOT_RUNNING)
    assert out == ""


def test_send_ignores_a_state_file_left_by_a_process_that_is_gone(state_dir, capsys):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    state_dir.mkdir(parents=True)
    (state_dir / STATE_FILE).write_text(
        json.dumps({"pid": gone.pid, "port": 1, "url": "http://127.0.0.1:1"}), encoding="utf-8"
    )

    status, _, err = cli(capsys, "local", "send", str(EVENTS / "expired.json"))

    assert_one_line_error(status, err, NOT_RUNNING)


def test_send_refuses_a_file_that_is_not_an_event_in_one_line(state_dir, tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json", encoding="utf-8")

    status, _, err = cli(capsys, "local", "send", str(broken))
    assert_one_line_error(status, err, "broken.json is not valid JSON")
    status, _, err = cli(capsys, "local", "send", str(tmp_path / "missing.json"))
    assert_one_line_error(status, err, "cannot read")


def test_up_refuses_a_busy_port_in_one_line_before_starting_anything(state_dir, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        started = time.monotonic()
        status, _, err = cli(capsys, "local", "up", "--port", str(port))

    assert_one_line_error(status, err, f"127.0.0.1:{port}", "--port")
    assert time.monotonic() - started < 10, "refused before the engine started"
    assert not (state_dir / STATE_FILE).exists()


def test_signals_stop_it_while_an_approval_waits(local_up, state_dir, tmp_path, capsys):
    """A renewal waiting for its approver, then a burst of Ctrl-C: it stops cleanly, once.

    The handler takes no lock: setting a threading.Event there deadlocked once by hand, when a
    signal landed inside the main loop's Event.wait. That window is too narrow to hit on
    demand; the burst makes it likelier, and the rest of the shutdown is checked for real."""
    record = wait_for_state_file(state_dir, local_up)
    status, _, err = cli(
        capsys, "local", "send", str(EVENTS / "available.json"), "--cert", "web-private"
    )
    assert status == 0, err
    deadline = time.monotonic() + 30
    while "Request Approval" not in get(record["url"])[1] + _executions_text(record["url"]):
        assert time.monotonic() < deadline, "the renewal never reached Request Approval"
        time.sleep(0.2)

    for _ in range(200):  # a burst: some land while the main loop holds its lock
        local_up.send_signal(signal.SIGINT)
        time.sleep(0.001)

    assert local_up.wait(timeout=60) == 0
    assert "Traceback" not in (tmp_path / "up.err").read_text(encoding="utf-8")
    assert not (state_dir / STATE_FILE).exists()


def _executions_text(url: str) -> str:
    """Every execution page the list links to (the path taken is on each)."""
    _, listing = get(url)
    names = set(re.findall(r"href='/executions/([^']+)'", listing))
    return "".join(get(f"{url}/executions/{name}")[1] for name in names)
