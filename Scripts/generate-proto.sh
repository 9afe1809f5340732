#!/usr/bin/env bash
# Regenerates the Swift of Specs/proto/veil.proto with Debian's protoc (package
# protobuf-compiler) and the plugins built from this package's dependencies: the messages
# (swift-protobuf's protoc-gen-swift) into Sources/VeilWire/Generated, the gRPC service
# (grpc-swift-protobuf's protoc-gen-grpc-swift-2) into Sources/VeilTransport/Generated, so that
# the messages build without gRPC; and the ONNX subset Specs/proto/onnx-subset.proto (the model
# files `veil model export` writes) into Sources/VeilExport/Generated. The generated code is
# committed; the build never runs protoc.
#
#   Scripts/generate-proto.sh [sources-directory]
#
# The sources directory defaults to Sources (the two Generated folders are made under it).
# Scripts/check-generated.sh runs this script into a temporary directory, so that the protoc
# invocation lives here only and the check cannot drift from what generates the committed code.
# The plugins are built in debug, so that a machine that has just run the tests reuses that
# build; SWIFT_BUILD_FLAGS (say "--scratch-path .build-mine") is passed to each `swift build`.
set -euo pipefail
if [ $# -gt 0 ]; then
    mkdir -p "$1"
    out="$(cd "$1" && pwd)"  # absolute: the script moves to the repository root next
fi
cd "$(dirname "$0")/.."
out="${out:-Sources}"
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
read -r -a flags <<<"${SWIFT_BUILD_FLAGS:-}"
swift build "${flags[@]}" --product protoc-gen-swift
swift build "${flags[@]}" --product protoc-gen-grpc-swift-2
bin="$(swift build "${flags[@]}" --show-bin-path)"
mkdir -p "$out/VeilWire/Generated" "$out/VeilTransport/Generated" "$out/VeilExport/Generated"
protoc --proto_path=Specs/proto \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --swift_out="$out/VeilWire/Generated" --swift_opt=Visibility=Public \
    --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
    --grpc-swift-2_out="$out/VeilTransport/Generated" \
    --grpc-swift-2_opt=Visibility=Public,ExtraModuleImports=VeilWire \
    Specs/proto/veil.proto
protoc --proto_path=Specs/proto \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --swift_out="$out/VeilExport/Generated" \
    Specs/proto/onnx-subset.proto
echo "regenerated $out/VeilWire/Generated and $out/VeilTransport/Generated from Specs/proto/veil.proto," \
    "$out/VeilExport/Generated from Specs/proto/onnx-subset.proto"
