#ifndef VEIL_CGMP_SHIM_H
#define VEIL_CGMP_SHIM_H

#include <gmp.h>
#include <string.h>
#include <stdint.h>

// GMP's public names (mpz_add, ...) are preprocessor macros for the exported __gmpz_*
// symbols, and Swift does not import function-like macros. These inline wrappers give
// Swift one stable, documented name for each operation the project uses.

static inline void veil_mpz_init(mpz_ptr x) { mpz_init(x); }
static inline void veil_mpz_clear(mpz_ptr x) { mpz_clear(x); }
static inline void veil_mpz_set(mpz_ptr r, mpz_srcptr a) { mpz_set(r, a); }
static inline void veil_mpz_set_ui(mpz_ptr r, unsigned long a) { mpz_set_ui(r, a); }
static inline void veil_mpz_set_si(mpz_ptr r, long a) { mpz_set_si(r, a); }
static inline int veil_mpz_set_str(mpz_ptr r, const char *s, int base) { return mpz_set_str(r, s, base); }
static inline char *veil_mpz_get_str(char *s, int base, mpz_srcptr a) { return mpz_get_str(s, base, a); }
static inline unsigned long veil_mpz_get_ui(mpz_srcptr a) { return mpz_get_ui(a); }
static inline size_t veil_mpz_sizeinbase(mpz_srcptr a, int base) { return mpz_sizeinbase(a, base); }
static inline int veil_mpz_sgn(mpz_srcptr a) { return mpz_sgn(a); }
static inline int veil_mpz_cmp(mpz_srcptr a, mpz_srcptr b) { return mpz_cmp(a, b); }
static inline int veil_mpz_cmp_ui(mpz_srcptr a, unsigned long b) { return mpz_cmp_ui(a, b); }
static inline void veil_mpz_add(mpz_ptr r, mpz_srcptr a, mpz_srcptr b) { mpz_add(r, a, b); }
static inline void veil_mpz_add_ui(mpz_ptr r, mpz_srcptr a, unsigned long b) { mpz_add_ui(r, a, b); }
static inline void veil_mpz_sub(mpz_ptr r, mpz_srcptr a, mpz_srcptr b) { mpz_sub(r, a, b); }
static inline void veil_mpz_sub_ui(mpz_ptr r, mpz_srcptr a, unsigned long b) { mpz_sub_ui(r, a, b); }
static inline void veil_mpz_mul(mpz_ptr r, mpz_srcptr a, mpz_srcptr b) { mpz_mul(r, a, b); }
static inline void veil_mpz_mul_ui(mpz_ptr r, mpz_srcptr a, unsigned long b) { mpz_mul_ui(r, a, b); }
static inline void veil_mpz_mul_2exp(mpz_ptr r, mpz_srcptr a, mp_bitcnt_t n) { mpz_mul_2exp(r, a, n); }
static inline void veil_mpz_neg(mpz_ptr r, mpz_srcptr a) { mpz_neg(r, a); }
static inline void veil_mpz_mod(mpz_ptr r, mpz_srcptr a, mpz_srcptr m) { mpz_mod(r, a, m); }
static inline void veil_mpz_fdiv_q(mpz_ptr q, mpz_srcptr n, mpz_srcptr d) { mpz_fdiv_q(q, n, d); }
static inline void veil_mpz_fdiv_q_2exp(mpz_ptr q, mpz_srcptr n, mp_bitcnt_t b) { mpz_fdiv_q_2exp(q, n, b); }
static inline void veil_mpz_fdiv_r_2exp(mpz_ptr r, mpz_srcptr n, mp_bitcnt_t b) { mpz_fdiv_r_2exp(r, n, b); }
static inline void veil_mpz_divexact(mpz_ptr q, mpz_srcptr n, mpz_srcptr d) { mpz_divexact(q, n, d); }
static inline void veil_mpz_powm(mpz_ptr r, mpz_srcptr b, mpz_srcptr e, mpz_srcptr m) { mpz_powm(r, b, e, m); }
static inline void veil_mpz_powm_sec(mpz_ptr r, mpz_srcptr b, mpz_srcptr e, mpz_srcptr m) { mpz_powm_sec(r, b, e, m); }
static inline int veil_mpz_invert(mpz_ptr r, mpz_srcptr a, mpz_srcptr m) { return mpz_invert(r, a, m); }
static inline void veil_mpz_gcd(mpz_ptr r, mpz_srcptr a, mpz_srcptr b) { mpz_gcd(r, a, b); }
static inline void veil_mpz_lcm(mpz_ptr r, mpz_srcptr a, mpz_srcptr b) { mpz_lcm(r, a, b); }
static inline int veil_mpz_probab_prime_p(mpz_srcptr a, int reps) { return mpz_probab_prime_p(a, reps); }
static inline int veil_mpz_tstbit(mpz_srcptr a, mp_bitcnt_t i) { return mpz_tstbit(a, i); }
static inline void veil_mpz_setbit(mpz_ptr a, mp_bitcnt_t i) { mpz_setbit(a, i); }

/// Imports `count` big-endian bytes into `r` (most significant byte first).
static inline void veil_mpz_import_be(mpz_ptr r, size_t count, const void *bytes) {
    mpz_import(r, count, 1, 1, 1, 0, bytes);
}

