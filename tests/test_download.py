"""Zenodo download against a local HTTP server imitating the records API, and without
network: one message, no traceback."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pooch
import pytest

from scalecnn.atomic import DiskFullError
from scalecnn.data import (
    ChecksumError,
    DownloadError,
    STIRFormatError,
    download_dataset,
    verify_local_file,
    write_synthetic_stir,
)
from scalecnn.data.download import fetch_record_files, zenodo_api

RECORD = "/api/records/6578038"
FAST = {"retries": 2, "timeout": 5, "backoff": 0.001}
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Server:
    """State shared with the request handler."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    md5: dict[str, str] = field(default_factory=dict)  # advertised checksum overrides
    size: dict[str, int] = field(default_factory=dict)  # advertised size overrides
    modes: dict[str, list[str]] = field(default_factory=dict)  # per path, one per request
    legacy: bool = False
    hits: Counter = field(default_factory=Counter)

    @property
    def api(self) -> str:
        return f"{self.base}/api"

    def record(self) -> dict:
        entries = []
        for name, data in self.files.items():
            entries.append(
                {
                    "id": f"id-{name}",
                    "key": name,
                    "size": self.size.get(name, len(data)),
                    "checksum": "md5:" + self.md5.get(name, hashlib.md5(data).hexdigest()),
                    "links": {"self": f"{self.base}/files/{name}"},
                }
            )
        if self.legacy:
            return {"id": 6578038, "files": {"entries": {e["key"]: e for e in entries}}}
        return {"id": 6578038, "files": entries}


