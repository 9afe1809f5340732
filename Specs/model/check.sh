#!/usr/bin/env bash
# Model-checks Specs/model/secagg.pml with SPIN (Debian package `spin`) and a C compiler:
# every property holds at the threshold Veil's malicious threat model gives n = 4 with one
# corrupt participant (t = 3), against a malicious server and an honest one; and each of the
# privacy properties fails at t = 2, so the model can fail. Exits 1 on any other outcome.
#
#   Specs/model/check.sh
set -euo pipefail
model="$(cd "$(dirname "$0")" && pwd)/secagg.pml"
command -v spin >/dev/null || { echo "spin not found: apt-get install spin" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# Runs the verifier with the given model flags; prints "errors: N".
verify() {
    rm -f pan pan.* ./*.trail
    spin "$@" -a "$model" >/dev/null
    cc -O2 -w -DSAFETY -o pan pan.c
    # -m: the search depth (the model's paths are about 200 steps); -w24: a 2^24-slot hash table.
    ./pan -m100000 -w24 | tee pan.out | grep -E "errors:|states, stored" >&2
    grep -o "errors: [0-9]*" pan.out
}

status=0
expect() {
    local want="$1"; shift
    echo "== spin $* (expect ${want})" >&2
    local got
    got="$(verify "$@")"
    case "$want:$got" in
        none:"errors: 0") ;;
        some:"errors: 0") echo "FAIL: spin $* found no violation; the property should fail here" >&2; status=1 ;;
        some:*) ;;
        *) echo "FAIL: spin $*: $got" >&2; status=1 ;;
    esac
}

expect none -DT=3                      # P1 and P2 against a malicious server
expect none -DT=3 -DHONEST_SERVER      # P1, P2 and P3 (liveness) with an honest server
expect some -DT=2 -DSKIP_P2            # below the threshold rule, P1 fails...
expect some -DT=2 -DSKIP_P1            # ...and so does P2
exit "$status"
