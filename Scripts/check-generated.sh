#!/usr/bin/env bash
# Fails when the committed Sources/VeilWire/Generated, Sources/VeilTransport/Generated or
# Sources/VeilExport/Generated is not what Specs/proto/veil.proto and Specs/proto/onnx-subset.proto
# generate: someone edited the .proto without running Scripts/generate-proto.sh, or edited
# the generated code by hand. It regenerates into a temporary directory with that same script
# (SWIFT_BUILD_FLAGS is passed on) and compares the two trees file by file.
set -euo pipefail
cd "$(dirname "$0")/.."
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT

Scripts/generate-proto.sh "$fresh" >&2

differing=()
for folder in VeilWire/Generated VeilTransport/Generated VeilExport/Generated; do
    committed="Sources/$folder"
    while IFS= read -r name; do
        if [ ! -f "$committed/$name" ]; then
            differing+=("$folder/$name (generated, not committed)")
        elif [ ! -f "$fresh/$folder/$name" ]; then
            differing+=("$folder/$name (committed, no longer generated)")
        elif ! cmp -s "$committed/$name" "$fresh/$folder/$name"; then
            differing+=("$folder/$name")
        fi
    done < <({ (cd "$committed" && find . -type f) && (cd "$fresh/$folder" && find . -type f); } | sed 's|^\./||' | sort -u)
done

if [ ${#differing[@]} -eq 0 ]; then
    echo "ok: Sources/{VeilWire,VeilTransport,VeilExport}/Generated match Specs/proto/{veil,onnx-subset}.proto"
    exit 0
fi
for folder in VeilWire/Generated VeilTransport/Generated VeilExport/Generated; do
    diff -r "Sources/$folder" "$fresh/$folder" | sed "s|$fresh|(regenerated)|g" | head -n 60 >&2 || true
done
echo "the generated code does not match Specs/proto; run Scripts/generate-proto.sh and commit. Differing:" >&2
printf '  %s\n' "${differing[@]}" >&2
exit 1
