# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The thin typed boundary between Python and the C++ core.

Callers (the pure-Python modules of this package) have already validated and normalised every
argument: arrays arrive C-contiguous with the right dtype and width. Each function here only
allocates outputs and makes one C++ call with the GIL released. Long calls poll for signals so
Ctrl-C interrupts them. The C++ declarations are in _core.pxd.

An index loaded from a file borrows the file's bytes (``IndexCore(..., saved=arrays)``): the
C++ object holds raw pointers into the arrays, and the IndexCore holds the arrays themselves
(``owner``) so that the memory outlives the C++ object. Cython runs ``__dealloc__`` (which
deletes the C++ object) before it clears ``owner``, and ``no_gc_clear`` keeps the garbage
collector from clearing ``owner`` first.
"""
cimport cython
from cpython.buffer cimport PyBuffer_FillInfo
from libc.stddef cimport size_t
from libc.string cimport memcpy
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.vector cimport vector

import numpy as np

from hashmatch.errors import InvalidArgument


hm_set_invalid_argument(InvalidArgument)


cdef Interrupt _interrupt() noexcept:
    cdef Interrupt it
    it.poll = hm_poll_signals  # called by parallel_for (parallel_for.h) from this thread every ~20 ms
    it.ctx = NULL
    return it


cdef inline const uint8_t* _rows(const uint8_t[:, ::1] a) noexcept nogil:
    return &a[0, 0] if a.shape[0] > 0 else NULL


cdef inline const uint8_t* _stacks(const uint8_t[:, :, ::1] a) noexcept nogil:
    return &a[0, 0, 0] if a.shape[0] > 0 and a.shape[1] > 0 else NULL


ctypedef fused element:
    uint8_t
    uint16_t
    uint32_t
    uint64_t
    int32_t
    int64_t


# First element of a borrowed array, NULL when it is empty (its pointer is then meaningless).
cdef inline const element* _first(const element[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] > 0 else NULL


def cpu_features():
    """Features of this CPU and the kernel in use (see hashmatch.cpu_features)."""
    cdef const CpuFeatures* f = &c_cpu_features()
    return {
        "popcnt": f.popcnt,
        "avx2": f.avx2,
        "avx512_vpopcntdq": f.avx512_vpopcntdq,
        "neon": f.neon,
        "kernel": c_active_kernels().name.decode(),
        "available_kernels": available_kernels(),
    }


def available_kernels():
    return [name.decode() for name in c_available_kernels()]


def active_kernel():
    return c_active_kernels().name.decode()


def set_kernel(str name):
    c_set_kernel(name.encode())


def hamming_rows(const uint8_t[:, ::1] a, const uint8_t[:, ::1] b, size_t nthreads):
    cdef size_t n = a.shape[0]
    out = np.empty(n, dtype=np.uint16)
    cdef uint16_t[::1] o = out
    cdef Interrupt it = _interrupt()
    if n:
        with nogil:
            c_hamming_rows(&a[0, 0], &b[0, 0], n, a.shape[1], &o[0], nthreads, it)
    return out


def cdist(const uint8_t[:, ::1] a, const uint8_t[:, ::1] b, size_t nthreads):
    cdef size_t na = a.shape[0], nb = b.shape[0]
    out = np.empty((na, nb), dtype=np.uint16)
    cdef uint16_t[:, ::1] o = out
    cdef Interrupt it = _interrupt()
    if na and nb:
        with nogil:
            c_cdist(&a[0, 0], na, &b[0, 0], nb, a.shape[1], &o[0, 0], nthreads, it)
    return out


def choose_substrings(size_t bits, size_t n, uint32_t radius):
    return c_choose_substrings(bits, n, radius)


def mih_cost(size_t bits, size_t substrings, size_t n, uint32_t radius, size_t variants=1):
    cdef MihCost c = c_mih_cost(bits, substrings, n, radius, variants)
    return c.probes, c.candidates, c.nanoseconds, c.flat_nanoseconds


cdef class _Exported:
    """Arrays the C++ core copied out for saving, kept alive by the numpy arrays that view them."""
    cdef FlatArrays flat
    cdef MihArrays mih


cdef class _Span:
    """A read-only byte buffer over part of an owner's memory (numpy views it without a copy)."""
    cdef object owner
    cdef const void* data
    cdef size_t nbytes

    def __getbuffer__(self, Py_buffer* view, int flags):
        PyBuffer_FillInfo(view, self, <void*>self.data, self.nbytes, 1, flags)


