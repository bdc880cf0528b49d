"""tfcnn.download: verify, resume and unpack a (small, test-built) Ballroom archive.

The official archive cannot be reached from the test machine; these tests build a tar.gz with
the official layout (``BallroomData/<folder>/<real track stem>.wav``, tiny real WAVs) and
serve it from a local HTTP server on 127.0.0.1 that honours ``Range`` requests.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tfcnn.datasets import BALLROOM_FOLDERS, ballroom_track_table, load_dataset
from tfcnn.download import BALLROOM_ARCHIVE, BALLROOM_MD5, BALLROOM_URL, download_ballroom
from tfcnn.errors import DatasetError

REPO = Path(__file__).resolve().parents[1]
SR = 44100


def wav_bytes(seed: int) -> bytes:
    """0.2 s of noise as a real 16-bit WAV (noise: the archive does not compress to nothing)."""
    buf = io.BytesIO()
    y = 0.1 * np.random.default_rng(seed).standard_normal(int(0.2 * SR)).astype(np.float32)
    sf.write(buf, y, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def build_archive(path: Path, *, per_folder: int = 1, top: str = "BallroomData",
                  extra: dict[str, bytes] | None = None) -> tuple[Path, str, int]:
    """A tar.gz in the official layout with real stems; returns (path, md5, n_tracks)."""
    table = ballroom_track_table().sort_values("track")
    rumba = iter(table.loc[table.dance == "Rumba", "track"])
    members: dict[str, bytes] = {}
    for folder, dance in BALLROOM_FOLDERS.items():
        pool = rumba if dance == "Rumba" else iter(table.loc[table.dance == dance, "track"])
        for _ in range(per_folder):
            members[f"{top}/{folder}/{next(pool)}.wav"] = wav_bytes(len(members))
    members.update(extra or {})
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path, hashlib.md5(path.read_bytes()).hexdigest(), len(members)


class ArchiveServer:
    """A bounded local HTTP server for one file, with Range support and a truncation switch."""

    def __init__(self, payload: bytes, *, ranges: bool = True):
        self.payload = payload
        self.ranges = ranges
        self.truncate_next: int | None = None  # send only this many bytes in the next answer
        self.requests: list[str | None] = []  # the Range header of every request
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                rng = self.headers.get("Range")
                server.requests.append(rng)
                start = 0
                if rng and server.ranges:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(server.payload):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    size = len(server.payload)
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.truncate_next is not None:
                    body, server.truncate_next = body[: server.truncate_next], None
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{BALLROOM_ARCHIVE}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def looks_complete(to_dir: Path) -> bool:
    return (to_dir / "BallroomData").exists() or (to_dir / BALLROOM_ARCHIVE).exists()


def test_official_url_and_md5():
    assert BALLROOM_URL == "https://mtg.upf.edu/ismir2004/contest/tempoContest/data1.tar.gz"
    assert BALLROOM_MD5 == "2872a3e52070bc342a4510a95e2fa0b8"


def test_http_download_verifies_unpacks_and_cleans_up(tmp_path):
    archive, md5, n = build_archive(tmp_path / "src.tar.gz")
    to_dir = tmp_path / "out"
    with ArchiveServer(archive.read_bytes()) as server:
        ds = download_ballroom(to_dir, url=server.url, md5=md5, progress=False)
    assert server.requests == [None]
    assert ds.kind == "ballroom" and len(ds.tracks) == n == 10
    assert ds.root == (to_dir / "BallroomData").resolve()
    assert ds.report[0] == "10 of 698 Ballroom tracks present"
    assert sorted(p.name for p in to_dir.iterdir()) == ["BallroomData"]  # archive deleted
    assert load_dataset(to_dir).tracks.equals(ds.tracks)
    # Done is done: a second call touches no network (the URL is now dead).
    again = download_ballroom(to_dir, url="http://127.0.0.1:9/none", md5=md5, progress=False)
    assert len(again.tracks) == n


def test_interrupted_download_resumes_with_range(tmp_path):
    archive, md5, n = build_archive(tmp_path / "src.tar.gz", per_folder=2)
    payload = archive.read_bytes()
    to_dir = tmp_path / "out"
    partial = to_dir / (BALLROOM_ARCHIVE + ".partial")
    with ArchiveServer(payload) as server:
        server.truncate_next = len(payload) // 3  # the connection drops a third of the way
        with pytest.raises(DatasetError, match="run again to resume"):
            download_ballroom(to_dir, url=server.url, md5=md5, progress=False)
        assert partial.stat().st_size == len(payload) // 3
        assert not looks_complete(to_dir)
        ds = download_ballroom(to_dir, url=server.url, md5=md5, progress=False, keep_archive=True)
    assert server.requests == [None, f"bytes={len(payload) // 3}-"]
    assert len(ds.tracks) == n
    assert (to_dir / BALLROOM_ARCHIVE).read_bytes() == payload  # resumed bytes are right
    assert not partial.exists()


def test_server_without_range_support_restarts_cleanly(tmp_path):
    archive, md5, n = build_archive(tmp_path / "src.tar.gz")
    to_dir = tmp_path / "out"
    to_dir.mkdir()
    (to_dir / (BALLROOM_ARCHIVE + ".partial")).write_bytes(b"stale bytes of another try")
    with ArchiveServer(archive.read_bytes(), ranges=False) as server:
        ds = download_ballroom(to_dir, url=server.url, md5=md5, progress=False)
    assert server.requests == ["bytes=26-"]  # asked to resume, got a 200: overwritten
    assert len(ds.tracks) == n


def test_bad_md5_is_an_error_and_leaves_nothing_complete(tmp_path):
    archive, md5, _ = build_archive(tmp_path / "src.tar.gz")
    to_dir = tmp_path / "out"
    with pytest.raises(DatasetError, match=f"md5 of the download .* expected {'0' * 32}"):
        download_ballroom(to_dir, url=archive.as_uri(), md5="0" * 32, progress=False)
    assert list(to_dir.iterdir()) == []  # no archive, no partial, no BallroomData


def test_local_archive_is_used_as_is_and_never_deleted(tmp_path):
    archive, md5, n = build_archive(tmp_path / "data1.tar.gz")
    with pytest.raises(DatasetError, match=r"md5 of .*data1.tar.gz is .* expected"):
        download_ballroom(tmp_path / "bad", archive=archive, md5="1" * 32, progress=False)
    assert archive.is_file() and not looks_complete(tmp_path / "bad")
    ds = download_ballroom(tmp_path / "out", archive=archive, md5=md5, progress=False)
    assert len(ds.tracks) == n and archive.is_file()


@pytest.mark.parametrize("extra, pattern", [
    ({"../evil.wav": b"x"}, r"unsafe member path '\.\./evil\.wav'"),
    ({"/abs/evil.wav": b"x"}, r"unsafe member path '/abs/evil\.wav'"),
])
def test_unsafe_members_are_refused(tmp_path, extra, pattern):
    archive, md5, _ = build_archive(tmp_path / "src.tar.gz", extra=extra)
    to_dir = tmp_path / "a" / "out"
    with pytest.raises(DatasetError, match=pattern):
        download_ballroom(to_dir, archive=archive, md5=md5, progress=False)
    assert not (tmp_path / "a" / "evil.wav").exists() and not Path("/abs/evil.wav").exists()
    assert [p.name for p in to_dir.iterdir()] == []  # the temporary unpack folder is gone


def test_archive_without_ballroomdata_is_refused(tmp_path):
    archive, md5, _ = build_archive(tmp_path / "src.tar.gz", top="SomethingElse")
    with pytest.raises(DatasetError, match=r"has no BallroomData/ folder .*SomethingElse"):
        download_ballroom(tmp_path / "out", archive=archive, md5=md5, progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_not_a_tarball_is_refused(tmp_path):
    junk = tmp_path / "data1.tar.gz"
    junk.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(DatasetError, match=r"cannot unpack .*data1.tar.gz"):
        download_ballroom(tmp_path / "out", archive=junk, md5=None, progress=False)


def test_cli_download_with_archive(tmp_path):
    archive, md5, n = build_archive(tmp_path / "data1.tar.gz")
    cmd = [sys.executable, "-m", "tfcnn", "download", "ballroom", "--to", str(tmp_path / "out"),
           "--archive", str(archive), "--quiet"]
    bad = subprocess.run(cmd + ["--md5", "f" * 32], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: md5 of ")
    ok = subprocess.run(cmd + ["--md5", md5], cwd=REPO, capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert f"Ballroom: {n} tracks in 8 classes" in ok.stdout
    assert f"{n} of 698 Ballroom tracks present" in ok.stdout


def test_make_ballroom_unpacks_builds_features_and_says_where(tmp_path):
    """`make ballroom ARCHIVE=...`: unpack, the log-mel cache, and the lines a user acts on."""
    archive, _, n = build_archive(tmp_path / "data1.tar.gz")
    out = tmp_path / "ballroom"
    # -o venv: use this interpreter's environment as it is (no install step inside a test).
    done = subprocess.run(["make", "-s", "-o", "venv", "ballroom", f"BALLROOM={out}",
                           f"ARCHIVE={archive}", "MD5=none", f"BIN={Path(sys.executable).parent}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    where = out / "BallroomData"
    assert f"Ballroom: {n} tracks in 8 classes" in done.stdout
    assert f"computed {n}, reused 0" in done.stdout
    assert len(list(where.glob(".tfcnn-cache/*/*.npz"))) == n
    assert f"Ballroom is ready at {where}" in done.stdout
    # Outside data/: the exact way to let the app read it.
    assert f"TFCNN_ALLOWED_ROOTS={out} make run" in done.stdout
