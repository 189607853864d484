"""verify and download against hostile releases served from a loopback HTTP server."""

import hashlib
import http.server
import json
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from flows.interface.cli import main
from flows.release import fetch


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_release(files: dict[str, bytes], row_counts: dict[str, int], version: str = "1.0.0") -> dict[str, bytes]:
    """The bytes of a release's files, manifest.json and SHA256SUMS included."""
    manifest = {"version": version, "row_counts": row_counts,
                "files": [{"path": p, "bytes": len(b), "sha256": sha(b)} for p, b in files.items()]}
    manifest_bytes = json.dumps(manifest).encode()
    listed = {**files, "manifest.json": manifest_bytes}
    sums = "".join(f"{sha(b)}  {p}\n" for p, b in listed.items()).encode()
    return {**listed, "SHA256SUMS": sums}


def parquet_bytes(rows: int) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"text": [f"s{i}" for i in range(rows)]}), sink)
    return sink.getvalue().to_pybytes()


GOOD = make_release({"data/sentences/sentences.parquet": parquet_bytes(2), "README.md": b"# a release\n"},
                    {"sentences": 2})


class Server:
    """Serves `routes` ({path under /1.0.0/: bytes, or a function of the handler}) and counts
    the requests per path."""

    def __init__(self) -> None:
        self.routes: dict = {}
        self.requests: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                name = self.path.removeprefix("/1.0.0/")
                server.requests[name] = server.requests.get(name, 0) + 1
                route = server.routes.get(name)
                if route is None:
                    self.send_error(404)
                elif callable(route):
                    route(self)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(route)))
                    self.end_headers()
                    self.wfile.write(route)

            def log_message(self, *args):
                pass

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client hanging up on a hostile answer
                pass

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    s.routes = dict(GOOD)
    yield s
    s.close()


def download(server: Server, dest: Path, *extra: str):
    return CliRunner().invoke(main, ["download", server.url, "1.0.0", str(dest), *extra])


def assert_one_line_failure(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_a_good_release_downloads_each_file_once_and_verifies(server, tmp_path):
    result = download(server, tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        f"1.0.0/{name}" for name in GOOD)
    assert set(server.requests.values()) == {1}
    assert fetch.verify(str(tmp_path / "1.0.0")) == []


def _hostile(name: str) -> dict[str, bytes]:
    escape = b"hostile\n"
    if name == "manifest path escapes":
        return make_release({"../../../../../etc/hostname": escape}, {})
    if name == "sums path escapes":
        release = dict(GOOD)
        release["SHA256SUMS"] += f"{sha(escape)}  ../x\n".encode()
        return release
    if name == "empty path":
        return make_release({"": escape}, {})
    if name == "no files":
        return {"manifest.json": b'{"version": "1.0.0", "files": []}', "SHA256SUMS": b""}
    if name == "manifest is a list":
        return {**GOOD, "manifest.json": b"[1, 2, 3]"}
    if name == "manifest without files":
        return {**GOOD, "manifest.json": b'{"version": "1.0.0"}'}
    raise AssertionError(name)


@pytest.mark.parametrize("case, message", [
    ("manifest path escapes", "is not a file path inside the release"),
    ("sums path escapes", "is not a file path inside the release"),
    ("empty path", "'' is not a file path inside the release"),
    ("no files", "not a release manifest"),
    ("manifest is a list", "not a release manifest"),
    ("manifest without files", "not a release manifest"),
])
def test_hostile_lists_are_refused_in_one_line_and_leave_nothing(server, tmp_path, case, message):
    server.routes = _hostile(case)
    assert_one_line_failure(download(server, tmp_path), server.url, message)
    assert list(tmp_path.iterdir()) == []
    verify = CliRunner().invoke(main, ["verify", f"{server.url}/1.0.0"])
    assert verify.exit_code == 1 and "Traceback" not in verify.output and message in verify.output


def _cut_short(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b"# a rel")
    handler.close_connection = True


def _garbage_status(handler) -> None:
    handler.wfile.write(b"NONSENSE\r\n\r\n")
    handler.close_connection = True


def _too_big(handler) -> None:
    handler.send_response(200)
    handler.end_headers()
    for _ in range(64):  # 64 MB would follow; the client stops after the declared size
        handler.wfile.write(b"x" * 2**20)


def _slow(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(GOOD["README.md"])))
    handler.end_headers()
    for byte in GOOD["README.md"]:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.5)


@pytest.mark.parametrize("route, extra, message", [
    (_cut_short, (), "7 bytes, not the 12 declared"),
    (_garbage_status, (), "cannot read it"),
    (_too_big, (), "sends more than the 12 bytes expected"),
    (_slow, ("--timeout", "2"), "not finished within the 2 s allowed"),
])
def test_a_misbehaving_server_is_one_line_and_leaves_nothing(server, tmp_path, route, extra, message):
    server.routes["README.md"] = route
    assert_one_line_failure(download(server, tmp_path, *extra), f"{server.url}/1.0.0/README.md", message)
    assert list(tmp_path.iterdir()) == []


def test_a_changed_file_fails_verification_and_is_not_installed(server, tmp_path):
    server.routes["README.md"] = b"# a RELEASE\n"  # same size, other bytes
    assert_one_line_failure(download(server, tmp_path), "README.md: checksum mismatch")
    assert list(tmp_path.iterdir()) == []


def write_release(folder: Path, release: dict[str, bytes]) -> Path:
    for name, data in release.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def test_verify_flags_files_no_list_mentions(tmp_path):
    folder = write_release(tmp_path / "r", GOOD)
    assert fetch.verify(str(folder)) == []
    (folder / "data" / "extra.parquet").write_bytes(b"x")
    assert fetch.verify(str(folder)) == ["data/extra.parquet: not listed in SHA256SUMS or manifest.json"]


def test_verify_flags_a_table_file_dropped_from_both_lists_but_still_counted(tmp_path):
    release = make_release({"README.md": b"# a release\n"}, {"sentences": 2})
    assert fetch.verify(str(write_release(tmp_path / "r", release))) == [
        "manifest.json counts 2 rows of sentences, but lists no file data/sentences/sentences.parquet"]


def test_verify_flags_row_counts_that_are_not_the_files_own(tmp_path):
    release = make_release({"data/sentences/sentences.parquet": parquet_bytes(3)}, {"sentences": 2})
    assert fetch.verify(str(write_release(tmp_path / "r", release))) == [
        "data/sentences/sentences.parquet holds 3 rows, manifest.json counts 2"]
