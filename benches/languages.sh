#!/usr/bin/env bash
# The seed's function in Rust, Python and JavaScript: cold (compile),
# cold (cached artifact), warm and hot starts, and the resident memory of a
# warm instance, by `wasmgate bench` on each, pinned to one core.
#
#   benches/languages.sh [SAMPLES] [INSTANCES]
#
# Builds the release binary's Python and JavaScript twins of the seed's
# function first (tools/install-toolchains.sh installs the toolchains).
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-2000}
instances=${2:-50}
bin=target/release/wasmgate
out=target/bench-languages
mkdir -p "$out"
tools/install-toolchains.sh
export WASMGATE_TOOLCHAINS=${WASMGATE_TOOLCHAINS:-$PWD/target/toolchains}
"$bin" build examples/python-items -o "$out/items-python.wasm"
"$bin" build examples/js-items -o "$out/items-js.wasm"
for lang in rust python js; do
  case $lang in
    rust) code=(--guest items) ;;
    python) code=(--wasm "$out/items-python.wasm") ;;
    js) code=(--wasm "$out/items-js.wasm") ;;
  esac
  echo "== $lang"
  WASMGATE_LOG=warn taskset -c 1 "$bin" bench "${code[@]}" --payload '{"ID": 1}' \
    --samples "$samples" --instances "$instances" --compile-samples 3
done
