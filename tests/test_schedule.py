"""Scheduled runs on a real Prefect server; two runs at once on one warehouse."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from flows.run.prefect_server import answers
from tests.conftest import SAMPLE, corpus

PREFECT = str(Path(sys.executable).with_name("prefect"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def prefect_server(tmp_path):
    """A real `prefect server start` on a free loopback port, as a user starts one; yields the
    environment that points at it and the path of its log."""
    port = free_port()
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 90
        while not answers(api):
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"prefect server did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        yield dict(env, PREFECT_API_URL=api), log
    finally:
        stop(server)  # by its pid (process group), as started


def api_call(env: dict, method: str, path: str, body: dict | None = None):
    request = urllib.request.Request(env["PREFECT_API_URL"] + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def deployment_runs(env: dict, name: str) -> list[dict]:
    deployment = api_call(env, "GET", f"/deployments/name/corpus-build/{name}")
    return api_call(env, "POST", "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment["id"]]}}})


def test_the_servers_scheduler_fires_the_schedule_and_picks_up_a_dropped_file(prefect_server, tmp_path):
    env, server_log = prefect_server
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    raw.mkdir()
    (raw / "first.txt").write_text("The first document was here before the schedule started.")
    serve_log = tmp_path / "serve.log"
    with serve_log.open("wb") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "flows", "serve", str(raw), "--warehouse", str(wh),
             "--interval", "5", "--name", "every-five"],
            env=dict(env, PREFECT_RUNNER_POLL_FREQUENCY="1"), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "serving corpus-build/every-five: next run scheduled" not in serve_log.read_text(errors="replace"):
            assert runner.poll() is None, f"corpus serve exited: {serve_log.read_text(errors='replace')[-2000:]}"
            assert time.monotonic() < deadline, "corpus serve never reported the scheduler ready"
            time.sleep(0.5)
        (raw / "dropped.txt").write_text("A scrape lands in the raw folder overnight. The schedule picks it up.")
        (raw / "empty.txt").write_bytes(b"")
        # Nobody triggers anything: wait for the server's scheduler and the runner to get to it.
        deadline = time.monotonic() + 240
        while not [r for r in deployment_runs(env, "every-five") if r["state_name"] == "Completed with rejects"]:
            assert runner.poll() is None, f"corpus serve exited: {serve_log.read_text(errors='replace')[-2000:]}"
            assert time.monotonic() < deadline, f"no scheduled run picked up the file: {serve_log.read_text()[-3000:]}"
            time.sleep(1)
        runs = deployment_runs(env, "every-five")
    finally:
        stop(runner)
    picked_up = [r for r in runs if r["state_name"] == "Completed with rejects"]
    assert len(picked_up) == 1 and picked_up[0]["auto_scheduled"] is True
    assert all(r["auto_scheduled"] for r in runs)  # every run of the deployment came from the scheduler
    sentences = corpus("sql", "--warehouse", str(wh), "--format", "csv",
                       "SELECT text FROM sentences JOIN documents USING (doc_id) "
                       "WHERE raw_path = 'dropped.txt' ORDER BY char_start")
    assert sentences == "text\nA scrape lands in the raw folder overnight.\nThe schedule picks it up.\n"
    rejects = corpus("sql", "--warehouse", str(wh), "--format", "csv", "SELECT raw_path, error_kind FROM rejects")
    assert rejects == "raw_path,error_kind\nempty.txt,empty\n"
    assert "Traceback" not in server_log.read_text(errors="replace")


def test_serve_says_so_when_the_server_schedules_nothing(tmp_path):
    """The suite's own server is an ephemeral one, which runs no scheduler service."""
    raw = tmp_path / "raw"
    raw.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "flows", "serve", str(raw), "--warehouse", str(tmp_path / "wh"),
         "--interval", "5", "--name", "never", "--scheduler-timeout", "8"],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"corpus: error: the Prefect server at {os.environ['PREFECT_API_URL']} scheduled no run "
                           "of deployment corpus-build/never within 8 s: its scheduler service is not running")


def test_serve_says_so_when_no_server_answers(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/api"
    result = subprocess.run(
        [sys.executable, "-m", "flows", "serve", str(tmp_path), "--warehouse", str(tmp_path / "wh"),
         "--interval", "5"], capture_output=True, text=True, timeout=60, env=dict(os.environ, PREFECT_API_URL=url))
    assert (result.returncode, result.stderr) == (
        1, f"corpus: error: no Prefect server answers at {url} (PREFECT_API_URL): start one with "
           "`prefect server start`, or unset PREFECT_API_URL to serve against a temporary server\n")


def test_two_runs_at_once_never_interleave(tmp_path):
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    shutil.copytree(SAMPLE, raw)
    command = [sys.executable, "-m", "flows", "run", str(raw), "--warehouse", str(wh)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True) for _ in range(2)]
    outcomes = sorted((p.wait(timeout=300), p.communicate()[1]) for p in runs)
    codes = [code for code, _ in outcomes]
    if codes == [0, 1]:  # the usual case: they overlapped, the second was refused
        assert "is busy: a run is in progress" in outcomes[1][1] and "Traceback" not in outcomes[1][1]
    else:  # one finished before the other took the lock: the second found nothing to do
        assert codes == [0, 0]
    versions = json.loads(corpus("versions", "--warehouse", str(wh), "--format", "json"))
    assert [v["snapshot_id"] for v in versions] == list(range(len(versions)))
    assert [v["data_changes"] for v in versions[2:]] in ([], ["none"])
    docs = corpus("sql", "--warehouse", str(wh), "--format", "csv", "SELECT count(*) AS n FROM documents")
    assert docs == "n\n11\n"
