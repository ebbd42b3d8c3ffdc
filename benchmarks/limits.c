/* This machine's limits for the hashmatch benchmarks; built and run by limits.py.
 *
 *   gcc -O2 -mavx2 -mpopcnt -pthread limits.c -o limits && ./limits 1 2
 *
 * Prints one line per measurement:
 *   bandwidth THREADS BYTES_PER_S        1 GiB streamed with AVX2 loads, split over THREADS
 *   popcount METHOD COMPARISONS_PER_S MATCHES
 *                                        XOR + popcount of L1-resident 256-bit codes against
 *                                        one query, one thread; MATCHES (distance <= 128) is a
 *                                        checksum that must be equal for every METHOD.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUFFER_BYTES (1ULL << 30)
#define MAX_THREADS 64
#define PASSES 5             /* best of, for every measurement */
#define CODES 512            /* 16 KiB of 256-bit codes: stays in L1 */
#define SCANS 200000         /* scans of the CODES per popcount pass, ~1e8 comparisons */
#define THRESHOLD 128        /* matches counted, about half of random pairs */

static volatile uint64_t sink; /* keeps the streamed data observable */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- memory read bandwidth ---- */

struct slice {
  const __m256i *begin;
  size_t count; /* vectors, a multiple of 4 */
  uint64_t checksum;
};

static void *stream(void *arg) {
  struct slice *s = arg;
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < s->count; i += 4) {
    a0 = _mm256_xor_si256(a0, _mm256_load_si256(s->begin + i));
    a1 = _mm256_xor_si256(a1, _mm256_load_si256(s->begin + i + 1));
    a2 = _mm256_xor_si256(a2, _mm256_load_si256(s->begin + i + 2));
    a3 = _mm256_xor_si256(a3, _mm256_load_si256(s->begin + i + 3));
  }
  const __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  s->checksum = (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
  return NULL;
}

/* Best bytes/s over PASSES reads of the whole buffer by `threads` threads. */
static double bandwidth(const __m256i *buffer, int threads) {
  const size_t per_thread = BUFFER_BYTES / sizeof(__m256i) / (size_t)threads / 4 * 4;
  double best = 0.0;
  for (int pass = 0; pass < PASSES; pass++) {
    pthread_t ids[MAX_THREADS];
    struct slice slices[MAX_THREADS];
    const double start = now();
    for (int t = 0; t < threads; t++) {
      slices[t] = (struct slice){buffer + (size_t)t * per_thread, per_thread, 0};
      if (pthread_create(&ids[t], NULL, stream, &slices[t]) != 0) {
        perror("pthread_create");
        exit(1);
      }
    }
    for (int t = 0; t < threads; t++) {
      pthread_join(ids[t], NULL);
      sink ^= slices[t].checksum;
    }
    const double rate = (double)(per_thread * (size_t)threads * sizeof(__m256i)) / (now() - start);
    best = rate > best ? rate : best;
  }
  return best;
}

/* ---- XOR + popcount ceiling ---- */

/* The empty asm makes the compiler assume the query changed, so no scan is hoisted or merged. */
static uint64_t scan_scalar(const uint64_t *codes, const uint64_t *query) {
  uint64_t matches = 0;
  uint64_t q0 = query[0], q1 = query[1], q2 = query[2], q3 = query[3];
  for (int scan = 0; scan < SCANS; scan++) {
    __asm__ volatile("" : "+r"(q0), "+r"(q1), "+r"(q2), "+r"(q3));
    /* Four codes a step, interleaved by word like scan_avx2: code j's word w is c[4 * w + j]. */
    for (const uint64_t *c = codes; c < codes + 4 * CODES; c += 16) {
      for (int j = 0; j < 4; j++) {
        const uint64_t d = (uint64_t)(_mm_popcnt_u64(c[j] ^ q0) + _mm_popcnt_u64(c[4 + j] ^ q1) +
                                      _mm_popcnt_u64(c[8 + j] ^ q2) + _mm_popcnt_u64(c[12 + j] ^ q3));
        matches += d <= THRESHOLD;
      }
    }
  }
  return matches;
}

