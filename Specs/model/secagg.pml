/*
 * A model of one SecAgg session (Specs/secagg.md) for the SPIN model checker, checked by
 * Specs/model/check.sh. It abstracts the cryptography away and keeps what the privacy and
 * consistency arguments rest on: who holds which share, which lists each participant was
 * shown, who signed what, and which kind of share each participant reveals.
 *
 * Participants 1..N on the complete graph; participant N is corrupt (it colludes with the
 * server: its shares are the server's, and it signs whatever the server asks); 1..N-1 are
 * honest and follow SecAggClient. Every honest participant may drop out before any round.
 * The server is malicious unless HONEST_SERVER is defined: it forwards to each participant
 * any subset of the shares that were sent (its view of U2), shows each participant any
 * survivor and dropped lists, and forwards any signatures that were really made (Ed25519
 * signatures cannot be forged; the corrupt participant signs every list).
 *
 * Checked (assertions; SPIN explores every choice):
 *   P1  for no honest owner does the server hold T shares of its self-mask seed b and T
 *       shares of its masking key s;
 *   P2  honest participants whose consistency check passes (who reveal in R4) were shown the
 *       same survivor and dropped lists;
 *   P3  (HONEST_SERVER) with at least T honest participants revealing, the server can
 *       reconstruct every secret it needs: the round completes.
 */

#define N 4                              /* the choice encoding below assumes 4 */
#ifndef T
#define T 3
#endif
#define CORRUPT N
#define THREE_TO_N1 27                   /* 3^(N-1), for N = 4 */
#define ALL ((1 << (N + 1)) - 2)          /* bits 1..N */
#define HAS(set, u) (((set) >> (u)) & 1)

byte dropBefore[N + 1];   /* the round before which an honest participant drops: 1..4, or 5 */
byte u1, u2, u3;          /* the server's sets: advertised keys, sent shares, sent masked input */
byte held[N + 1];         /* the owners whose shares u holds (its view of U2, itself included) */
byte survivors[N + 1];    /* the lists u is shown in R3 */
byte dropped[N + 1];
bool signedR3[N + 1];     /* u passed its R3 checks and signed its lists */
bool revealed[N + 1];     /* u passed its R4 check and revealed */
byte bShares[N + 1];      /* shares of b_o / s_o the server holds, by owner */
byte sShares[N + 1];

inline count(set, result) {
    result = 0;
    i = 1;
    do
    :: i <= N -> result = result + HAS(set, i); i++
    :: else -> break
    od
}

/* Any subset of `from` that contains `must` (0 for none). */
inline pick(from, must, result) {
    result = must;
    i = 1;
    do
    :: i <= N ->
        if
        :: HAS(from, i) && !HAS(must, i) -> result = result | (1 << i)
        :: true
        fi;
        i++
    :: else -> break
    od
}

