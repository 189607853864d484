"""The temporary Prefect server a bare `corpus run` starts for itself."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from flows.run import prefect_server
from tests.conftest import ROOT, SAMPLE

# A catalog the server cannot create: its start-up fails and it exits.
UNUSABLE_DATABASE = "sqlite+aiosqlite:////nonexistent-folder/prefect.db"


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker`."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def test_a_configured_api_url_starts_no_server(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert prefect_server.start_unless_configured() is None


def test_a_temporary_server_answers_at_the_url_it_sets_and_stops(monkeypatch, tmp_path):
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    server = prefect_server.start_unless_configured()
    try:
        assert os.environ["PREFECT_API_URL"] == server.api_url
        server.wait_ready(120)
        with urllib.request.urlopen(f"{server.api_url}/health", timeout=5) as answer:
            assert answer.status == 200
        process = server.process
    finally:
        server.stop()
    assert process.returncode is not None and server.process is None
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{server.api_url}/health", timeout=5)


def test_a_server_that_cannot_start_is_an_error_not_a_wait(monkeypatch, tmp_path):
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", UNUSABLE_DATABASE)
    server = prefect_server.start_unless_configured()
    try:
        with pytest.raises(prefect_server.ServerError, match="exited with status") as failure:
            server.wait_ready(120)
    finally:
        server.stop()
    log = Path(str(failure.value).rsplit("(its log: ", 1)[1].rstrip(")"))
    assert "Application startup failed" in log.read_text()  # kept for the user to read
    log.unlink()


def _bare_run_command(tmp_path: Path, **extra_env: str) -> tuple[list[str], dict]:
    """`corpus run` of the sample without PREFECT_API_URL, with a Prefect home of its own."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), **extra_env)
    return [sys.executable, "-m", "flows", "run", str(SAMPLE), "--warehouse", str(tmp_path / "wh")], env


def _bare_run(tmp_path: Path, **extra_env: str) -> subprocess.CompletedProcess:
    command, env = _bare_run_command(tmp_path, **extra_env)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_bare_run_uses_its_own_server_and_leaves_none_behind(tmp_path):
    result = _bare_run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "committed snapshot 1" in result.stdout
    assert "Starting temporary server" not in result.stdout + result.stderr  # Prefect's own
    assert _processes_with(str(tmp_path / "prefect-home")) == []


def test_a_bare_run_whose_server_fails_says_so_in_one_line(tmp_path):
    result = _bare_run(tmp_path, PREFECT_API_DATABASE_CONNECTION_URL=UNUSABLE_DATABASE)
    assert result.returncode == 1
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message.startswith("corpus: error: the temporary Prefect server exited with status") and "\n" not in message
    log = Path(message.split("(its log: ", 1)[1].split(")", 1)[0])
    assert "Traceback (most recent call last)" in log.read_text()  # there, not on the terminal
    log.unlink()
    assert not (tmp_path / "wh" / "data").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="the server is stopped with its parent by prctl(2), on Linux")
def test_a_killed_run_takes_its_server_with_it(tmp_path):
    command, env = _bare_run_command(tmp_path)
    home = env["PREFECT_HOME"]
    run = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not [pid for pid in _processes_with(home) if pid != run.pid] and time.monotonic() < deadline:
            time.sleep(0.05)
        servers = [pid for pid in _processes_with(home) if pid != run.pid]
        assert servers, "no server started"
    finally:
        run.send_signal(signal.SIGKILL)  # no exit hook runs
        run.wait()
    deadline = time.monotonic() + 30
    while _processes_with(home) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(home) == []


def test_empty_logs_of_dead_runs_are_removed_and_others_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = {
        f"{prefect_server.LOG_PREFIX}{dead.pid}-a.log": "",  # a killed run's: removed
        f"{prefect_server.LOG_PREFIX}{dead.pid}-b.log": "Traceback: why it failed\n",  # has words: kept
        f"{prefect_server.LOG_PREFIX}{os.getpid()}-c.log": "",  # a live run's: kept
        f"{prefect_server.LOG_PREFIX}old.log": "",  # not named by a run: kept
    }
    for name, text in names.items():
        (tmp_path / name).write_text(text)
    prefect_server.remove_dead_empty_logs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(list(names)[1:])
