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

/// Parses `count` ASCII decimal digits (no sign, no terminator needed) into `r`, through
/// `scratch` (at least `count` bytes): the digits are checked and turned into values there,
/// and mpn_set_str converts them without mpz_set_str's copy, whitespace skipping and
/// temporary allocation. Returns 0, or -1 for an empty input or a byte that is not a digit.
static inline int veil_mpz_set_decimal(mpz_ptr r, const unsigned char *text, size_t count, unsigned char *scratch) {
    if (count == 0) { return -1; }
    size_t start = 0;
    size_t i = 0;
    // Eight bytes at a time: every byte is a digit exactly when neither x − '0' borrows nor
    // x + 0x46 reaches 0x80 in any byte (then no byte carries or borrows into the next).
    for (; i + 8 <= count; i += 8) {
        uint64_t x;
        memcpy(&x, text + i, 8);
        uint64_t digits = x - 0x3030303030303030ULL;
        if (((x + 0x4646464646464646ULL) | digits) & 0x8080808080808080ULL) { return -1; }
        memcpy(scratch + i, &digits, 8);
    }
    for (; i < count; i++) {
        unsigned char digit = (unsigned char)(text[i] - '0');
        if (digit > 9) { return -1; }
        scratch[i] = digit;
    }
    while (start < count && scratch[start] == 0) { start++; }
    if (start == count) { mpz_set_ui(r, 0); return 0; }
    // A digit is log2(10) < 10/3 bits; mpn_set_str wants one limb more than the value needs.
    mp_size_t room = (mp_size_t)((count - start) * 10 / (3 * GMP_NUMB_BITS) + 2);
    mp_limb_t *limbs = mpz_limbs_write(r, room);
    mp_size_t used = mpn_set_str(limbs, scratch + start, count - start, 10);
    mpz_limbs_finish(r, used);
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
