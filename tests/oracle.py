"""Brute-force numpy reference for every exact search path."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Codes = npt.NDArray[np.uint8]


def distances(a: Codes, b: Codes) -> npt.NDArray[np.int64]:
    """(len(a), len(b)) Hamming distances, computed in row chunks to bound memory."""
    out = np.empty((len(a), len(b)), dtype=np.int64)
    step = max(1, 2_000_000 // max(1, len(b) * a.shape[1]))
    for i in range(0, len(a), step):
        out[i : i + step] = np.bitwise_count(a[i : i + step, None, :] ^ b[None, :, :]).sum(-1)
    return out


def knn(
    db: Codes, ids: npt.NDArray[np.int64], queries: Codes, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours in (distance, id) order."""
    kk = min(k, len(db))
    full = distances(queries, db)
    out_d = np.empty((len(queries), kk), dtype=np.int64)
    out_i = np.empty((len(queries), kk), dtype=np.int64)
    for q in range(len(queries)):
        order = np.lexsort((ids, full[q]))[:kk]
        out_d[q], out_i[q] = full[q][order], ids[order]
    return out_d, out_i


def range_search(
    db: Codes, ids: npt.NDArray[np.int64], queries: Codes, r: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every stored hash with distance <= r, CSR, sorted by (distance, id)."""
    full = distances(queries, db)
    lims, out_d, out_i = [0], [], []
    for q in range(len(queries)):
        hit = np.flatnonzero(full[q] <= r)
        order = hit[np.lexsort((ids[hit], full[q][hit]))]
        out_d.append(full[q][order])
        out_i.append(ids[order])
        lims.append(lims[-1] + len(order))
    cat = lambda parts: np.concatenate(parts) if parts else np.empty(0, np.int64)  # noqa: E731
    return np.array(lims), cat(out_d), cat(out_i)


def random_db(rng: np.random.Generator, n: int, nbytes: int, duplicates: int = 0) -> Codes:
    """Random codes with `duplicates` rows copied from earlier rows (ties to break)."""
    db = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    if duplicates and n > 1:
        src = rng.integers(0, n, duplicates)
        dst = rng.integers(0, n, duplicates)
        db[dst] = db[src]
    return db


def variant_distances(
    db: Codes, stacks: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(nq, n) smallest distance over each stack's variants, and the first variant reaching it."""
    nq, nv, nbytes = stacks.shape
    full = distances(stacks.reshape(nq * nv, nbytes), db).reshape(nq, nv, len(db))
    return full.min(axis=1), full.argmin(axis=1)  # argmin: the first variant on ties


def variant_knn(
    db: Codes, ids: npt.NDArray[np.int64], stacks: npt.NDArray[np.uint8], k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact kNN of variant stacks by their best variant, in (distance, id) order."""
    best, first = variant_distances(db, stacks)
    kk = min(k, len(db))
    out = [np.empty((len(stacks), kk), dtype=np.int64) for _ in range(3)]
    for q in range(len(stacks)):
        order = np.lexsort((ids, best[q]))[:kk]
        out[0][q], out[1][q], out[2][q] = best[q][order], ids[order], first[q][order]
    return out[0], out[1], out[2]


def variant_range_search(
    db: Codes, ids: npt.NDArray[np.int64], stacks: npt.NDArray[np.uint8], r: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every stored hash within r of a stack's best variant, CSR, sorted by (distance, id)."""
    best, first = variant_distances(db, stacks)
    lims, parts = [0], ([], [], [])
    for q in range(len(stacks)):
        hit = np.flatnonzero(best[q] <= r)
        order = hit[np.lexsort((ids[hit], best[q][hit]))]
        for part, values in zip(parts, (best[q], ids, first[q]), strict=True):
            part.append(values[order])
        lims.append(lims[-1] + len(order))
    cat = lambda p: np.concatenate(p) if p else np.empty(0, np.int64)  # noqa: E731
    return np.array(lims), cat(parts[0]), cat(parts[1]), cat(parts[2])