cdef object _view(object owner, const void* data, size_t nbytes, dtype):
    cdef _Span span = _Span.__new__(_Span)
    span.owner, span.data, span.nbytes = owner, data, nbytes
    return np.frombuffer(span, dtype=dtype)


@cython.no_gc_clear  # the garbage collector must never drop `owner` before __dealloc__ runs
cdef class IndexCore:
    """Owner of a C++ exact index. Use hashmatch.FlatIndex / MIHIndex, which validate arguments.

    ``saved``: arrays of a saved index to borrow instead of starting empty (see
    hashmatch.io.index_from_sections): for "flat" a dict with n, next_id, tiles (uint64) and ids
    (int64); for "mih" n, next_id, tables (a list of (lo, len, shift)), rows (uint64), ids (int64), starts
    (uint32), residual (uint8) and slot (uint32). They are validated by the C++ constructor
    (InvalidArgument on any inconsistency) and kept alive as long as this object. For "mih",
    ``check_rows=False`` skips checking the tables against the rows (see MIHIndex's borrowing
    constructor: memory safety is kept, exact answers are not guaranteed).
    """
    cdef ExactIndex* index
    cdef FlatIndex* flat  # the same object when it is a FlatIndex, else NULL
    cdef MIHIndex* mih  # the same object when it is an MIHIndex, else NULL
    cdef object owner  # the borrowed arrays, if any; cleared after __dealloc__

    def __cinit__(self, str kind, size_t bits, size_t substrings=0, uint32_t max_distance=0,
                  dict saved=None, bint check_rows=True):
        if kind not in ("flat", "mih"):
            raise ValueError(f"unknown index kind {kind!r}")
        if saved is not None:
            self.owner = tuple(saved.values())
            if kind == "flat":
                self._borrow_flat(bits, saved["n"], saved["next_id"], saved["tiles"], saved["ids"])
            else:
                self._borrow_mih(bits, substrings, max_distance, saved["n"], saved["next_id"],
                                 saved["tables"],
                                 saved["rows"], saved["ids"], saved["starts"], saved["residual"],
                                 saved["slot"], check_rows)
        elif kind == "flat":
            self.flat = new FlatIndex(bits)
        else:
            self.mih = new MIHIndex(bits, substrings, max_distance)
        self.index = self.flat if self.flat != NULL else <ExactIndex*>self.mih

    cdef _borrow_flat(self, size_t bits, size_t n, int64_t next_id, const uint64_t[::1] tiles,
                      const int64_t[::1] ids):
        with nogil:
            self.flat = new FlatIndex(bits, n, _first(tiles), tiles.shape[0], _first(ids), ids.shape[0],
                                      next_id)

    cdef _borrow_mih(self, size_t bits, size_t substrings, uint32_t max_distance, size_t n,
                     int64_t next_id, list tables, const uint64_t[::1] rows, const int64_t[::1] ids,
                     const uint32_t[::1] starts, const uint8_t[::1] residual,
                     const uint32_t[::1] slot, cbool check_rows):
        cdef MihArraysView v
        cdef MihTableLayout layout
        v.n = n
        v.next_id = next_id
        for layout.lo, layout.len, layout.shift in tables:  # table descriptions, not data
            v.tables.push_back(layout)
        v.rows, v.rows_size = _first(rows), rows.shape[0]
        v.ids, v.ids_size = _first(ids), ids.shape[0]
        v.starts, v.starts_size = _first(starts), starts.shape[0]
        v.residual, v.residual_size = _first(residual), residual.shape[0]
        v.slot, v.slot_size = _first(slot), slot.shape[0]
        with nogil:
            self.mih = new MIHIndex(bits, substrings, max_distance, v, check_rows)

    def __dealloc__(self):
        del self.index

    def export(self):
        """Copies of the arrays for saving (an MIHIndex is compacted first), as in ``saved``."""
        cdef _Exported e = _Exported.__new__(_Exported)
        if self.flat != NULL:
            with nogil:
                self.flat.export_arrays(e.flat)
            return {
                "n": e.flat.n,
                "next_id": e.flat.next_id,
                "tiles": _view(e, e.flat.tiles.data(), e.flat.tiles.size() * 8, np.uint64),
                "ids": _view(e, e.flat.ids.data(), e.flat.ids.size() * 8, np.int64),
            }
        with nogil:
            self.mih.export_arrays(e.mih)
        return {
            "n": e.mih.n,
            "next_id": e.mih.next_id,
            "tables": [(t.lo, t.len, t.shift) for t in e.mih.tables],
            "rows": _view(e, e.mih.rows.data(), e.mih.rows.size() * 8, np.uint64),
            "ids": _view(e, e.mih.ids.data(), e.mih.ids.size() * 8, np.int64),
            "starts": _view(e, e.mih.starts.data(), e.mih.starts.size() * 4, np.uint32),
            "residual": _view(e, e.mih.residual.data(), e.mih.residual.size(), np.uint8),
            "slot": _view(e, e.mih.slot.data(), e.mih.slot.size() * 4, np.uint32),
        }

    def compact(self):
        if self.mih == NULL:
            raise TypeError("this index does not support compact")
        with nogil:
            self.mih.compact()

    @property
    def bits(self):
        return self.index.bits()

    # Every call that takes the index's lock releases the GIL first: a search holding the lock
    # takes the GIL to poll for Ctrl-C, and a waiting writer may block new readers.
    @property
    def ntotal(self):
        cdef size_t n
        with nogil:
            n = self.index.size()
        return n

    @property
    def next_id(self):
        cdef int64_t n
        with nogil:
            n = self.index.next_id()
        return n

    @property
    def substrings(self):
        cdef size_t m = 0
        if self.mih != NULL:
            with nogil:
                m = self.mih.substrings()
        return m

    def memory_bytes(self):
        cdef size_t n
        with nogil:
            n = self.index.memory_bytes()
        return n

    def contents(self):
        """(ids, codes) copies of everything stored, in insertion order."""
        cdef size_t n, nbytes = self.index.bits() // 8
        with nogil:
            n = self.index.size()
        ids = np.empty(n, dtype=np.int64)
        codes = np.empty((n, nbytes), dtype=np.uint8)
        cdef int64_t[::1] i = ids
        cdef uint8_t[:, ::1] c = codes
        if n:
            with nogil:
                n = self.index.copy_out(n, &i[0], &c[0, 0])
        return ids[:n], codes[:n]

    def add(self, const uint8_t[:, ::1] codes, const int64_t[::1] ids):
        cdef size_t n = codes.shape[0]
        if n:
            with nogil:
                self.index.add(&codes[0, 0], n, &ids[0])

    def remove(self, const int64_t[::1] ids):
        cdef size_t n = ids.shape[0], removed = 0
        if self.mih == NULL:
            raise TypeError("this index does not support remove")
        if n:
            with nogil:
                removed = self.mih.remove(&ids[0], n)
        return removed

    def search(self, const uint8_t[:, ::1] queries, size_t k, size_t nthreads):
        cdef size_t nq = queries.shape[0]
        cdef KnnResults results
        cdef Interrupt it = _interrupt()
        with nogil:
            self.index.search(_rows(queries), nq, k, results, nthreads, it)
        return _knn_arrays(results, nq, False)

    def search_variants(self, const uint8_t[:, :, ::1] queries, size_t k, size_t nthreads):
        cdef size_t nq = queries.shape[0], nv = queries.shape[1]
        cdef KnnResults results
        cdef Interrupt it = _interrupt()
        with nogil:
            self.index.search_variants(_stacks(queries), nq, nv, k, results, nthreads, it)
        return _knn_arrays(results, nq, True)

    def range_search(self, const uint8_t[:, ::1] queries, uint32_t max_distance, size_t nthreads):
        cdef size_t nq = queries.shape[0]
        cdef RangeResults* results = new RangeResults(nq)
        cdef Interrupt it = _interrupt()
        try:
            with nogil:
                self.index.range_search(_rows(queries), nq, max_distance, results[0], nthreads, it)
            return _range_arrays(results, nq, False)
        finally:
            del results

    def range_search_variants(self, const uint8_t[:, :, ::1] queries, uint32_t max_distance, size_t nthreads):
        cdef size_t nq = queries.shape[0], nv = queries.shape[1]
        cdef RangeResults* results = new RangeResults(nq)
        cdef Interrupt it = _interrupt()
        try:
            with nogil:
                self.index.range_search_variants(_stacks(queries), nq, nv, max_distance, results[0],
                                                 nthreads, it)
            return _range_arrays(results, nq, True)
        finally:
            del results


