"""Downloading published weights, offline: a server on 127.0.0.1 in a thread and file:// URLs. Kept only
when complete and of the published SHA-256; otherwise a clear error and nothing left behind."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from bench.sources.download import fetch, weights_file
from bench.sources.weights import Weights
from data.errors import UserError

PAYLOAD = bytes(range(256)) * 5000  # 1.2 MiB: two progress steps
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; /short/NAME announces the whole file but sends half of it and hangs up."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.startswith("/short/"):
            data = (Path(self.directory) / self.path.removeprefix("/short/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """(base URL, served folder holding weights.bin) of a server on 127.0.0.1, stopped after the test."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "weights.bin").write_bytes(PAYLOAD)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=served))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _entry(url: str, sha256: str | None = DIGEST) -> Weights:
    return Weights(name="tiny", url=url, licence="MIT", model="litert", sha256=sha256)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_download_is_checked_and_renamed_into_place(server, tmp_path, capsys):
    base, _ = server
    folder = tmp_path / "weights"
    path = weights_file(_entry(f"{base}/weights.bin"), folder)
    assert path == folder / "weights.bin" and path.read_bytes() == PAYLOAD
    assert _files(folder) == ["weights.bin"]  # no temporary file left
    assert (
        "download weights.bin: MiB 2/2" in capsys.readouterr().err
    )  # progress, as a log line off a terminal


def test_file_url_downloads_too(tmp_path):
    source = tmp_path / "source" / "weights.bin"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    path = weights_file(_entry(source.as_uri()), tmp_path / "weights", progress=False)
    assert path.read_bytes() == PAYLOAD


def test_a_local_file_is_used_without_any_download(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(PAYLOAD)
    unreachable = "http://127.0.0.1:9/weights.bin"  # the discard port: nothing listens
    assert weights_file(_entry(unreachable), folder).read_bytes() == PAYLOAD


def test_a_local_file_of_another_hash_is_refused_and_kept(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(PAYLOAD[:-1])
    with pytest.raises(UserError, match=r"weights\.bin has SHA-256 .* not the published .*delete it"):
        weights_file(_entry("http://127.0.0.1:9/weights.bin"), folder)
    assert (folder / "weights.bin").read_bytes() == PAYLOAD[:-1]


def test_the_file_name_prefix_of_mmseg_checks_the_download(server, tmp_path):
    """mmsegmentation's files are known by the 8 hex digits of SHA-256 their names end in."""
    base, served = server
    name = f"pspnet_tiny-{DIGEST[:8]}.pth"
    (served / name).write_bytes(PAYLOAD)
    entry = _entry(f"{base}/{name}", sha256=None)
    assert entry.digest == DIGEST[:8]
    assert weights_file(entry, tmp_path / "a", progress=False).read_bytes() == PAYLOAD
    wrong = f"pspnet_tiny-{'0' * 8 if DIGEST[:8] != '0' * 8 else '1' * 8}.pth"
    (served / wrong).write_bytes(PAYLOAD)
    with pytest.raises(UserError, match="not the published"):
        weights_file(_entry(f"{base}/{wrong}", sha256=None), tmp_path / "b", progress=False)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "url, sha256, message",
    [
        ("{base}/weights.bin", "0" * 64, r"has SHA-256 .* not the published 0{64}: nothing was kept"),
        (
            "{base}/short/weights.bin",
            DIGEST,
            r"truncated: 640,000 of 1,280,000 bytes arrived; nothing was kept",
        ),
        ("{base}/missing.bin", DIGEST, r"cannot download .*missing\.bin: the server answered HTTP 404"),
        ("http://127.0.0.1:9/weights.bin", DIGEST, r"cannot download .*check the network"),
        ("file:///nonexistent/weights.bin", DIGEST, r"cannot download"),
    ],
)
def test_a_failed_download_is_an_error_that_leaves_nothing_behind(server, tmp_path, url, sha256, message):
    base, _ = server
    folder = tmp_path / "new" / "weights"  # folders created for the download go too
    entry = dataclasses.replace(_entry(url.format(base=base)), sha256=sha256)
    with pytest.raises(UserError, match=message):
        weights_file(entry, folder, progress=False)
    assert _files(tmp_path / "new") == [] and not (tmp_path / "new").exists()


def test_a_failed_download_keeps_the_folder_it_did_not_create(server, tmp_path):
    base, _ = server
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "other.pth").write_bytes(b"someone else's")
    with pytest.raises(UserError, match="truncated"):
        fetch(f"{base}/short/weights.bin", folder / "weights.bin", DIGEST, progress=False)
    assert _files(folder) == ["other.pth"]
