#!/usr/bin/env bash
# Regenerates Sources/VeilWire/Generated from Specs/proto/veil.proto with Debian's protoc
# (package protobuf-compiler) and the plugins built from this package's dependencies
# (swift-protobuf's protoc-gen-swift, grpc-swift-protobuf's protoc-gen-grpc-swift-2).
# The generated code is committed; the build never runs protoc.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
swift build -c release --product protoc-gen-swift
swift build -c release --product protoc-gen-grpc-swift-2
bin="$(swift build -c release --show-bin-path)"
out=Sources/VeilWire/Generated
mkdir -p "$out"
protoc --proto_path=Specs/proto \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --swift_out="$out" --swift_opt=Visibility=Public \
    --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
    --grpc-swift-2_out="$out" --grpc-swift-2_opt=Visibility=Public \
    Specs/proto/veil.proto
echo "regenerated $out from Specs/proto/veil.proto"
