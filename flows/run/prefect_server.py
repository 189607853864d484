"""A temporary Prefect server for one `corpus run`, started before the pipeline is imported.

Takes nothing (reads PREFECT_API_URL: a server named there is used instead); gives a running
server whose URL is in PREFECT_API_URL, stopped when the process that started it ends.

Without PREFECT_API_URL, Prefect starts such a server itself, but only once the flow is
called: after the pipeline's imports, and after importing the server's code into this process
only to launch it. Launched here first, the server boots in its own process while this one
imports the pipeline, which shortens every bare run (the incremental run of
python benchmarks/bench.py). The command line is Prefect's own (SubprocessASGIServer).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


class ServerError(RuntimeError):
    """The temporary server did not come up."""


_PR_SET_PDEATHSIG = 1  # prctl(2)


def _stop_with_parent() -> None:
    """In the server's process, before it runs: the kernel sends it SIGTERM when the process
    that started it ends, however it ends (killed, the exit hooks never run). Run between fork
    and exec, which is safe here: `corpus run` starts the server before any other thread."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def answers(api_url: str) -> bool:
    """Whether the Prefect server at `api_url` answers its health check."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


class TemporaryServer:
    """Prefect's API server in a child process on a free local port, for this process's run."""

    def __init__(self, scheduler: bool = False) -> None:
        # An ephemeral server (as Prefect's own temporary one) runs no scheduler: enough for a
        # run, not for `corpus serve`, whose schedule the server's scheduler must fire.
        self.scheduler = scheduler
        self.process: subprocess.Popen | None = None
        self.port = 0
        # The server's own output (tracebacks included) goes here, named in an error, else deleted.
        self.log: Path | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        """Launch the server and point this process (and its children) at it; returns at once."""
        # The listening socket is made here and handed over, so the port is known before the
        # server runs and no other process can take it in between.
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(128)
            self.port = listener.getsockname()[1]
            # As Prefect's own temporary server: no UI, the services an ephemeral server runs.
            env = dict(os.environ, PREFECT_UI_ENABLED="0", PREFECT__SERVER_FINAL="1")
            if not self.scheduler:
                env["PREFECT__SERVER_EPHEMERAL"] = "1"
            remove_dead_empty_logs()
            log = tempfile.NamedTemporaryFile(prefix=f"{LOG_PREFIX}{os.getpid()}-", suffix=".log", delete=False)
            self.log = Path(log.name)
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
                 "--fd", str(listener.fileno()), "--log-level", "error", "--lifespan", "on"],
                env=env, pass_fds=(listener.fileno(),), stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_stop_with_parent if sys.platform == "linux" else None,
            )
            log.close()
        os.environ["PREFECT_API_URL"] = self.api_url
        atexit.register(self.stop)  # after Prefect's own exit hooks have sent their last logs

    def wait_ready(self, timeout: float) -> None:
        """Block until the server answers its health check; ServerError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"the temporary Prefect server exited with status {self.process.returncode}"
                                  f"{self._last_words()}")
            if answers(self.api_url):
                return
            time.sleep(0.1)
        raise ServerError(f"the temporary Prefect server did not answer within {timeout:.0f} s{self._last_words()}. "
                          "The machine may be too busy: run again, raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, "
                          "or point PREFECT_API_URL at a Prefect server")

    def _last_words(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines() if self.log else []
        self.log, log = None, self.log  # kept for the user to read
        return f": {lines[-1].strip()} (its log: {log})" if lines else ""

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is not None and self.log:  # it stopped by itself, mid-run
            print(f"corpus: the temporary Prefect server stopped with status {self.process.returncode}; "
                  f"its log: {self.log}", file=sys.stderr)
            self.log = None
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        if self.log:
            self.log.unlink(missing_ok=True)


LOG_PREFIX = "corpus-prefect-server-"


def remove_dead_empty_logs(folder: Path | None = None) -> None:
    """Delete the empty logs of temporary servers whose `corpus` process is gone: one killed
    outright never ran its exit hook. (A log with something in it stays for its reader.)"""
    for log in Path(folder or tempfile.gettempdir()).glob(f"{LOG_PREFIX}*.log"):
        pid = log.name.removeprefix(LOG_PREFIX).split("-", 1)[0]
        try:
            if not pid.isdigit() or log.stat().st_size:
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            log.unlink(missing_ok=True)
        except OSError:  # another user's process, or the log vanished: not ours to judge
            continue


def start_unless_configured() -> TemporaryServer | None:
    """A started TemporaryServer, or None when PREFECT_API_URL names a server to use."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    server = TemporaryServer()
    server.start()
    return server
