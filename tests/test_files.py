"""The one atomic writer and input opener."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import pytest
from hashmatch.files import atomic_text, atomic_write, open_input

import hashmatch as hm


def test_new_files_get_the_umask_mode_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "list.bin"
        with atomic_write(path) as f:
            f.write(b"x")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        os.chmod(path, 0o640)
        with atomic_write(path) as f:  # a replaced file keeps its mode
            f.write(b"y")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    finally:
        os.umask(old)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_text(path) as f:
        f.write("new")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_missing_directory_names_the_path_given(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.hm"
    with pytest.raises(FileNotFoundError) as info, atomic_write(target):
        pass
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)


def test_open_input_gunzips_by_content_and_refuses_containers(tmp_path: Path) -> None:
    path = tmp_path / "plain.txt"  # gzip without a .gz name
    path.write_bytes(gzip.compress(b"abcd\n"))
    with open_input(path) as source:
        assert source.stream.read() == b"abcd\n"
    saved = tmp_path / "index.hm"
    index = hm.FlatIndex(64)
    index.add(hm.datasets.random_codes(3, 64))
    hm.save(index, saved)
    with pytest.raises(hm.HashFormatError, match=r"hashmatch file.*hashmatch.load"):
        with open_input(saved):
            pass