def _handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes, length: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.hits[self.path] += 1
            queue = state.modes.get(self.path)
            mode = queue.pop(0) if queue else "ok"
            if mode == "500":
                return self._send(500, b"internal error")
            if mode == "404" or (self.path != RECORD and not self.path.startswith("/files/")):
                return self._send(404, b"not found")
            if self.path == RECORD:
                return self._send(200, json.dumps(state.record()).encode())
            name = self.path[len("/files/") :]
            if name not in state.files:
                return self._send(404, b"not found")
            data = state.files[name]
            if mode == "truncate":  # promise everything, send half, hang up
                self._send(200, data[: len(data) // 2], length=len(data))
                self.close_connection = True
                return None
            if mode == "short":  # honest headers, but a shorter body than the record says
                return self._send(200, data[: len(data) // 2])
            return self._send(200, data)

    return Handler


@pytest.fixture(scope="module")
def payloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("payloads")
    emoji = write_synthetic_stir(folder / "emoji.npz", num_classes=2, num_instances=1)
    mnist = write_synthetic_stir(folder / "mnist.npz", num_classes=3, num_instances=1, seed=1)
    return {"emoji.npz": emoji.read_bytes(), "mnist.npz": mnist.read_bytes()}


@pytest.fixture
def server(payloads: dict[str, bytes]) -> Iterator[Server]:
    state = Server(files=dict(payloads))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class _Records(logging.Handler):
    """Keeps the records it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("legacy", [False, True])
def test_success(server: Server, tmp_path: Path, caplog, legacy: bool) -> None:
    server.legacy = legacy
    caplog.set_level(logging.INFO, logger="scalecnn.data.download")
    pooch_log = _Records()  # pooch's logger writes to stderr past logging's set-up
    pooch.get_logger().addHandler(pooch_log)
    try:
        path = download_dataset("emoji", tmp_path / "data", api=server.api, chunk_size=512, **FAST)
    finally:
        pooch.get_logger().removeHandler(pooch_log)
    assert pooch_log.records == []  # quiet: our own lines say the same
    assert path == tmp_path / "data" / "emoji.npz"
    assert path.read_bytes() == server.files["emoji.npz"]
    assert _names(tmp_path / "data") == ["emoji.npz"]
    progress = [r.getMessage() for r in caplog.records if "%" in r.getMessage()]
    assert any("100%" in m for m in progress) and len(progress) >= 5


def test_existing_file_with_published_md5_is_kept(server: Server, tmp_path: Path) -> None:
    (tmp_path / "emoji.npz").write_bytes(server.files["emoji.npz"])
    download_dataset("emoji", tmp_path, api=server.api, **FAST)
    assert server.hits["/files/emoji.npz"] == 0
    (tmp_path / "emoji.npz").write_bytes(b"stale")
    download_dataset("emoji", tmp_path, api=server.api, **FAST)
    assert (tmp_path / "emoji.npz").read_bytes() == server.files["emoji.npz"]
    assert _names(tmp_path) == ["emoji.npz"]


def test_api_from_environment(server: Server, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SCALECNN_ZENODO_API", server.api + "/")
    assert zenodo_api() == server.api
    assert zenodo_api("http://x/api") == "http://x/api"
    download_dataset("mnist", tmp_path, **FAST)
    assert (tmp_path / "mnist.npz").read_bytes() == server.files["mnist.npz"]
    monkeypatch.delenv("SCALECNN_ZENODO_API")
    assert zenodo_api() == "https://zenodo.org/api"


def test_bad_checksum(server: Server, tmp_path: Path) -> None:
    server.md5["emoji.npz"] = "0" * 32
    actual = hashlib.md5(server.files["emoji.npz"]).hexdigest()
    with pytest.raises(ChecksumError) as err:
        download_dataset("emoji", tmp_path, api=server.api, **FAST)
    assert "0" * 32 in str(err.value) and actual in str(err.value)
    assert server.hits["/files/emoji.npz"] == 1  # a checksum mismatch is not retried
    assert _names(tmp_path) == []


def test_truncated_body_is_retried_then_fails(server: Server, tmp_path: Path) -> None:
    server.modes["/files/emoji.npz"] = ["truncate"] * 3
    with pytest.raises(DownloadError):
        download_dataset("emoji", tmp_path, api=server.api, **FAST)
    assert server.hits["/files/emoji.npz"] == 3
    assert _names(tmp_path) == []


def test_truncated_then_success(server: Server, tmp_path: Path) -> None:
    server.modes["/files/emoji.npz"] = ["truncate", "short"]
    path = download_dataset("emoji", tmp_path, api=server.api, **FAST)
    assert path.read_bytes() == server.files["emoji.npz"]
    assert server.hits["/files/emoji.npz"] == 3
    assert _names(tmp_path) == ["emoji.npz"]


def test_short_body_fails(server: Server, tmp_path: Path) -> None:
    server.modes["/files/emoji.npz"] = ["short"] * 3
    with pytest.raises(DownloadError, match="truncated"):
        download_dataset("emoji", tmp_path, api=server.api, **FAST)
    assert _names(tmp_path) == []


def test_server_error_then_success(server: Server, tmp_path: Path) -> None:
    server.modes[RECORD] = ["500"]
    server.modes["/files/emoji.npz"] = ["500"]
    path = download_dataset("emoji", tmp_path, api=server.api, **FAST)
    assert path.read_bytes() == server.files["emoji.npz"]
    assert server.hits[RECORD] == 2 and server.hits["/files/emoji.npz"] == 2


def test_persistent_server_error(server: Server, tmp_path: Path) -> None:
    server.modes["/files/emoji.npz"] = ["500"] * 10
    with pytest.raises(DownloadError, match="500"):
        download_dataset("emoji", tmp_path, api=server.api, **FAST)
    assert server.hits["/files/emoji.npz"] == 3
    assert _names(tmp_path) == []


def test_not_found_names_the_url(server: Server, tmp_path: Path) -> None:
    server.modes["/files/emoji.npz"] = ["404"]
    with pytest.raises(DownloadError, match="404") as err:
        download_dataset("emoji", tmp_path, api=server.api, **FAST)
    assert f"{server.base}/files/emoji.npz" in str(err.value)
    assert server.hits["/files/emoji.npz"] == 1  # not retried
    assert _names(tmp_path) == []
    with pytest.raises(DownloadError, match="404") as err:
        download_dataset("emoji", tmp_path, api=server.base + "/wrong", **FAST)
    assert f"{server.base}/wrong/records/6578038" in str(err.value)


def test_file_missing_from_record(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="aerial.npz"):
        download_dataset("aerial", tmp_path, api=server.api, **FAST)
    with pytest.raises(ValueError, match="unknown STIR dataset"):
        download_dataset("cifar", tmp_path, api=server.api, **FAST)


def test_invalid_file_is_not_kept(server: Server, tmp_path: Path) -> None:
    server.files["emoji.npz"] = b"definitely not an npz archive"
    with pytest.raises(STIRFormatError, match="emoji.npz"):
        download_dataset("emoji", tmp_path, api=server.api, **FAST)
    assert _names(tmp_path) == []


def test_server_down(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError) as err:
        download_dataset("emoji", tmp_path / "data", api=f"http://127.0.0.1:{port}/api", **FAST)
    msg = str(err.value)
    assert "emoji.npz" in msg and "https://zenodo.org/records/6578038" in msg
    assert "by hand" in msg and "data folder" in msg
    assert "Connection refused" in msg and "object at 0x" not in msg
    # not chained to requests' and urllib3's errors: no tracebacks but the message
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert _names(tmp_path / "data") == []


def test_fetch_record_files(server: Server) -> None:
    files = fetch_record_files(server.api, **FAST)
    assert sorted(files) == ["emoji.npz", "mnist.npz"]
    entry = files["emoji.npz"]
    assert entry.size == len(server.files["emoji.npz"])
    assert entry.md5 == hashlib.md5(server.files["emoji.npz"]).hexdigest()
    assert entry.url == f"{server.base}/files/emoji.npz"


def test_verify_local_file(server: Server, tmp_path: Path, caplog) -> None:
    path = tmp_path / "emoji.npz"
    path.write_bytes(server.files["emoji.npz"])
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    assert verify_local_file(path, "emoji") == path
    assert verify_local_file(path, "emoji", expected_md5=md5.upper()) == path
    assert verify_local_file(path, "emoji", api=server.api) == path
    assert server.hits[RECORD] == 1
    with pytest.raises(ChecksumError, match="1" * 32):
        verify_local_file(path, "emoji", expected_md5="1" * 32)
    server.md5["emoji.npz"] = "2" * 32
    with pytest.raises(ChecksumError, match="2" * 32):
        verify_local_file(path, "emoji", api=server.api)
    with pytest.raises(STIRFormatError, match="layout"):
        verify_local_file(path, "emoji", strict=True)  # 2 classes, not the published 36
    with pytest.raises(FileNotFoundError, match="6578038"):
        verify_local_file(tmp_path / "mnist.npz", "mnist")
    path.write_bytes(b"junk")
    with pytest.raises(STIRFormatError, match="emoji.npz"):
        verify_local_file(path, "emoji")


def test_verify_local_file_offline_checks_format_only(tmp_path: Path, payloads, caplog) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "emoji.npz"
    path.write_bytes(payloads["emoji.npz"])
    caplog.set_level(logging.WARNING, logger="scalecnn.data.download")
    verify_local_file(path, "emoji", api=f"http://127.0.0.1:{port}/api", timeout=2)
    assert any("checking format only" in r.getMessage() for r in caplog.records)


def test_retries_log_one_short_line_each(tmp_path: Path, caplog) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    caplog.set_level(logging.WARNING, logger="scalecnn.data.download")
    with pytest.raises(DownloadError):
        download_dataset("emoji", tmp_path, api=f"http://127.0.0.1:{port}/api", **FAST)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == FAST["retries"], lines
    for k, line in enumerate(lines, start=1):
        assert f"retry {k}/{FAST['retries']}" in line and "Connection refused" in line, line
        assert "\n" not in line and "object at 0x" not in line and "Max retries" not in line


def test_full_disk_is_reported_once_naming_the_file(
    server: Server, tmp_path: Path, monkeypatch
) -> None:
    """No room for the download: DiskFullError naming the target, not retried (it is no
    network error), nothing left behind (neither pooch's temporary file nor ours)."""

    def no_room(self, chunk: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("scalecnn.data.download._Sink.write", no_room)
    with pytest.raises(DiskFullError) as err:
        download_dataset("emoji", tmp_path, api=server.api, **FAST)
    assert f"no space left on the device of {tmp_path / 'emoji.npz'}" in str(err.value)
    assert server.hits["/files/emoji.npz"] == 1
    assert _names(tmp_path) == []


# --- without network: the command line and the workflow's script -------------------------
NO_NETWORK = """
import socket
import time

def _no_name_resolution(*args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

socket.getaddrinfo = _no_name_resolution  # as offline: urllib3 raises NameResolutionError
time.sleep = lambda seconds: None  # no back-off waits
"""

# the command line, as `scalecnn ARGS`
CLI = """
import sys
from scalecnn.cli import main

sys.exit(main(sys.argv[1:]))
"""

# the workflow's script, as Snakemake runs it: SCRIPT OUT LOG LOCAL
SCRIPT = """
import runpy
import sys
from types import SimpleNamespace as NS

script, out, log, local = sys.argv[1:]
smk = NS(
    wildcards=NS(data="mnist"),
    output=[out],
    log=[log],
    params=NS(source="zenodo", local=local, api=None),
)
runpy.run_path(script, init_globals={"snakemake": smk}, run_name="__main__")
"""


def _offline(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` with ``args`` in a fresh interpreter without network (and with the
    default Zenodo API)."""
    env = {k: v for k, v in os.environ.items() if k != "SCALECNN_ZENODO_API"}
    argv = [sys.executable, "-c", NO_NETWORK + code, *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def _assert_one_message(text: str, retries: int) -> None:
    """``retries`` one-line retry warnings, then the one message; no traceback."""
    assert "Traceback" not in text and "NameResolutionError" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == retries + 1, text
    for k, line in enumerate(lines[:-1], start=1):
        assert f"retry {k}/{retries}" in line and "Failed to resolve 'zenodo.org'" in line, line
    reach = "cannot reach https://zenodo.org/api/records/6578038"
    assert text.count(reach) == 1 and reach in lines[-1], text
    assert "(no network?)" in lines[-1] and "put it into the data folder as 'mnist.npz'" in text


def test_no_network_download_command_prints_one_message(tmp_path: Path) -> None:
    proc = _offline(CLI, "download", "mnist", "--dest", str(tmp_path / "data"), "--retries", "2")
    assert proc.returncode == 1, proc.stderr
    _assert_one_message(proc.stderr, retries=2)
    assert proc.stderr.strip().splitlines()[-1].startswith("scalecnn download: error: ")
    assert _names(tmp_path / "data") == []


def test_no_network_prepare_data_script_logs_one_message(tmp_path: Path) -> None:
    out, log = tmp_path / "results" / "data" / "mnist.npz", tmp_path / "mnist.log"
    script = REPO / "workflow" / "scripts" / "prepare_data.py"
    proc = _offline(SCRIPT, str(script), str(out), str(log), str(tmp_path / "absent.npz"))
    assert proc.returncode == 1, proc.stderr
    _assert_one_message(log.read_text(), retries=3)  # the script's default: 3 retries
    _assert_one_message(proc.stderr, retries=3)
    assert _names(out.parent) == []
