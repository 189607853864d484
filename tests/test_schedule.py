"""Scheduled runs on a real Prefect server; two runs at once on one warehouse."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.prefect_server import answers
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
    port = free_port()
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 90
        while not answers(api):
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("prefect server did not start")
            time.sleep(0.5)
        yield dict(env, PREFECT_API_URL=api)
    finally:
        stop(server)  # by its pid (process group), as started


TRIGGER = """
import json, sys
from prefect.deployments import run_deployment
from prefect.client.orchestration import get_client
flow_run = run_deployment("corpus-build/{name}", timeout=240)
with get_client(sync_client=True) as client:
    artifacts = client.read_artifacts()
reports = [a.data for a in artifacts if a.key == "corpus-run-report" and a.flow_run_id == flow_run.id]
print(json.dumps({{"type": flow_run.state.type.value, "name": flow_run.state.name, "reports": reports}}))
"""


def test_served_deployment_processes_a_new_file(prefect_server, tmp_path):
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    raw.mkdir()
    (raw / "first.txt").write_text("The first document was here before the schedule started.")
    runner = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", str(raw), "--warehouse", str(wh),
         "--interval", "86400", "--name", "nightly"],
        env=prefect_server, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while subprocess.run([PREFECT, "deployment", "inspect", "corpus-build/nightly"], env=prefect_server,
                             capture_output=True).returncode != 0:
            assert runner.poll() is None, "corpus serve exited"
            assert time.monotonic() < deadline, "deployment never registered"
            time.sleep(1)
        (raw / "dropped.txt").write_text("A scrape lands in the raw folder overnight. The schedule picks it up.")
        (raw / "empty.txt").write_bytes(b"")
        # Trigger the deployment as its scheduler would, and wait for the flow run to finish.
        result = subprocess.run([sys.executable, "-c", TRIGGER.format(name="nightly")], env=prefect_server,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        outcome = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        stop(runner)
    assert (outcome["type"], outcome["name"]) == ("COMPLETED", "Completed with rejects")
    (report,) = outcome["reports"]
    assert "| empty.txt | empty | empty.txt: file is empty (0 bytes) |" in report
    sentences = corpus("sql", "--warehouse", str(wh), "--format", "csv",
                       "SELECT text FROM sentences JOIN documents USING (version_id) "
                       "WHERE raw_path = 'dropped.txt' ORDER BY char_start")
    assert sentences == "text\nA scrape lands in the raw folder overnight.\nThe schedule picks it up.\n"


def test_two_runs_at_once_never_interleave(tmp_path):
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    shutil.copytree(SAMPLE, raw)
    command = [sys.executable, "-m", "flows.cli", "run", str(raw), "--warehouse", str(wh)]
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
