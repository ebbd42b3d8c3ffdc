# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The thin typed boundary between Python and the C++ core.

Callers (the pure-Python modules of this package) have already validated and normalised every
argument: arrays arrive C-contiguous with the right dtype and width. Each function here only
allocates outputs and makes one C++ call with the GIL released. Long calls poll for signals so
Ctrl-C interrupts them.
"""
from libc.stddef cimport size_t
from libc.string cimport memcpy
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t
from libcpp cimport bool as cbool
from libcpp.string cimport string
from libcpp.vector cimport vector

import numpy as np

from hashmatch.errors import InvalidArgument


cdef extern from "_bridge.h":
    int hm_translate_exception()
    int hm_poll_signals(void*) noexcept nogil
    void hm_set_invalid_argument(object)

cdef extern from "hashmatch/cpu.h" namespace "hashmatch":
    cdef struct CpuFeatures:
        cbool popcnt
        cbool avx2
        cbool avx512_vpopcntdq
        cbool neon
    const CpuFeatures& c_cpu_features "hashmatch::cpu_features"() noexcept

cdef extern from "hashmatch/kernels/kernels.h" namespace "hashmatch::kernels":
    cdef struct KernelTable:
        const char* name

cdef extern from "hashmatch/dispatch.h" namespace "hashmatch":
    const KernelTable& c_active_kernels "hashmatch::active_kernels"() noexcept
    vector[string] c_available_kernels "hashmatch::available_kernels"() except +hm_translate_exception
    void c_set_kernel "hashmatch::set_kernel"(const string&) except +hm_translate_exception

cdef extern from "hashmatch/thread_pool.h" namespace "hashmatch":
    cdef struct Interrupt:
        int (*poll)(void*) noexcept nogil
        void* ctx

cdef extern from "hashmatch/distance.h" namespace "hashmatch":
    void c_hamming_rows "hashmatch::hamming_rows"(
        const uint8_t*, const uint8_t*, size_t, size_t, uint16_t*, size_t, const Interrupt&
    ) except +hm_translate_exception nogil
    void c_cdist "hashmatch::cdist"(
        const uint8_t*, size_t, const uint8_t*, size_t, size_t, uint16_t*, size_t, const Interrupt&
    ) except +hm_translate_exception nogil

cdef extern from "hashmatch/exact_index.h" namespace "hashmatch":
    cdef cppclass RangeResults:
        RangeResults(size_t) except +hm_translate_exception
        size_t total()
        void write(int64_t*, int32_t*, int64_t*)

    cdef cppclass KnnResults:
        size_t k
        vector[int32_t] distances
        vector[int64_t] ids

    cdef cppclass ExactIndex:
        size_t bits()
        size_t size() except +hm_translate_exception nogil
        int64_t next_id() except +hm_translate_exception nogil
        size_t memory_bytes() except +hm_translate_exception nogil
        size_t copy_out(size_t, int64_t*, uint8_t*) except +hm_translate_exception nogil
        void add(const uint8_t*, size_t, const int64_t*) except +hm_translate_exception nogil
        void search(const uint8_t*, size_t, size_t, KnnResults&, size_t,
                    const Interrupt&) except +hm_translate_exception nogil
        void range_search(const uint8_t*, size_t, uint32_t, RangeResults&, size_t,
                          const Interrupt&) except +hm_translate_exception nogil

cdef extern from "hashmatch/flat_index.h" namespace "hashmatch":
    cdef cppclass FlatIndex(ExactIndex):
        FlatIndex(size_t) except +hm_translate_exception

cdef extern from "hashmatch/mih_index.h" namespace "hashmatch":
    cdef cppclass MIHIndex(ExactIndex):
        MIHIndex(size_t, size_t, uint32_t) except +hm_translate_exception
        size_t remove(const int64_t*, size_t) except +hm_translate_exception nogil
        size_t substrings() except +hm_translate_exception nogil
    size_t c_choose_substrings "hashmatch::choose_substrings"(size_t, size_t, uint32_t) noexcept
    cdef struct MihCost:
        double probes
        double candidates
        double nanoseconds
        double flat_nanoseconds
    MihCost c_mih_cost "hashmatch::mih_cost"(size_t, size_t, size_t, uint32_t) noexcept


hm_set_invalid_argument(InvalidArgument)


cdef Interrupt _interrupt() noexcept:
    cdef Interrupt it
    it.poll = hm_poll_signals  # called by the C++ thread pool from this thread every ~20 ms
    it.ctx = NULL
    return it


cdef inline const uint8_t* _rows(const uint8_t[:, ::1] a) noexcept nogil:
    return &a[0, 0] if a.shape[0] > 0 else NULL


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


def mih_cost(size_t bits, size_t substrings, size_t n, uint32_t radius):
    cdef MihCost c = c_mih_cost(bits, substrings, n, radius)
    return c.probes, c.candidates, c.nanoseconds, c.flat_nanoseconds


cdef class IndexCore:
    """Owner of a C++ exact index. Use hashmatch.FlatIndex / MIHIndex, which validate arguments."""
    cdef ExactIndex* index
    cdef MIHIndex* mih  # the same object when it is an MIHIndex, else NULL

    def __cinit__(self, str kind, size_t bits, size_t substrings=0, uint32_t max_distance=0):
        if kind == "flat":
            self.index = new FlatIndex(bits)
        elif kind == "mih":
            self.mih = new MIHIndex(bits, substrings, max_distance)
            self.index = self.mih
        else:
            raise ValueError(f"unknown index kind {kind!r}")

    def __dealloc__(self):
        del self.index

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
        distances = np.empty((nq, results.k), dtype=np.int32)
        ids = np.empty((nq, results.k), dtype=np.int64)
        cdef int32_t[:, ::1] d = distances
        cdef int64_t[:, ::1] i = ids
        if nq and results.k:
            memcpy(&d[0, 0], results.distances.data(), nq * results.k * sizeof(int32_t))
            memcpy(&i[0, 0], results.ids.data(), nq * results.k * sizeof(int64_t))
        return distances, ids

    def range_search(self, const uint8_t[:, ::1] queries, uint32_t max_distance, size_t nthreads):
        cdef size_t nq = queries.shape[0]
        cdef RangeResults* results = new RangeResults(nq)
        cdef Interrupt it = _interrupt()
        try:
            with nogil:
                self.index.range_search(_rows(queries), nq, max_distance, results[0], nthreads, it)
            total = results.total()
            lims = np.empty(nq + 1, dtype=np.int64)
            distances = np.empty(total, dtype=np.int32)
            ids = np.empty(total, dtype=np.int64)
            _write_range(results, lims, distances, ids)
        finally:
            del results
        return lims, distances, ids


cdef void _write_range(RangeResults* r, int64_t[::1] lims, int32_t[::1] d, int64_t[::1] ids) noexcept:
    cdef int32_t dummy_d = 0
    cdef int64_t dummy_i = 0
    r.write(&lims[0], &d[0] if d.shape[0] else &dummy_d, &ids[0] if ids.shape[0] else &dummy_i)
