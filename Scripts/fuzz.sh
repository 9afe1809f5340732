#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ and runs them (Fuzz/README.md).
#
#   Scripts/fuzz.sh [TARGET|all] [SECONDS]   one target, or every target in turn (default: all, 600 s each)
#   Scripts/fuzz.sh --smoke                  every target (or FUZZ_SMOKE_TARGETS) for FUZZ_SMOKE_SECONDS (default 20 s)
#   Scripts/fuzz.sh --build                  only build
#
# Long runs use an optimised build; the smoke run a debug build (FUZZ_CONFIGURATION overrides
# either), which compiles the service's dependencies in a fraction of the time and fuzzes the
# crypto-bound targets about as fast, most of their time being in libsodium and GMP.
#
# Each run starts from the committed seeds (Fuzz/Corpus/TARGET, never written to) and keeps what
# it finds in the scratch folder (FUZZ_SCRATCH, default Fuzz/.build); a crash, trap, timeout or
# memory blow-up is written there too (fuzz-artifacts/) and makes the script exit non-zero.
# One worker, at low priority: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

targets=(FuzzWireMessages FuzzSecAggBodies FuzzPaillierFiles FuzzConfiguration FuzzVectorFiles FuzzAuditFiles)

# The longest input worth trying: a little above the largest seed of each target.
max_len() {
    case "$1" in
        FuzzWireMessages) echo 65536 ;;
        FuzzSecAggBodies) echo 8192 ;;
        FuzzPaillierFiles) echo 4096 ;;
        FuzzConfiguration) echo 8192 ;;
        FuzzVectorFiles) echo 65536 ;;
        FuzzAuditFiles) echo 32768 ;;
    esac
}

# The fuzz package depends on this one by path; SwiftPM names a path dependency after its
# folder, so a checkout folder named like Fuzz/ itself would collide with it.
if [ "$(basename "$root" | tr '[:upper:]' '[:lower:]')" = fuzz ]; then
    echo "error: the checkout folder is named $(basename "$root"); SwiftPM would confuse it with Fuzz/ (rename it)" >&2
    exit 2
fi

scratch="${FUZZ_SCRATCH:-$root/Fuzz/.build}"
configuration="${FUZZ_CONFIGURATION:-release}"
[ "${1:-}" = --smoke ] && configuration="${FUZZ_CONFIGURATION:-debug}"
# `--sanitize=fuzzer` makes SwiftPM link libFuzzer's main; the Swift flag is repeated with
# address because swiftc keeps only the last `-sanitize=` it is given (two separate flags would
# drop the coverage instrumentation). `-enable-testing`: the targets reach internal decoders.
build_flags=(-c "$configuration" --scratch-path "$scratch" --sanitize=fuzzer
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing)

build() {
    local started=$SECONDS
    for target in "$@"; do
        nice -n 10 swift build --package-path Fuzz "${build_flags[@]}" --product "$target" >&2
    done
    echo "fuzz build ($configuration): $((SECONDS - started)) s" >&2
}

# Runs one target for $2 seconds; prints libFuzzer's closing statistics.
run() {
    local target=$1 seconds=$2
    local corpus="$scratch/fuzz-corpus/$target" artifacts="$scratch/fuzz-artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    local binary
    binary="$(swift build --package-path Fuzz "${build_flags[@]}" --show-bin-path)/$target"
    local log="$scratch/fuzz-$target.log"
    echo "== $target: $seconds s" >&2
    # Swift keeps some pointers where LeakSanitizer cannot see them (spare bits), so it reports
    # globals as leaks: memory is bounded by -rss_limit_mb and -malloc_limit_mb instead. Swift's
    # own crash handler is off: it reads the stack in a way AddressSanitizer reports instead of the trap.
    local status=0
    ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no nice -n 10 "$binary" "$corpus" "Fuzz/Corpus/$target" \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=20 -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" >&2 || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "$target: FAILED (exit $status); the input is in $artifacts" >&2
        return 1
    fi
    echo "$target: no finding" >&2
}

case "${1:-all}" in
    --build)
        build "${targets[@]}"
        ;;
    --smoke)
        # FUZZ_SMOKE_TARGETS narrows the smoke run.
        read -r -a smoke <<<"${FUZZ_SMOKE_TARGETS:-${targets[*]}}"
        build "${smoke[@]}"
        failed=0
        for target in "${smoke[@]}"; do run "$target" "${FUZZ_SMOKE_SECONDS:-20}" || failed=1; done
        exit "$failed"
        ;;
    all)
        build "${targets[@]}"
        failed=0
        for target in "${targets[@]}"; do run "$target" "${2:-600}" || failed=1; done
        exit "$failed"
        ;;
    *)
        if [[ ! " ${targets[*]} " =~ " $1 " ]]; then
            echo "usage: Scripts/fuzz.sh [all|--smoke|--build|${targets[*]// /|}] [SECONDS]" >&2
            exit 2
        fi
        build "$1"
        run "$1" "${2:-600}"
        ;;
esac
