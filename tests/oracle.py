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
