# The C++ core's declarations for the Cython boundary (_core.pyx, which cimports this file
# implicitly): the headers under src/hashmatch, plus _bridge.h's exception and signal glue.
# Every call that can throw maps the exception through hm_translate_exception; calls that may
# run long are nogil and take an Interrupt, polled for Ctrl-C.
from libc.stddef cimport size_t
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.string cimport string
from libcpp.vector cimport vector


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

cdef extern from "hashmatch/parallel_for.h" namespace "hashmatch":
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
        void write(int64_t*, int32_t*, int64_t*, uint8_t*)

    cdef cppclass KnnResults:
        size_t k
        vector[int32_t] distances
        vector[int64_t] ids
        vector[uint8_t] variants

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
        void search_variants(const uint8_t*, size_t, size_t, size_t, KnnResults&, size_t,
                             const Interrupt&) except +hm_translate_exception nogil
        void range_search_variants(const uint8_t*, size_t, size_t, uint32_t, RangeResults&, size_t,
                                   const Interrupt&) except +hm_translate_exception nogil

cdef extern from "hashmatch/flat_index.h" namespace "hashmatch":
    cdef cppclass FlatArrays:
        size_t n
        int64_t next_id
        vector[uint64_t] tiles
        vector[int64_t] ids

    cdef cppclass FlatIndex(ExactIndex):
        FlatIndex(size_t) except +hm_translate_exception
        FlatIndex(size_t, size_t, const uint64_t*, size_t, const int64_t*, size_t, int64_t) \
            except +hm_translate_exception nogil
        void export_arrays(FlatArrays&) except +hm_translate_exception nogil

cdef extern from "hashmatch/mih_index.h" namespace "hashmatch":
    cdef cppclass MihTableLayout:
        uint32_t lo
        uint32_t len
        uint32_t shift

    cdef cppclass MihArrays:
        size_t n
        int64_t next_id
        vector[MihTableLayout] tables
        vector[uint64_t] rows
        vector[int64_t] ids
        vector[uint32_t] starts
        vector[uint8_t] residual
        vector[uint32_t] slot

    cdef cppclass MihArraysView:
        size_t n
        int64_t next_id
        vector[MihTableLayout] tables
        const uint64_t* rows
        size_t rows_size
        const int64_t* ids
        size_t ids_size
        const uint32_t* starts
        size_t starts_size
        const uint8_t* residual
        size_t residual_size
        const uint32_t* slot
        size_t slot_size

    cdef cppclass MIHIndex(ExactIndex):
        MIHIndex(size_t, size_t, uint32_t) except +hm_translate_exception
        MIHIndex(size_t, size_t, uint32_t, const MihArraysView&, cbool) except +hm_translate_exception nogil
        size_t remove(const int64_t*, size_t) except +hm_translate_exception nogil
        size_t substrings() except +hm_translate_exception nogil
        void compact() except +hm_translate_exception nogil
        void export_arrays(MihArrays&) except +hm_translate_exception nogil
    size_t c_choose_substrings "hashmatch::choose_substrings"(size_t, size_t, uint32_t) noexcept
    cdef struct MihCost:
        double probes
        double candidates
        double nanoseconds
        double flat_nanoseconds
    MihCost c_mih_cost "hashmatch::mih_cost"(size_t, size_t, size_t, uint32_t, size_t) noexcept

cdef extern from "hashmatch/join.h" namespace "hashmatch":
    cdef struct JoinSubstring:
        uint32_t lo
        uint32_t len
        uint32_t radius

    cdef cppclass JoinPlan:
        cbool brute_force
        vector[JoinSubstring] substrings
        double mih_seconds
        double brute_seconds

    JoinPlan c_plan_join "hashmatch::plan_join"(size_t, size_t, size_t, uint32_t, cbool, const double*) \
        except +hm_translate_exception
    JoinPlan c_fixed_join_plan "hashmatch::fixed_join_plan"(
        size_t, size_t, size_t, uint32_t, cbool, size_t, const double*) \
        except +hm_translate_exception

    cdef cppclass PairBuffer:
        vector[uint32_t] i
        vector[uint32_t] j
        vector[uint16_t] d
        size_t size()

    cdef cppclass Join:
        Join(const uint8_t*, size_t, const uint8_t*, size_t, size_t, uint32_t, const JoinPlan&, size_t) \
            except +hm_translate_exception nogil
        size_t units()
        void run(size_t, size_t, size_t, const Interrupt&, vector[PairBuffer]&) \
            except +hm_translate_exception nogil

    cdef struct PairChunkView:
        const uint32_t* i
        const uint32_t* j
        const uint16_t* d
        size_t n
    cdef cppclass PairMerger:
        PairMerger(size_t) except +hm_translate_exception
        void count(const PairChunkView&) except +hm_translate_exception nogil
        size_t total()
        void scatter(const PairChunkView&, int64_t*, int64_t*) except +hm_translate_exception nogil
        void finish(int64_t*, int32_t*, size_t) except +hm_translate_exception nogil

cdef extern from "hashmatch/clusters.h" namespace "hashmatch":
    size_t c_connected_components "hashmatch::connected_components"(
        size_t, const int64_t*, const int64_t*, const int32_t*, size_t, int32_t, int64_t*
    ) except +hm_translate_exception nogil
    void c_threshold_curve "hashmatch::threshold_curve"(
        size_t, const int64_t*, const int64_t*, const int32_t*, size_t, uint32_t, int64_t*, int64_t*, int64_t*
    ) except +hm_translate_exception nogil
    void c_medoids "hashmatch::medoids"(
        const uint8_t*, size_t, size_t, const int64_t*, size_t, size_t, int64_t*, size_t, const Interrupt&
    ) except +hm_translate_exception nogil
