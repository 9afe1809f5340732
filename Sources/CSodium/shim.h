#ifndef VEIL_CSODIUM_SHIM_H
#define VEIL_CSODIUM_SHIM_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

/// 1 when the CPU has AVX2 and the operating system saves its registers (CPUID leaf 1 OSXSAVE
/// and AVX, XCR0 bits 1 and 2, CPUID leaf 7 AVX2), else 0.
static inline int veil_has_avx2(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)) || !(c & (1u << 28))) { return 0; }
    unsigned low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    if ((low & 6u) != 6u) { return 0; }
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) { return 0; }
    return (b & (1u << 5)) != 0;
#else
    return 0;
#endif
}

/// Mask expansion's fold for elements of 3 bytes (4-byte lanes) or 5, 6 or 7 bytes (8-byte
/// lanes): widens `n` little-endian keystream elements of `width` bytes with one byte shuffle
/// per four or eight of them, and overwrites (mode 0), adds to (1) or subtracts from (2) the
/// lanes modulo 2^b (`mask` = 2^b − 1). Returns how many elements it folded, a multiple of 4
/// (8 for width 3) — the caller folds the rest — or 0 without AVX2 (ask ``veil_has_avx2``
/// first). Reads up to 6 bytes past the last element's keystream.
#if defined(__x86_64__)
__attribute__((target("avx2")))
static inline size_t veil_fold_widening_avx2(
    void *lanes, const uint8_t *keystream, size_t n, int width, uint64_t mask, int mode) {
    // Each 128-bit half widens the elements that start in its own 16-byte load.
    int8_t order[16];
    __m256i masks;
    size_t step;
    if (width == 3) {
        for (int j = 0; j < 16; j++) { order[j] = (j % 4 == 3) ? (int8_t)-128 : (int8_t)(3 * (j / 4) + j % 4); }
        masks = _mm256_set1_epi32((int)(uint32_t)mask);
        step = 8;
    } else {
        for (int j = 0; j < 16; j++) { order[j] = (j % 8 < width) ? (int8_t)(width * (j / 8) + j % 8) : (int8_t)-128; }
        masks = _mm256_set1_epi64x((long long)mask);
        step = 4;
    }
    const __m256i shuffle = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)order));
    const size_t half = (step / 2) * (size_t)width;  // bytes of keystream per 128-bit half
    uint8_t *out = (uint8_t *)lanes;
    size_t i = 0;
#define VEIL_FOLD_LOOP(COMBINE)                                                                     \
    for (; i + step <= n; i += step) {                                                               \
        const uint8_t *from = keystream + i * (size_t)width;                                         \
        __m256i words = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(from + half)),            \
                                         _mm_loadu_si128((const __m128i *)from));                    \
        __m256i elements = _mm256_shuffle_epi8(words, shuffle);                                     \
        __m256i *target = (__m256i *)(out + i * (width == 3 ? 4 : 8));                               \
        __m256i current = _mm256_loadu_si256(target);                                                \
        (void)current;                                                                               \
        _mm256_storeu_si256(target, _mm256_and_si256(COMBINE, masks));                              \
    }
    if (width == 3) {
        switch (mode) {
        case 0: VEIL_FOLD_LOOP(elements) break;
        case 1: VEIL_FOLD_LOOP(_mm256_add_epi32(current, elements)) break;
        default: VEIL_FOLD_LOOP(_mm256_sub_epi32(current, elements)) break;
        }
    } else {
        switch (mode) {
        case 0: VEIL_FOLD_LOOP(elements) break;
        case 1: VEIL_FOLD_LOOP(_mm256_add_epi64(current, elements)) break;
        default: VEIL_FOLD_LOOP(_mm256_sub_epi64(current, elements)) break;
        }
    }
#undef VEIL_FOLD_LOOP
    return i;
}
#endif

static inline size_t veil_fold_widening(
    void *lanes, const uint8_t *keystream, size_t n, int width, uint64_t mask, int mode) {
#if defined(__x86_64__)
    return veil_fold_widening_avx2(lanes, keystream, n, width, mask, mode);
#else
    (void)lanes; (void)keystream; (void)n; (void)width; (void)mask; (void)mode;
    return 0;
#endif
}

#endif
