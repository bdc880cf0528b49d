"""Confinement of user-named paths to the allowed roots (tfcnn.paths), on real files."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tfcnn.errors import AccessError
from tfcnn.paths import (ENV_ALLOWED_ROOTS, PROJECT_DATA_DIR, REFUSED, allowed_roots, confine,
                         confine_dir, display, folder_refusal, read_confined_file)


@pytest.fixture
def tree(tmp_path):
    """An allowed root with a file, a sub-folder, a FIFO and symlinks in and out of it."""
    root = tmp_path / "allowed"
    (root / "sub").mkdir(parents=True)
    (root / "song.wav").write_bytes(b"RIFF....")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.wav").write_bytes(b"secret")
    (root / "escape.wav").symlink_to(outside / "secret.wav")
    (root / "escape-dir").symlink_to(outside)
    (root / "inside-link.wav").symlink_to(root / "song.wav")
    os.mkfifo(root / "pipe.wav")
    unreadable = root / "locked.wav"
    unreadable.write_bytes(b"x")
    unreadable.chmod(0)
    return root, outside


def test_allowed_roots_are_data_extra_and_env(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    roots = allowed_roots(extra=[a], env={ENV_ALLOWED_ROOTS: f"{b}{os.pathsep}{os.pathsep}"})
    assert roots == tuple(Path(os.path.realpath(p)) for p in (PROJECT_DATA_DIR, a, b))


def test_files_inside_are_read_and_links_resolved(tree):
    root, _ = tree
    assert read_confined_file(root / "song.wav", [root], max_bytes=100) == b"RIFF...."
    assert read_confined_file(root / "inside-link.wav", [root], max_bytes=100) == b"RIFF...."
    assert confine_dir(root / "sub", [root]) == root / "sub"


def _refused_to_an_unprivileged_user(path: Path, root: Path) -> None:
    """As root: read ``path`` in a forked child that dropped to nobody; it must get the one
    refusal message (exit 0), not the file (exit 1) nor another error (exit 2)."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest, no exceptions out of here
        code = 2
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            read_confined_file(path, [root], max_bytes=100)
            code = 1
        except AccessError as e:
            code = 0 if str(e) == REFUSED else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("name", [
    "../outside/secret.wav",  # outside by ..
    "escape.wav",             # a symlink leading out
    "escape-dir/secret.wav",  # through a symlinked folder
    "missing.wav",            # does not exist
    "pipe.wav",               # a FIFO: refused at once, never blocks
    "locked.wav",             # no permission (as root, readable: then by content type)
    "sub",                    # a folder is not a file
])
def test_every_refusal_is_the_same_message(tree, name):
    root, _ = tree
    if name == "locked.wav" and os.geteuid() == 0:
        _refused_to_an_unprivileged_user(root / name, root)  # root reads past permission bits
        return
    start = time.monotonic()
    with pytest.raises(AccessError) as info:
        read_confined_file(root / name, [root], max_bytes=100)
    assert str(info.value) == REFUSED
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("path", ["/dev/zero", "/etc/passwd", "/etc/shadow", "/", "/proc/self/environ"])
def test_system_paths_are_refused(tree, path):
    root, _ = tree
    with pytest.raises(AccessError, match="^" + REFUSED[:30]):
        read_confined_file(path, [root], max_bytes=100)
    with pytest.raises(AccessError) as info:
        confine_dir(path, [root])
    assert str(info.value) == REFUSED


def test_a_fifo_inside_the_roots_does_not_hang(tree):
    root, _ = tree
    done = threading.Event()

    def read():
        with pytest.raises(AccessError):
            read_confined_file(root / "pipe.wav", [root], max_bytes=100)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(5.0), "reading a FIFO blocked"


def test_size_limit_names_the_file(tree):
    root, _ = tree
    big = root / "big.wav"
    big.write_bytes(b"\0" * 2048)
    with pytest.raises(AccessError, match="big.wav: file is .* MB; the limit"):
        read_confined_file(big, [root], max_bytes=1024)


def test_confine_accepts_the_root_itself_and_refuses_a_sibling_prefix(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "data-other").mkdir()
    assert confine(root, [root]) == root
    with pytest.raises(AccessError):
        confine(tmp_path / "data-other", [root])


def test_display_escapes_bytes_that_are_not_utf8():
    name = os.fsdecode(b"caf\xe9.wav")
    assert display(name) == "caf\\xe9.wav"
    display(name).encode("utf-8")  # printable


def test_folder_refusal_says_why_only_to_the_operator(tmp_path):
    root = tmp_path / "allowed"
    (root / "file.wav").parent.mkdir()
    (root / "file.wav").write_bytes(b"RIFF")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    roots = (root.resolve(),)
    env = {ENV_ALLOWED_ROOTS: f"/already{os.pathsep}"}

    def why(path):
        return folder_refusal(path, roots, private=True, env=env)

    assert why(tmp_path / "missing") == (f"{tmp_path / 'missing'} does not exist. The app may "
                                         f"read folders inside: {root.resolve()}")
    assert why(root / "file.wav") == f"{root / 'file.wav'} is not a folder"
    assert why(elsewhere) == (
        f"{elsewhere} is outside the folders this app may read ({root.resolve()}). To add it, "
        f"restart the app with: {ENV_ALLOWED_ROOTS}=/already{os.pathsep}{elsewhere.resolve()} "
        "make run")
    # Exposed (a password, or beyond this machine): one message whatever the path.
    for path in (tmp_path / "missing", root / "file.wav", elsewhere, "/etc", "bad\0path"):
        assert folder_refusal(path, roots, private=False, env=env) == REFUSED
    assert why("bad\0path") == "bad\0path is not a usable path"