cdef tuple _knn_arrays(KnnResults& r, size_t nq, bint variants):
    """(distances, ids[, variants]) arrays of shape (nq, r.k), copied out of the results."""
    distances = np.empty((nq, r.k), dtype=np.int32)
    ids = np.empty((nq, r.k), dtype=np.int64)
    found = np.empty((nq, r.k), dtype=np.uint8)
    cdef int32_t[:, ::1] d = distances
    cdef int64_t[:, ::1] i = ids
    cdef uint8_t[:, ::1] v = found
    if nq and r.k:
        memcpy(&d[0, 0], r.distances.data(), nq * r.k * sizeof(int32_t))
        memcpy(&i[0, 0], r.ids.data(), nq * r.k * sizeof(int64_t))
        if variants:
            memcpy(&v[0, 0], r.variants.data(), nq * r.k)
    return (distances, ids, found) if variants else (distances, ids)


cdef tuple _range_arrays(RangeResults* r, size_t nq, bint variants):
    """CSR (lims, distances, ids[, variants]) arrays copied out of the results."""
    total = r.total()
    lims = np.empty(nq + 1, dtype=np.int64)
    distances = np.empty(total, dtype=np.int32)
    ids = np.empty(total, dtype=np.int64)
    found = np.empty(total, dtype=np.uint8)
    _write_range(r, lims, distances, ids, found, variants)
    return (lims, distances, ids, found) if variants else (lims, distances, ids)


