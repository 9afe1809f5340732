#!/usr/bin/env bash
# Builds libsodium 1.0.20 for the browser participant (Specs/browser.md, section 1): one
# WebAssembly module, web/participant/libsodium.wasm, compiled from the copy of libsodium that
# PyNaCl 1.6.2's source distribution bundles, with Debian's clang-14, wasm-ld-14 and wasi-libc.
#
#   Scripts/build-libsodium-wasm.sh           build, write libsodium.wasm and libsodium.wasm.sha256
#   Scripts/build-libsodium-wasm.sh --check   build in a temporary directory; fail unless the result
#                                             is byte-identical to the committed libsodium.wasm (and
#                                             the .sha256 file and sodium.js's pinned hash agree)
#
# libsodium's source is downloaded into a temporary directory, checked against a pinned SHA-256
# and deleted afterwards: it is never committed. Needs: python3 with pip, clang-14, wasm-ld-14,
# llvm-ar-14, llvm-ranlib-14, the wasi-libc package, make.
set -euo pipefail

PYNACL_VERSION=1.6.2
PYNACL_SDIST_SHA256=018494d6d696ae03c7e656e5e74cdfd8ea1326962cc401bcf018f1ed8436811c
LIBSODIUM_VERSION=1.0.20

CC_BIN=/usr/bin/clang-14
LD_BIN=/usr/bin/wasm-ld-14
AR_BIN=/usr/bin/llvm-ar-14
RANLIB_BIN=/usr/bin/llvm-ranlib-14
WASI_INCLUDE=/usr/include/wasm32-wasi
WASI_LIB=/usr/lib/wasm32-wasi
BUILTINS=/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a

# The module's exports (besides its memory). Keep in step with web/participant/sodium.js and
# Specs/browser.md section 1.3.
EXPORTS=(
  _initialize
  sodium_init
  malloc
  free
  sodium_memzero
  randombytes_buf
  crypto_scalarmult_curve25519
  crypto_scalarmult_curve25519_base
  crypto_sign_ed25519_seed_keypair
  crypto_sign_ed25519_detached
  crypto_sign_ed25519_verify_detached
  crypto_sign_ed25519_pk_to_curve25519
  crypto_sign_ed25519_sk_to_curve25519
  crypto_aead_xchacha20poly1305_ietf_encrypt
  crypto_aead_xchacha20poly1305_ietf_decrypt
  crypto_stream_chacha20_ietf_xor_ic
  crypto_hash_sha256
  crypto_auth_hmacsha256_statebytes
  crypto_auth_hmacsha256_init
  crypto_auth_hmacsha256_update
  crypto_auth_hmacsha256_final
  crypto_hash_sha512
  crypto_core_ristretto255_is_valid_point
  crypto_core_ristretto255_add
  crypto_core_ristretto255_scalar_reduce
  crypto_core_ristretto255_scalar_mul
  crypto_core_ristretto255_scalar_sub
  crypto_scalarmult_ristretto255
  crypto_scalarmult_ristretto255_base
)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="$ROOT/web/participant"
CHECK=0
case "${1:-}" in
  "") ;;
  --check) CHECK=1 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

