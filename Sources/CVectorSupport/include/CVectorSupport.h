// Small C helpers for the vector index that Swift has no spelling for.
#ifndef VECTRON_C_VECTOR_SUPPORT_H
#define VECTRON_C_VECTOR_SUPPORT_H

#include <stdint.h>

/// Asks the CPU to start loading the cache line at `address` (a hint: never faults, even for
/// an invalid address). Header-only, so the Clang importer inlines it into Swift callers.
static inline __attribute__((always_inline)) void vectron_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/// Σ aᵢ·bᵢ over `count` int8 codes, each in −127…127 (−128 is never produced and not allowed:
/// the AVX2 kernel's sign trick needs |aᵢ| ≤ 127). Exact in 32 bits for count ≤ 65,536.
/// AVX2 when the CPU has it (chosen at run time unless the build targets AVX2), scalar
/// otherwise.
int32_t vectron_dot_i8(const int8_t *a, const int8_t *b, int64_t count);

/// Σ |scaleA·aᵢ − scaleB·bᵢ| over `count` int8 codes, in float.
float vectron_l1_i8(const int8_t *a, float scaleA, const int8_t *b, float scaleB, int64_t count);

/// The same sums by the portable scalar loops (the reference the tests compare against).
int32_t vectron_dot_i8_scalar(const int8_t *a, const int8_t *b, int64_t count);
float vectron_l1_i8_scalar(const int8_t *a, float scaleA, const int8_t *b, float scaleB, int64_t count);

#endif