init {
    byte u, v, i, c, k, set;
    /* Dropouts: each honest participant stays to the end or drops before R1, R2, R3 or R4.
       The corrupt participant takes part throughout (dropping would only help the argument). */
    u = 1;
    do
    :: u < N ->
        if
        :: dropBefore[u] = 1
        :: dropBefore[u] = 2
        :: dropBefore[u] = 3
        :: dropBefore[u] = 4
        :: dropBefore[u] = 5
        fi;
        u++
    :: else -> break
    od;
    dropBefore[CORRUPT] = 5;

    /* R0 everyone advertises keys; R1 those still there deal shares to every member of U1. */
    u1 = ALL;
    u2 = 0;
    u = 1;
    do
    :: u <= N -> if :: dropBefore[u] > 1 -> u2 = u2 | (1 << u) :: else fi; u++
    :: else -> break
    od;
    count(u2, c);
    if :: c < T -> goto done :: else fi;

    /* R2 and R3, for each u still there: the server forwards some of the shares that were
       sent (its view of U2, u's own always) and later shows u survivor and dropped lists.
       u's R3 checks pass only if the lists split exactly the owners it holds shares of,
       itself among the survivors, so the server's choice for u is one of three per other
       participant — survivor, dropped, or not forwarded — one `select` over 0..3^(N-1)-1.
       (An honest server forwards U2 and lists U3 and U2 \ U3.) u needs T of its
       neighbourhood to mask (R2) and T survivors to sign (R3). */
    u3 = 0;
    u = 1;
    do
    :: u <= N ->
        if
        :: u != CORRUPT && dropBefore[u] > 2 && HAS(u2, u) ->
#ifdef HONEST_SERVER
            held[u] = u2;
#else
            select(k : 0 .. THREE_TO_N1 - 1);
            skip;
            d_step {
                survivors[u] = 1 << u;
                dropped[u] = 0;
                v = 1;
                do
                :: v <= N ->
                    if
                    :: v != u ->
                        if
                        :: k % 3 == 1 -> survivors[u] = survivors[u] | (1 << v)
                        :: k % 3 == 2 -> dropped[u] = dropped[u] | (1 << v)
                        :: else
                        fi;
                        k = k / 3
                    :: else
                    fi;
                    v++
                :: else -> break
                od;
                held[u] = survivors[u] | dropped[u]
            }
            /* Only shares that were sent can be forwarded. */
            if :: (held[u] & ~u2) != 0 -> goto next :: else fi;
#endif
            d_step { count(held[u], c) };
            if :: c >= T -> u3 = u3 | (1 << u) :: else fi
        :: u == CORRUPT -> u3 = u3 | (1 << u)
        :: else
        fi;
next:   u++
    :: else -> break
    od;
#ifdef HONEST_SERVER
    u = 1;
    do
    :: u < N -> survivors[u] = u3; dropped[u] = u2 & ~u3; u++
    :: else -> break
    od;
#endif

    /* R3: each honest u still there checks its lists and signs them; the corrupt
       participant signs whatever it is shown. */
    u = 1;
    do
    :: u <= N ->
        d_step {
            if
            :: u == CORRUPT -> signedR3[u] = true
            :: dropBefore[u] > 3 && HAS(u3, u) ->
                count(survivors[u], c);
                signedR3[u] = (c >= T && HAS(survivors[u], u) && (survivors[u] | dropped[u]) == held[u])
            :: else
            fi
        };
        u++
    :: else -> break
    od;
    skip;  /* a break may not jump into the d_step */

    d_step {
    /* R4: u reveals when at least T signers (itself included) signed exactly its lists;
       then, for every owner it holds a share of, the self-mask share if the owner is listed
       as a survivor and the masking-key share if listed as dropped — never both. */
    u = 1;
    do
    :: u < N ->
        if
        :: dropBefore[u] > 4 && signedR3[u] ->
            k = 0;
            v = 1;
            do
            :: v <= N ->
                if
                :: signedR3[v] && (v == CORRUPT ||
                        (survivors[v] == survivors[u] && dropped[v] == dropped[u])) -> k++
                :: else
                fi;
                v++
            :: else -> break
            od;
            if
            :: k >= T ->
                revealed[u] = true;
                v = 1;
                do
                :: v <= N ->
                    if
                    :: HAS(survivors[u], v) -> bShares[v]++
                    :: HAS(dropped[u], v) -> sShares[v]++
                    :: else
                    fi;
                    v++
                :: else -> break
                od
            :: else
            fi
        :: else
        fi;
        u++
    :: else -> break
    od;

    /* The corrupt participant's shares of every honest owner that dealt in R1 are the
       server's, of both kinds. */
    v = 1;
    do
    :: v < N -> if :: HAS(u2, v) -> bShares[v]++; sShares[v]++ :: else fi; v++
    :: else -> break
    od;

#ifndef SKIP_P1
    /* P1 */
    v = 1;
    do
    :: v < N -> assert(!(bShares[v] >= T && sShares[v] >= T)); v++
    :: else -> break
    od;
#endif
#ifndef SKIP_P2
    /* P2 */
    u = 1;
    do
    :: u < N ->
        v = 1;
        do
        :: v < N ->
            assert(!(revealed[u] && revealed[v]) ||
                (survivors[u] == survivors[v] && dropped[u] == dropped[v]));
            v++
        :: else -> break
        od;
        u++
    :: else -> break
    od;
#endif
#ifdef HONEST_SERVER
    /* P3: T honest reveals give T shares of every secret the unmasking needs. */
    k = 0;
    u = 1;
    do
    :: u < N -> if :: revealed[u] -> k++ :: else fi; u++
    :: else -> break
    od;
    if
    :: k >= T ->
        v = 1;
        do
        :: v <= N ->
            assert(!HAS(u3, v) || bShares[v] >= T || v == CORRUPT);
            assert(!(HAS(u2, v) && !HAS(u3, v)) || sShares[v] >= T || v == CORRUPT);
            v++
        :: else -> break
        od
    :: else
    fi;
#endif
    }
done:
    skip
}
