"""The one atomic writer and input opener."""

from __future__ import annotations

import gzip
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hashmatch.files import atomic_text, atomic_write, open_input

import hashmatch as hm
from hashmatch import files


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


# ---------------------------------------------------------------- stale temporary files


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def small_index() -> hm.FlatIndex:
    index = hm.FlatIndex(64)
    index.add(hm.datasets.random_codes(10, 64))
    return index


KILLED_WRITER = """
import os, signal, sys
from hashmatch.files import atomic_write
with atomic_write(sys.argv[1]) as f:
    f.write(b"x" * (4 << 20))
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_temporary_left_by_a_killed_writer_is_removed_by_the_next_save(tmp_path: Path) -> None:
    target = tmp_path / "list.hm"
    hm.save(small_index(), target)
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], check=False)
    assert killed.returncode == -signal.SIGKILL
    (left,) = temporaries(tmp_path)  # SIGKILL: nothing could clean up
    assert left.startswith(".list.hm.") and (tmp_path / left).stat().st_size == 4 << 20
    hm.save(small_index(), target)
    assert temporaries(tmp_path) == []
    assert len(hm.load(target)) == 10


def test_stale_temporaries_of_this_target_only_are_removed(tmp_path: Path) -> None:
    stale = [".out.bin.hashmatch-abc_123x.tmp", ".out.bin.hashmatch-zzzzzzzz.tmp"]
    others = [
        ".out.bin.x.hashmatch-abcdefgh.tmp",  # a temporary of "out.bin.x"
        ".other.bin.hashmatch-abcdefgh.tmp",
        ".out.bin.hashmatch-abcdefgh.tmp.keep",
        "out.bin.hashmatch-abcdefgh.tmp",
        ".out.bin.backup.tmp",  # the user's own files: not hashmatch's temporaries
        ".out.bin.previous.tmp",
        ".out.bin.hashmatch-toolongname.tmp",
    ]
    for name in stale + others:
        (tmp_path / name).write_bytes(b"partial")
    (tmp_path / ".out.bin.hashmatch-dirdirdi.tmp").mkdir()  # not a regular file: left alone
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"keep")
    (tmp_path / ".out.bin.hashmatch-symlinkx.tmp").symlink_to(elsewhere)  # not followed
    with atomic_write(tmp_path / "out.bin") as f:
        f.write(b"new")
    left = {p.name for p in tmp_path.iterdir()}
    assert not left & set(stale)
    kept = {".out.bin.hashmatch-dirdirdi.tmp", ".out.bin.hashmatch-symlinkx.tmp", "out.bin"}
    assert set(others) | kept <= left
    assert elsewhere.read_bytes() == b"keep"


def test_the_temporary_of_a_live_writer_in_this_process_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "list.hm"
    with atomic_write(target) as outer:  # a live writer: holds its temporary file's lock
        outer.write(b"outer")
        (mine,) = temporaries(tmp_path)
        hm.save(small_index(), target)  # another writer of the same target meanwhile
        assert temporaries(tmp_path) == [mine]
    assert target.read_bytes() == b"outer"  # the last rename wins, as it should
    assert temporaries(tmp_path) == []


HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_the_temporary_of_a_live_writer_in_another_process_is_left_alone(
    tmp_path: Path,
) -> None:
    pytest.importorskip("fcntl")
    target = tmp_path / "list.hm"
    held = tmp_path / ".list.hm.hashmatch-livewrtr.tmp"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(held)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        hm.save(small_index(), target)
        assert held.exists()
    finally:
        holder.communicate("", timeout=30)
    hm.save(small_index(), target)  # its writer is gone now
    assert not held.exists()


def test_concurrent_writers_of_one_target_never_remove_each_others_files(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out.bin"
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(25):
                with atomic_write(target) as f:
                    f.write(b"%d-%d" % (n, i) * 1000)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert temporaries(tmp_path) == []
    assert len(target.read_bytes()) >= 3000


def test_without_fcntl_saves_work_and_remove_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "fcntl", None)
    stale = tmp_path / ".out.bin.hashmatch-abcdefgh.tmp"
    stale.write_bytes(b"partial")
    with atomic_write(tmp_path / "out.bin") as f:
        f.write(b"new")
    assert (tmp_path / "out.bin").read_bytes() == b"new" and stale.exists()
    code = "import sys; sys.modules['fcntl'] = None; import hashmatch.files as f; print(f.fcntl)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "None"  # (an editable install may log first)


def test_special_files_are_written_into_never_replaced(tmp_path: Path) -> None:
    """``--out /dev/null`` (or a FIFO, ``/dev/stdout``) must not turn into a regular file."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    with atomic_text(fifo) as f:
        f.write("streamed\n")
    reader.join(10)
    assert got == [b"streamed\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    with atomic_text("/dev/null") as f:
        f.write("gone")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(hm.InvalidArgument, match="character device, not a regular file"):
        hm.save(small_index(), "/dev/null")
    with pytest.raises(IsADirectoryError) as info, atomic_write(tmp_path):
        pass
    assert ".tmp" not in str(info.value)


def test_a_symbolic_link_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with atomic_text(link) as f:
        f.write("new")
    assert link.is_symlink() and real.read_text() == "new"