cdef void _write_range(RangeResults* r, int64_t[::1] lims, int32_t[::1] d, int64_t[::1] ids,
                       uint8_t[::1] found, bint variants) noexcept:
    cdef int32_t dummy_d = 0
    cdef int64_t dummy_i = 0
    cdef uint8_t dummy_v = 0
    r.write(&lims[0], &d[0] if d.shape[0] else &dummy_d, &ids[0] if ids.shape[0] else &dummy_i,
            (&found[0] if found.shape[0] else &dummy_v) if variants else NULL)


# --- Joins ------------------------------------------------------------------------------------

cdef dict _plan_dict(JoinPlan plan):
    cdef size_t s
    return {
        "method": "brute-force" if plan.brute_force else "multi-index",
        "substrings": [
            (plan.substrings[s].lo, plan.substrings[s].len, plan.substrings[s].radius)
            for s in range(plan.substrings.size())
        ],
        "mih_seconds": plan.mih_seconds,
        "brute_seconds": plan.brute_seconds,
    }


cdef JoinPlan _make_plan(size_t bits, size_t na, size_t nb, uint32_t radius, cbool self_join,
                         long substrings, object differ) except *:
    cdef const double[::1] dv
    cdef const double* dp = NULL
    if differ is not None:
        dv = differ
        if <size_t>dv.shape[0] != bits:
            raise InvalidArgument(f"differ: expected {bits} probabilities, got {dv.shape[0]}")
        dp = &dv[0]
    if substrings < 0:
        return c_plan_join(bits, na, nb, radius, self_join, dp)
    return c_fixed_join_plan(bits, na, nb, radius, self_join, <size_t>substrings, dp)


