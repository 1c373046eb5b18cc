// Small C helpers for the vector index that Swift has no spelling for. Header-only, so the
// Clang importer inlines them into Swift callers.
#ifndef VECTRON_C_VECTOR_SUPPORT_H
#define VECTRON_C_VECTOR_SUPPORT_H

/// Asks the CPU to start loading the cache line at `address` (a hint: never faults, even for
/// an invalid address).
static inline __attribute__((always_inline)) void vectron_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
