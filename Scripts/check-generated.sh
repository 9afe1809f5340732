#!/usr/bin/env bash
# Fails when the committed Sources/VeilWire/Generated is not what Specs/proto/veil.proto
# generates: someone edited the .proto without running Scripts/generate-proto.sh, or edited
# the generated code by hand. It regenerates into a temporary directory with that same script
# (SWIFT_BUILD_FLAGS is passed on) and compares the two trees file by file.
set -euo pipefail
cd "$(dirname "$0")/.."
committed=Sources/VeilWire/Generated
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT

Scripts/generate-proto.sh "$fresh" >&2

differing=()
while IFS= read -r name; do
    if [ ! -f "$committed/$name" ]; then
        differing+=("$name (generated, not committed)")
    elif [ ! -f "$fresh/$name" ]; then
        differing+=("$name (committed, no longer generated)")
    elif ! cmp -s "$committed/$name" "$fresh/$name"; then
        differing+=("$name")
    fi
done < <({ (cd "$committed" && find . -type f) && (cd "$fresh" && find . -type f); } | sed 's|^\./||' | sort -u)

if [ ${#differing[@]} -eq 0 ]; then
    echo "ok: $committed matches Specs/proto/veil.proto"
    exit 0
fi
diff -r "$committed" "$fresh" | sed "s|$fresh|(regenerated)|g" | head -n 60 >&2 || true
echo "$committed does not match Specs/proto/veil.proto; run Scripts/generate-proto.sh and commit. Differing:" >&2
printf '  %s\n' "${differing[@]}" >&2
exit 1