/* Per-byte bit counts of x ^ q (Mula: two nibble lookups). */
static inline __m256i byte_counts(__m256i x, __m256i q) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                       1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i v = _mm256_xor_si256(x, q);
  const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, nibble));
  const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
  return _mm256_add_epi8(lo, hi);
}

/* The cheapest known AVX2 form: codes interleaved by word (four codes' word w side by side),
 * so byte counts of the 4 words add up vertically and one vpsadbw yields four distances; no
 * cross-lane work. The data is read as if interleaved: the count is the same work. */
static uint64_t scan_avx2(const uint64_t *codes, const uint64_t *query) {
  uint64_t matches = 0;
  __m256i q0 = _mm256_set1_epi64x((long long)query[0]), q1 = _mm256_set1_epi64x((long long)query[1]);
  __m256i q2 = _mm256_set1_epi64x((long long)query[2]), q3 = _mm256_set1_epi64x((long long)query[3]);
  const __m256i limit = _mm256_set1_epi64x(THRESHOLD + 1);
  for (int scan = 0; scan < SCANS; scan++) {
    __asm__ volatile("" : "+x"(q0), "+x"(q1), "+x"(q2), "+x"(q3));
    __m256i hits = _mm256_setzero_si256();
    for (const __m256i *c = (const __m256i *)codes; c < (const __m256i *)codes + CODES; c += 4) {
      __m256i b = byte_counts(_mm256_load_si256(c), q0);
      b = _mm256_add_epi8(b, byte_counts(_mm256_load_si256(c + 1), q1));
      b = _mm256_add_epi8(b, byte_counts(_mm256_load_si256(c + 2), q2));
      b = _mm256_add_epi8(b, byte_counts(_mm256_load_si256(c + 3), q3));
      const __m256i d = _mm256_sad_epu8(b, _mm256_setzero_si256());
      hits = _mm256_sub_epi64(hits, _mm256_cmpgt_epi64(limit, d));
    }
    matches += (uint64_t)(_mm256_extract_epi64(hits, 0) + _mm256_extract_epi64(hits, 1) +
                          _mm256_extract_epi64(hits, 2) + _mm256_extract_epi64(hits, 3));
  }
  return matches;
}

static uint64_t next_random(uint64_t *state) { /* xorshift64 */
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return *state;
}

/* Best comparisons/s over PASSES runs of `scan`; *matches gets its checksum. */
static double popcount_rate(uint64_t (*scan)(const uint64_t *, const uint64_t *),
                            const uint64_t *codes, const uint64_t *query, uint64_t *matches) {
  double best = 0.0;
  for (int pass = 0; pass < PASSES; pass++) {
    const double start = now();
    *matches = scan(codes, query);
    const double rate = (double)CODES * SCANS / (now() - start);
    best = rate > best ? rate : best;
  }
  return best;
}

int main(int argc, char **argv) {
  __m256i *buffer = aligned_alloc(64, BUFFER_BYTES);
  if (buffer == NULL) {
    perror("aligned_alloc");
    return 1;
  }
  memset(buffer, 0x5a, BUFFER_BYTES); /* fault every page in before timing */
  for (int i = 1; i < argc; i++) {
    const int threads = atoi(argv[i]);
    if (threads < 1 || threads > MAX_THREADS) {
      fprintf(stderr, "threads: expected 1..%d, got %s\n", MAX_THREADS, argv[i]);
      return 2;
    }
    printf("bandwidth %d %.6g\n", threads, bandwidth(buffer, threads));
    fflush(stdout);
  }
  free(buffer);

  static uint64_t codes[4 * CODES] __attribute__((aligned(64)));
  uint64_t query[4], state = 0x9e3779b97f4a7c15u, matches;
  for (int i = 0; i < 4 * CODES; i++) codes[i] = next_random(&state);
  for (int i = 0; i < 4; i++) query[i] = next_random(&state);
  const double scalar = popcount_rate(scan_scalar, codes, query, &matches);
  printf("popcount scalar %.6g %llu\n", scalar, (unsigned long long)matches);
  const double avx2 = popcount_rate(scan_avx2, codes, query, &matches);
  printf("popcount avx2 %.6g %llu\n", avx2, (unsigned long long)matches);
  return 0;
}
