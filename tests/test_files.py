"""Atomic writing (files.py): a file is complete or as it was, with the user's permissions, never the umask changed."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from stylecraft import files
from stylecraft.errors import ImageError
from stylecraft.images import save_image


def test_writes_never_touch_the_process_umask(tmp_path, monkeypatch):
    """os.umask is process-wide: setting it, even for a moment, races with every other thread's new files."""
    def forbidden(mask):
        raise AssertionError("atomic_write_bytes changed the process umask")

    monkeypatch.setattr(os, "umask", forbidden)
    files.atomic_write_bytes(tmp_path / "a.bin", b"data")
    save_image(Image.new("RGB", (8, 8)), tmp_path / "b.png")
    for name in ("a.bin", "b.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == files.FILE_MODE


def test_a_failed_write_leaves_the_old_file_and_no_parts(tmp_path):
    path = tmp_path / "record.json"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), files.atomic_file(path) as stream:
        stream.write(b"half of the new")
        raise RuntimeError("the writer failed")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_check_writable_refuses_a_missing_folder(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        files.check_writable(tmp_path / "missing" / "out.bin")
    assert files.check_writable(tmp_path / "out.bin") == tmp_path / "out.bin"


def test_a_private_file_is_written_0600_whatever_the_umask(tmp_path):
    path = tmp_path / "private.bin"
    files.atomic_write_bytes(path, b"secret", mode=0o600)
    assert path.read_bytes() == b"secret" and path.stat().st_mode & 0o777 == 0o600
    files.atomic_write_bytes(path, b"public")
    assert path.stat().st_mode & 0o777 == files.FILE_MODE


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_is_neither_an_output_file_nor_an_output_folder(tmp_path):
    with pytest.raises(ImageError, match="not a regular file"):
        files.check_writable("/dev/null")
    with pytest.raises(ImageError, match="is not a folder"):
        files.make_folder("/dev/null")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageError, match="is not a folder"):
        files.make_folder(tmp_path / "file")
    assert files.make_folder(tmp_path / "a" / "b").is_dir()