/// Writes |a| as exactly `width` big-endian bytes, left-padded with zeros. Returns 0 when
/// |a| does not fit, 1 otherwise.
static inline int veil_mpz_export_be(mpz_srcptr a, size_t width, unsigned char *out) {
    size_t needed = (mpz_sizeinbase(a, 2) + 7) / 8;
    if (mpz_sgn(a) == 0) { needed = 0; }
    if (needed > width) { return 0; }
    memset(out, 0, width - needed);
    if (needed > 0) { mpz_export(out + (width - needed), NULL, 1, 1, 1, 0, a); }
    return 1;
}

static inline size_t veil_mpz_size(mpz_srcptr a) { return mpz_size(a); }
static inline mp_limb_t *veil_mpz_limbs_write(mpz_ptr a, mp_size_t n) { return mpz_limbs_write(a, n); }
static inline const mp_limb_t *veil_mpz_limbs_read(mpz_srcptr a) { return mpz_limbs_read(a); }
static inline void veil_mpz_limbs_finish(mpz_ptr a, mp_size_t n) { mpz_limbs_finish(a, n); }
static inline void veil_mpn_sec_tabselect(mp_limb_t *rp, const mp_limb_t *tab, mp_size_t n, mp_size_t nents, mp_size_t which) {
    mpn_sec_tabselect(rp, tab, n, nents, which);
}
static inline int veil_limb_bytes(void) { return (int)sizeof(mp_limb_t); }

static inline void veil_mpz_swap(mpz_ptr a, mpz_ptr b) { mpz_swap(a, b); }

/// Checks eight ASCII bytes and returns 0 with their value as an 8-digit decimal number in
/// `value`, or -1 when a byte is not a digit. Every byte is a digit exactly when neither x − '0'
/// borrows nor x + 0x46 reaches 0x80 in any byte (then no byte carries or borrows into the next).
/// The value is combined in three multiplications, pairs, then fours, then all eight (the first
/// character is the lowest byte, and the most significant digit).
static inline int veil_decimal8(const unsigned char *text, uint64_t *value) {
    uint64_t x;
    memcpy(&x, text, 8);
    uint64_t digits = x - 0x3030303030303030ULL;
    if (((x + 0x4646464646464646ULL) | digits) & 0x8080808080808080ULL) { return -1; }
    // Each even byte becomes 10 · its digit + the next digit (the odd bytes become junk).
    uint64_t pairs = digits * 10 + (digits >> 8);
    // Pairs 0 and 2 (bytes 0 and 4) and pairs 1 and 3 (bytes 2 and 6), weighted and summed in
    // the high half: 10^6 · p0 + 10^4 · p1 + 10^2 · p2 + p3.
    uint64_t low = (pairs & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32));
    uint64_t high = ((pairs >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32));
    *value = (low + high) >> 32;
    return 0;
}

/// Checks `count` (at most 19) ASCII bytes one by one and returns 0 with their decimal value,
/// or -1 when a byte is not a digit.
static inline int veil_decimal_short(const unsigned char *text, size_t count, uint64_t *value) {
    uint64_t v = 0;
    for (size_t i = 0; i < count; i++) {
        unsigned char digit = (unsigned char)(text[i] - '0');
        if (digit > 9) { return -1; }
        v = v * 10 + digit;
    }
    *value = v;
    return 0;
}

/// Parses `count` ASCII decimal digits (no sign, no terminator needed) into `r`. Returns 0, or
/// -1 for an empty input or a byte that is not a digit (then `r` holds no meaningful value).
///
/// The digits are taken 19 at a time (10^19 < 2^64), eight of them checked and valued at once
/// (``veil_decimal8``), and the limbs are built by Horner's rule in base 10^19 with
/// mpn_mul_1: mpz_set_str would copy the text, skip whitespace, allocate, and value the digits
/// one by one.
static inline int veil_mpz_set_decimal(mpz_ptr r, const unsigned char *text, size_t count) {
    if (count == 0) { return -1; }
    const mp_limb_t base = 10000000000000000000ULL;  // 10^19
    // Each 19-digit step adds at most one limb.
    mp_limb_t *limbs = mpz_limbs_write(r, (mp_size_t)(count / 19 + 2));
    mp_size_t size = 0;
    size_t head = count % 19;
    uint64_t chunk;
    if (head > 0) {
        if (veil_decimal_short(text, head, &chunk) != 0) { return -1; }
        limbs[0] = chunk;
        size = chunk != 0;
    }
    for (size_t i = head; i < count; i += 19) {
        uint64_t first, second, last;
        if (veil_decimal8(text + i, &first) != 0 || veil_decimal8(text + i + 8, &second) != 0
            || veil_decimal_short(text + i + 16, 3, &last) != 0) {
            return -1;
        }
        chunk = (first * 100000000ULL + second) * 1000ULL + last;
        if (size == 0) {
            limbs[0] = chunk;
            size = chunk != 0;
            continue;
        }
        mp_limb_t carry = mpn_mul_1(limbs, limbs, size, base);
        carry += mpn_add_1(limbs, limbs, size, chunk);
        if (carry != 0) { limbs[size++] = carry; }
    }
    mpz_limbs_finish(r, size);
    return 0;
}

/// Overwrites the limbs of `a` with zeros before it is cleared: GMP frees without wiping.
static inline void veil_mpz_wipe(mpz_ptr a) {
    if (a->_mp_alloc > 0 && a->_mp_d != NULL) {
        volatile mp_limb_t *limbs = a->_mp_d;
        for (int i = 0; i < a->_mp_alloc; i++) { limbs[i] = 0; }
    }
    a->_mp_size = 0;
}

#endif