for tool in "$CC_BIN" "$LD_BIN" "$AR_BIN" "$RANLIB_BIN" "$BUILTINS" "$WASI_LIB/libc.a" "$WASI_LIB/crt1-reactor.o" "$WASI_INCLUDE/stdlib.h"; do
  [[ -e "$tool" ]] || { echo "missing $tool (on Debian: apt-get install clang-14 lld-14 llvm-14 wasi-libc libclang-rt-14-dev-wasm32)" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/veil-libsodium-wasm.XXXXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# 1. The source: PyNaCl's sdist, checked before it is opened.
python3 -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
  "pynacl==$PYNACL_VERSION" -d "$WORK/download"
SDIST="$WORK/download/pynacl-$PYNACL_VERSION.tar.gz"
[[ -f "$SDIST" ]] || { echo "pip did not download $SDIST" >&2; exit 1; }
ACTUAL="$(sha256sum "$SDIST" | cut -d' ' -f1)"
if [[ "$ACTUAL" != "$PYNACL_SDIST_SHA256" ]]; then
  echo "pynacl-$PYNACL_VERSION.tar.gz has SHA-256 $ACTUAL, expected $PYNACL_SDIST_SHA256: refusing it" >&2
  exit 1
fi
tar -xzf "$SDIST" -C "$WORK" "pynacl-$PYNACL_VERSION/src/libsodium"
# A fixed path, so nothing in the output can depend on the temporary directory's name.
SRC="$WORK/libsodium"
mv "$WORK/pynacl-$PYNACL_VERSION/src/libsodium" "$SRC"
grep -q "AC_INIT(\[libsodium\],\[$LIBSODIUM_VERSION\]" "$SRC/configure.ac" \
  || { echo "the sdist does not bundle libsodium $LIBSODIUM_VERSION" >&2; exit 1; }

# 2. Compile: libsodium's own configure and make, for wasm32-wasi.
#    -nostdlibinc: only clang's builtin headers and wasi-libc's, never the host's /usr/include.
#    -ffile-prefix-map: no build path in the output. -g0: no debug information.
#    No -DED25519_NONDETERMINISTIC (libsodium's dist-build sets it): Ed25519 signing must stay
#    deterministic (RFC 8032).
export LC_ALL=C TZ=UTC SOURCE_DATE_EPOCH=0
CFLAGS="-O2 -g0 -nostdlibinc -isystem $WASI_INCLUDE -ffile-prefix-map=$SRC=libsodium-$LIBSODIUM_VERSION -ffile-prefix-map=$WORK=."
(
  cd "$SRC"
  CC="$CC_BIN --target=wasm32-wasi --sysroot=/usr" \
  CFLAGS="$CFLAGS" CPPFLAGS="-DSODIUM_STATIC" LDFLAGS="" \
  AR="$AR_BIN" RANLIB="$RANLIB_BIN" \
  ./configure --host=wasm32-wasi --disable-ssp --disable-shared --disable-pie --without-pthreads \
    --disable-dependency-tracking >"$WORK/configure.log" 2>&1 \
    || { cat "$WORK/configure.log" >&2; exit 1; }
  make -C src/libsodium -j"$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)" libsodium.la >"$WORK/make.log" 2>&1 \
    || { tail -50 "$WORK/make.log" >&2; exit 1; }
)
LIBSODIUM_A="$SRC/src/libsodium/.libs/libsodium.a"
[[ -f "$LIBSODIUM_A" ]] || { echo "make did not produce $LIBSODIUM_A" >&2; exit 1; }

# 3. Link: a WASI reactor (crt1-reactor.o, entry _initialize), only the archive members the
#    exports need, no names or custom sections (--strip-all).
LINK_EXPORTS=()
for name in "${EXPORTS[@]}"; do LINK_EXPORTS+=("--export=$name"); done
OUT="$WORK/libsodium.wasm"
"$LD_BIN" -m wasm32 --strip-all --gc-sections -L"$WASI_LIB" "$WASI_LIB/crt1-reactor.o" --entry _initialize \
  "${LINK_EXPORTS[@]}" "$LIBSODIUM_A" -lc "$BUILTINS" -o "$OUT"

HASH="$(sha256sum "$OUT" | cut -d' ' -f1)"
SIZE="$(stat -c %s "$OUT")"
PINNED="$(sed -n 's/^export const LIBSODIUM_WASM_SHA256 = "\([0-9a-f]\{64\}\)";$/\1/p' "$OUT_DIR/sodium.js" 2>/dev/null || true)"

if [[ $CHECK -eq 1 ]]; then
  COMMITTED="$OUT_DIR/libsodium.wasm"
  [[ -f "$COMMITTED" ]] || { echo "no committed $COMMITTED to compare with" >&2; exit 1; }
  if ! cmp -s "$OUT" "$COMMITTED"; then
    echo "NOT REPRODUCIBLE: rebuilt libsodium.wasm ($SIZE bytes, SHA-256 $HASH) differs from the committed one ($(stat -c %s "$COMMITTED") bytes, SHA-256 $(sha256sum "$COMMITTED" | cut -d' ' -f1))" >&2
    exit 1
  fi
  [[ "$(tr -d '\n' <"$OUT_DIR/libsodium.wasm.sha256")" == "$HASH" ]] \
    || { echo "libsodium.wasm.sha256 does not hold $HASH" >&2; exit 1; }
  [[ "$PINNED" == "$HASH" ]] \
    || { echo "web/participant/sodium.js pins ${PINNED:-no hash}, not $HASH" >&2; exit 1; }
  echo "reproducible: libsodium.wasm $SIZE bytes, SHA-256 $HASH"
  exit 0
fi

mkdir -p "$OUT_DIR"
install -m 0644 "$OUT" "$OUT_DIR/libsodium.wasm"
printf '%s\n' "$HASH" >"$OUT_DIR/libsodium.wasm.sha256"
echo "wrote web/participant/libsodium.wasm: $SIZE bytes, SHA-256 $HASH"
if [[ "$PINNED" != "$HASH" ]]; then
  echo "note: web/participant/sodium.js pins ${PINNED:-no hash}; set LIBSODIUM_WASM_SHA256 to $HASH" >&2
fi
