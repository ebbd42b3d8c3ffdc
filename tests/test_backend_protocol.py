"""The backend protocol: every backend described by name, params, exact and its container
sections; the one factory (with "auto"); pickling by sections (in a spawned process too); the
kinds hm.load reads; and the atomic writer's permissions and errors."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import stat
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hashmatch.backends import (
    BACKEND_CLASSES,
    BACKEND_KINDS,
    BACKENDS,
    Backend,
    backend_from_sections,
    make_backend,
)

import hashmatch as hm
from hashmatch import io as hio

FAISS = ["faiss-hnsw", "faiss-ivf", "faiss-multihash"]


def filled(name: str, bits: int = 64, n: int = 600, seed: int = 3) -> Any:
    backend = make_backend(name, bits)
    backend.add(hm.datasets.random_codes(n, bits, seed=seed), ids=np.arange(n) * 7 + 1)
    return backend


def answers(backend: Any, seed: int = 4) -> tuple[list[list[int]], ...]:
    """kNN and range answers over planted and random queries (what equal backends share)."""
    db = hm.datasets.random_codes(600, backend.bits, seed=3)
    queries = np.concatenate(
        [
            hm.datasets.flip_bits(db[:8], [0, 1, 2, 3, 5, 6, 7, 8]),
            hm.datasets.random_codes(4, backend.bits),
        ]
    )
    knn = backend.search(queries, 5)
    lims, distances, ids = backend.range_search(queries, backend.bits // 8)
    return knn.distances.tolist(), knn.ids.tolist(), lims.tolist(), distances.tolist(), ids.tolist()


@pytest.fixture
def umask() -> Iterator[int]:
    previous = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(previous)


# -- the protocol ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_describes_itself(name: str) -> None:
    backend = filled(name)
    cls = BACKEND_CLASSES[name]
    assert isinstance(backend, Backend) and type(backend) is cls
    assert backend.name == name and backend.exact == (name in ("flat", "mih"))
    assert backend.bits == 64 and len(backend) == 600
    assert type(make_backend(name, 64, **backend.params)) is cls
    meta, sections = backend.to_sections()
    assert meta["kind"] == cls.__name__ and BACKEND_KINDS[meta["kind"]] is cls
    assert "meta" not in sections and all(len(s) <= 16 for s in sections)


@pytest.mark.parametrize("name", BACKENDS)
def test_sections_round_trip_through_the_class_and_the_registry(name: str) -> None:
    backend = filled(name)
    meta, sections = backend.to_sections()
    for copy in (
        BACKEND_CLASSES[name].from_sections(meta, sections, "here"),
        backend_from_sections(meta, sections, "here"),
    ):
        assert type(copy) is type(backend) and copy.params == backend.params
        assert answers(copy) == answers(backend)


@pytest.mark.parametrize("name", BACKENDS)
def test_range_search_validated_is_range_search_without_the_checks(name: str) -> None:
    backend = filled(name)
    queries = hm.datasets.flip_bits(hm.datasets.random_codes(600, 64, seed=3)[:20], 3)
    fast = backend.range_search_validated(queries, 6, 1)
    assert isinstance(fast, hm.RangeSearchResult)
    for got, expected in zip(fast, backend.range_search(queries, 6, threads=1), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_sections_of_another_kind_are_refused() -> None:
    meta, sections = filled("flat").to_sections()
    with pytest.raises(hm.IndexFormatError, match="here: 'meta' does not describe a MIHIndex"):
        hm.MIHIndex.from_sections(meta, sections, "here")
    with pytest.raises(hm.IndexFormatError, match="here: 'meta' does not describe a known"):
        backend_from_sections({**meta, "kind": "Nope"}, sections, "here")
    meta, sections = filled("faiss-ivf").to_sections()
    with pytest.raises(hm.IndexFormatError, match=r"here: .*faiss-ivf takes"):
        backend_from_sections({**meta, "params": {"M": 3}}, sections, "here")
    with pytest.raises(hm.IndexFormatError, match=r"here: .*not a serialized faiss"):
        backend_from_sections(meta, {"faiss": b"junk"}, "here")
    with pytest.raises(hm.IndexFormatError, match=r"here: .*sections"):
        backend_from_sections(meta, {}, "here")


# -- the factory -------------------------------------------------------------------------------


@pytest.mark.parametrize(("bits", "radius"), [(256, 31), (64, 10), (256, 8)])
@pytest.mark.parametrize("n", [0, 2_000, 10_000_000])
def test_auto_follows_plan_index(n: int, bits: int, radius: int) -> None:
    backend = make_backend("auto", bits, max_distance=radius, n=n)
    plan = hm.plan_index(n, bits, max_distance=radius)
    assert type(backend).__name__ == plan.kind
    if isinstance(backend, hm.MIHIndex):
        assert backend.params == {"max_distance": radius, "substrings": None}


def test_max_distance_configures_mih_and_is_checked_for_all() -> None:
    assert make_backend("mih", 64, max_distance=6).params["max_distance"] == 6
    assert make_backend("auto", 64).params == {} or make_backend("auto", 64).name == "mih"
    for name in BACKENDS:
        assert make_backend(name, 64, max_distance=10, n=5).name == name
        with pytest.raises(hm.InvalidArgument, match="max_distance"):
            make_backend(name, 64, max_distance=65)
    with pytest.raises(hm.InvalidArgument, match="name: expected one of flat"):
        make_backend("exact", 64)


# -- pickling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BACKENDS)
def test_pickles_are_the_saved_sections(name: str, tmp_path: Path) -> None:
    backend = filled(name, bits=256, n=3000)
    data = pickle.dumps(backend, protocol=pickle.HIGHEST_PROTOCOL)
    copy = pickle.loads(data)
    assert type(copy) is type(backend) and copy.params == backend.params
    assert answers(copy) == answers(backend)
    hm.save(backend, tmp_path / "b.hm")
    size = (tmp_path / "b.hm").stat().st_size
    assert abs(len(data) - size) < 0.05 * size + 2048, (len(data), size)


def test_an_unpickled_mih_index_borrows_its_tables() -> None:
    index = filled("mih", bits=256, n=20_000)
    copy = pickle.loads(pickle.dumps(index))
    assert copy.substrings == index.substrings > 0
    # A rebuild would allocate tables; the copy reads the unpickled arrays in place.
    assert copy.memory_bytes() < index.memory_bytes() // 10
    assert answers(copy) == answers(index)
    copy.add(hm.datasets.random_codes(5, 256, seed=11))  # copies on write, then works as usual
    assert len(copy) == len(index) + 5


def test_a_pickled_index_answers_the_same_in_a_spawned_worker() -> None:
    indexes = [filled("mih", bits=256, n=5000), filled("flat"), filled("faiss-multihash")]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for index in indexes:
            queries = hm.datasets.flip_bits(
                hm.datasets.random_codes(600, index.bits, seed=3)[:10], 4
            )
            remote = pool.submit(index.range_search, queries, index.bits // 8).result()
            local = index.range_search(queries, index.bits // 8)
            for got, expected in zip(remote, local, strict=True):
                np.testing.assert_array_equal(got, expected)


# -- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAISS)
def test_faiss_backends_save_and_load(name: str, tmp_path: Path) -> None:
    backend = filled(name)
    hm.save(backend, tmp_path / "f.hm")
    for options in ({}, {"mmap": True, "verify": False}):
        loaded = hm.load(tmp_path / "f.hm", **options)
        assert type(loaded) is type(backend) and answers(loaded) == answers(backend)


def test_a_damaged_faiss_section_is_caught_even_without_verify(tmp_path: Path) -> None:
    backend = make_backend("faiss-multihash", 64)
    backend.add(hm.datasets.random_codes(150_000, 64))  # a section over the 1 MiB always checked
    path = tmp_path / "f.hm"
    hm.save(backend, path)
    sections = hio.read_container(path)
    assert len(sections["faiss"]) > 1 << 20
    data = bytearray(path.read_bytes())
    data[-4096] ^= 0x40
    path.write_bytes(data)
    with pytest.raises(hm.ChecksumError, match="'faiss'"):
        hm.load(path, mmap=True, verify=False)


def test_load_reads_every_kind_without_importing_by_name(tmp_path: Path) -> None:
    import subprocess
    import sys

    assert set(BACKEND_KINDS) <= set(hio._BUILTIN_KINDS)
    assert hio._REGISTERED["HashList"].loader == hm.HashList._from_sections
    with pytest.raises(hm.InvalidArgument, match="built in"):
        hio.register_kind("FaissIVF", lambda meta, sections, where: None)
    hl = hm.HashList("phash")
    hl.add(["00000000000000ff"], keys=["k"])
    hl.save(tmp_path / "list.hm")
    code = "import hashmatch.io as hio, sys; print(type(hio.load(sys.argv[1])).__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "list.hm")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "HashList"  # (editable builds log first)


def test_saved_files_get_the_usual_permissions(umask: int, tmp_path: Path) -> None:
    path = tmp_path / "x.hm"
    hm.save(filled("flat"), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask == 0o640
    os.chmod(path, 0o604)
    hm.save(filled("mih"), path)  # a refresh keeps what the operator chose
    assert stat.S_IMODE(path.stat().st_mode) == 0o604
    assert isinstance(hm.load(path), hm.MIHIndex)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.hm"]


def test_a_save_into_a_missing_directory_names_the_path_given(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "x.hm"
    with pytest.raises(FileNotFoundError) as error:
        hm.save(filled("flat"), path)
    assert error.value.filename == str(path)
    assert ".tmp" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="missing"):
        hio.write_container(path, {"meta": b"{}"})


def test_container_bytes_are_unchanged_by_the_writer(tmp_path: Path) -> None:
    """write_container lays sections out at 64-byte offsets through seeks: nothing between them
    but zeros, the file a whole number of blocks."""
    payloads = {"meta": b'{"kind": "x"}', "a": os.urandom(100), "b": b"", "c": os.urandom(64)}
    hio.write_container(tmp_path / "x.hm", payloads)
    data = (tmp_path / "x.hm").read_bytes()
    assert len(data) % 64 == 0
    sections = hio.read_container(tmp_path / "x.hm")
    assert {k: bytes(v) for k, v in sections.items()} == payloads
    assert zlib.crc32(data) == zlib.crc32((tmp_path / "x.hm").read_bytes())
