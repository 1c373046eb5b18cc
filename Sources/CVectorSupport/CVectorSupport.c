// Int8 distance kernels for the HNSW walk (Sources/VectorIndex/Quantization.swift).
//
// The AVX2 versions are compiled for AVX2 whatever the build's target (function attribute), and
// chosen at run time by `__builtin_cpu_supports` unless the whole build already targets AVX2
// (release builds use -march=x86-64-v3). So debug builds and the tests run the same AVX2 code
// as release builds on this machine, and a CPU without AVX2 still gets the scalar loops.
#include "CVectorSupport.h"

#include <math.h>

int32_t vectron_dot_i8_scalar(const int8_t *a, const int8_t *b, int64_t count) {
    int32_t sum = 0;
    for (int64_t i = 0; i < count; i++) sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

float vectron_l1_i8_scalar(const int8_t *a, float scaleA, const int8_t *b, float scaleB, int64_t count) {
    float sum = 0;
    for (int64_t i = 0; i < count; i++) sum += fabsf(scaleA * (float)a[i] - scaleB * (float)b[i]);
    return sum;
}

#if defined(__x86_64__)
#include <immintrin.h>

// 32 codes per step: |a| (unsigned) times b·sign(a) (signed) with vpmaddubsw gives 16 int16
// sums of two products, each at most 2·127² = 32,258, so they cannot saturate; vpmaddwd by ones
// widens them to int32.
__attribute__((target("avx2")))
static int32_t dot_i8_avx2(const int8_t *a, const int8_t *b, int64_t count) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 64 <= count; i += 64) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(a + i));
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + i));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(a + i + 32));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + i + 32));
        __m256i p0 = _mm256_maddubs_epi16(_mm256_sign_epi8(a0, a0), _mm256_sign_epi8(b0, a0));
        __m256i p1 = _mm256_maddubs_epi16(_mm256_sign_epi8(a1, a1), _mm256_sign_epi8(b1, a1));
        sum0 = _mm256_add_epi32(sum0, _mm256_madd_epi16(p0, ones));
        sum1 = _mm256_add_epi32(sum1, _mm256_madd_epi16(p1, ones));
    }
    for (; i + 32 <= count; i += 32) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(a + i));
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + i));
        __m256i p0 = _mm256_maddubs_epi16(_mm256_sign_epi8(a0, a0), _mm256_sign_epi8(b0, a0));
        sum0 = _mm256_add_epi32(sum0, _mm256_madd_epi16(p0, ones));
    }
    sum0 = _mm256_add_epi32(sum0, sum1);
    __m128i half = _mm_add_epi32(_mm256_castsi256_si128(sum0), _mm256_extracti128_si256(sum0, 1));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4E));
    half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0xB1));
    int32_t sum = _mm_cvtsi128_si32(half);
    for (; i < count; i++) sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

__attribute__((target("avx2,fma")))
static float l1_i8_avx2(const int8_t *a, float scaleA, const int8_t *b, float scaleB, int64_t count) {
    const __m256 sa = _mm256_set1_ps(scaleA), sb = _mm256_set1_ps(scaleB);
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m256 a0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(a + i))));
        __m256 b0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + i))));
        __m256 a1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(a + i + 8))));
        __m256 b1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + i + 8))));
        __m256 d0 = _mm256_fmsub_ps(a0, sa, _mm256_mul_ps(b0, sb));
        __m256 d1 = _mm256_fmsub_ps(a1, sa, _mm256_mul_ps(b1, sb));
        sum0 = _mm256_add_ps(sum0, _mm256_and_ps(d0, magnitude));
        sum1 = _mm256_add_ps(sum1, _mm256_and_ps(d1, magnitude));
    }
    sum0 = _mm256_add_ps(sum0, sum1);
    __m128 half = _mm_add_ps(_mm256_castps256_ps128(sum0), _mm256_extractf128_ps(sum0, 1));
    half = _mm_add_ps(half, _mm_movehl_ps(half, half));
    half = _mm_add_ss(half, _mm_movehdup_ps(half));
    float sum = _mm_cvtss_f32(half);
    for (; i < count; i++) sum += fabsf(scaleA * (float)a[i] - scaleB * (float)b[i]);
    return sum;
}

#if defined(__AVX2__) && defined(__FMA__)
#define VECTRON_HAS_AVX2 1
#else
#define VECTRON_HAS_AVX2 (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
#endif

int32_t vectron_dot_i8(const int8_t *a, const int8_t *b, int64_t count) {
    if (VECTRON_HAS_AVX2) return dot_i8_avx2(a, b, count);
    return vectron_dot_i8_scalar(a, b, count);
}

float vectron_l1_i8(const int8_t *a, float scaleA, const int8_t *b, float scaleB, int64_t count) {
    if (VECTRON_HAS_AVX2) return l1_i8_avx2(a, scaleA, b, scaleB, count);
    return vectron_l1_i8_scalar(a, scaleA, b, scaleB, count);
}

#else

int32_t vectron_dot_i8(const int8_t *a, const int8_t *b, int64_t count) { return vectron_dot_i8_scalar(a, b, count); }

float vectron_l1_i8(const int8_t *a, float scaleA, const int8_t *b, float scaleB, int64_t count) {
    return vectron_l1_i8_scalar(a, scaleA, b, scaleB, count);
}

#endif
