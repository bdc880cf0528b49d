"""Atomic writes: a failure mid-way keeps the old file and leaves no temporary file."""

import os

import pytest

from tfcnn.atomic import atomic_path, write_bytes_atomic, write_text_atomic


def test_failure_inside_the_block_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.bin"
    write_bytes_atomic(target, b"old")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of the new conte")
            raise RuntimeError("crash while writing")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_written_files_are_readable_and_folders_created(tmp_path):
    target = tmp_path / "a" / "b" / "note.txt"
    write_text_atomic(target, "héllo")
    assert target.read_text(encoding="utf-8") == "héllo"
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o644)
    write_bytes_atomic(target, b"x", fsync=True)
    assert target.read_bytes() == b"x"
    assert sorted(p.name for p in target.parent.iterdir()) == ["note.txt"]