def plan_join(size_t bits, size_t na, size_t nb, uint32_t radius, cbool self_join, long substrings=-1,
              differ=None):
    """The join plan as a dict; substrings < 0: the cost model's choice, 0: brute force.
    differ: per bit (word order), the chance it differs between two hashes (None: 1/2)."""
    return _plan_dict(_make_plan(bits, na, nb, radius, self_join, substrings, differ))


cdef class JoinCore:
    """A self-join of `a` (b is None) or a join of `a` with `b`, run in units (see join.h).
    Holds the input arrays, which the C++ join borrows."""

    cdef Join* join
    cdef object a
    cdef object b
    cdef dict _plan

    def __cinit__(self, const uint8_t[:, ::1] a, object b, uint32_t radius, long substrings=-1,
                  size_t unit_rows=0, object differ=None):
        cdef const uint8_t[:, ::1] bv
        cdef const uint8_t* pb = NULL
        cdef size_t nb = a.shape[0]
        cdef size_t nbytes = a.shape[1]
        if b is not None:
            bv = b
            pb = _rows(bv)
            nb = bv.shape[0]
            if pb == NULL:
                pb = <const uint8_t*>&nbytes  # an empty second set: any non-null pointer
        cdef JoinPlan plan = _make_plan(nbytes * 8, a.shape[0], nb, radius, b is None, substrings,
                                        differ)
        self._plan = _plan_dict(plan)
        self.a = a
        self.b = b
        with nogil:
            self.join = new Join(_rows(a), a.shape[0], pb, nb, nbytes, radius, plan, unit_rows)

    def __dealloc__(self):
        del self.join

    @property
    def units(self):
        return self.join.units()

    @property
    def plan(self):
        return dict(self._plan)

    def run(self, size_t begin, size_t end, size_t nthreads):
        """Pairs of units [begin, end) as (i uint32, j uint32, distance uint16) arrays."""
        cdef vector[PairBuffer] bufs
        cdef Interrupt it = _interrupt()
        with nogil:
            self.join.run(begin, end, nthreads, it, bufs)
        cdef size_t n = 0, at = 0, k, m
        for k in range(bufs.size()):
            n += bufs[k].size()
        i = np.empty(n, dtype=np.uint32)
        j = np.empty(n, dtype=np.uint32)
        d = np.empty(n, dtype=np.uint16)
        cdef uint32_t[::1] iv = i
        cdef uint32_t[::1] jv = j
        cdef uint16_t[::1] dv = d
        for k in range(bufs.size()):
            m = bufs[k].size()
            memcpy(&iv[at], bufs[k].i.data(), m * sizeof(uint32_t))
            memcpy(&jv[at], bufs[k].j.data(), m * sizeof(uint32_t))
            memcpy(&dv[at], bufs[k].d.data(), m * sizeof(uint16_t))
            at += m
        return i, j, d


cdef PairChunkView _chunk(object part) except *:
    cdef const uint32_t[::1] iv
    cdef const uint32_t[::1] jv
    cdef const uint16_t[::1] dv
    cdef PairChunkView view
    iv, jv, dv = part
    if jv.shape[0] != iv.shape[0] or dv.shape[0] != iv.shape[0]:
        raise InvalidArgument("pairs: chunk arrays of different lengths")
    view.n = iv.shape[0]
    view.i, view.j, view.d = _first(iv), _first(jv), _first(dv)
    return view


def merge_pairs(list parts, size_t ni, size_t nthreads):
    """Chunks (i uint32, j uint32, d uint16) from JoinCore.run as one list sorted by (i, j):
    (i int64, j int64, distance int32). Empties `parts` as it goes, so each chunk is freed
    (unless referenced elsewhere) as soon as it is merged."""
    cdef PairChunkView view
    cdef int64_t[::1] oi
    cdef int64_t[::1] oj
    cdef int32_t[::1] od
    cdef int64_t* pi = NULL
    cdef int64_t* pj = NULL
    cdef int32_t* pd = NULL
    cdef size_t total
    cdef PairMerger* merger = new PairMerger(ni)
    try:
        for part in parts:
            view = _chunk(part)
            with nogil:
                merger.count(view)
        total = merger.total()
        out_i = np.empty(total, dtype=np.int64)
        out_j = np.empty(total, dtype=np.int64)
        out_d = np.empty(total, dtype=np.int32)
        oi, oj, od = out_i, out_j, out_d
        if total:
            pi, pj, pd = &oi[0], &oj[0], &od[0]
        while parts:
            part = parts.pop()  # (no parts[-1]: this module is compiled without wraparound)
            view = _chunk(part)
            with nogil:
                merger.scatter(view, pi, pj)
            part = None
        with nogil:
            merger.finish(pj, pd, nthreads)
    finally:
        del merger
    return out_i, out_j, out_d


cdef size_t _edges(const int64_t[::1] i, const int64_t[::1] j, const int32_t[::1] d) except? 0:
    if j.shape[0] != i.shape[0] or d.shape[0] != i.shape[0]:
        raise InvalidArgument("pairs: i, j and distances of different lengths")
    return i.shape[0]


def connected_components(size_t n, const int64_t[::1] i, const int64_t[::1] j, const int32_t[::1] d,
                         int32_t max_distance):
    """(labels int64 numbered by smallest member, number of components) of the edges within
    max_distance."""
    cdef size_t m = _edges(i, j, d)
    labels = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] lv = labels
    cdef size_t count
    with nogil:
        count = c_connected_components(n, _first(i), _first(j), _first(d), m, max_distance,
                                       &lv[0] if n else NULL)
    return labels, count


def threshold_curve(size_t n, const int64_t[::1] i, const int64_t[::1] j, const int32_t[::1] d,
                    uint32_t max_distance):
    """Clusters, largest cluster and clustered rows for every threshold 0 .. max_distance."""
    cdef size_t m = _edges(i, j, d)
    clusters = np.empty(max_distance + 1, dtype=np.int64)
    largest = np.empty(max_distance + 1, dtype=np.int64)
    clustered = np.empty(max_distance + 1, dtype=np.int64)
    cdef int64_t[::1] cv = clusters
    cdef int64_t[::1] lv = largest
    cdef int64_t[::1] kv = clustered
    with nogil:
        c_threshold_curve(n, _first(i), _first(j), _first(d), m, max_distance, &cv[0], &lv[0], &kv[0])
    return clusters, largest, clustered


def medoids(const uint8_t[:, ::1] codes, const int64_t[::1] labels, size_t nclusters, size_t max_exact,
            size_t nthreads):
    """The medoid row of every cluster."""
    out = np.empty(nclusters, dtype=np.int64)
    cdef int64_t[::1] ov = out
    cdef Interrupt it = _interrupt()
    if nclusters:
        with nogil:
            c_medoids(_rows(codes), codes.shape[0], codes.shape[1], &labels[0], nclusters, max_exact,
                      &ov[0], nthreads, it)
    return out
