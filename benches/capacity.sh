#!/usr/bin/env bash
# Capacity: how many functions and idle instances one server holds, and what
# each costs. Starts `wasmgate serve` with FUNCTIONS functions (the seed's
# items guest under FUNCTIONS names) and `max_instances = MAX`, invokes each
# once through the admin API (leaving an idle instance each), and reports the
# server's resident memory before and after, per idle instance, and the
# address space the instance pool reserves. With FUNCTIONS > MAX the calls
# past the pool's size take the places of the least recently used idle
# instances: the script checks that every call succeeded.
#
#   benches/capacity.sh [FUNCTIONS] [MAX] [BINARY]
#   (default 1001 functions, 1000 instances, target/release/wasmgate)
set -euo pipefail
cd "$(dirname "$0")/.."
functions=${1:-1001}
max=${2:-1000}
bin=${3:-target/release/wasmgate}
[ -x "$bin" ] || cargo build --release --quiet --bin wasmgate
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
{
  printf '[server]\nlisten = "127.0.0.1:0"\nadmin_listen = "127.0.0.1:0"\ndata_dir = "data"\nmax_instances = %s\n\n' "$max"
  for i in $(seq "$functions"); do printf '[functions.F%s]\nguest = "items"\n\n' "$i"; done
} > "$work/gateway.toml"
WASMGATE_LOG=warn "$bin" serve --config "$work/gateway.toml" > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 600); do grep -q "admin API listening" "$work/out" 2>/dev/null && break; sleep 0.1; done
admin=$(sed -n 's/^wasmgate: admin API listening on //p' "$work/out")
[ -n "$admin" ] || { cat "$work/err"; exit 1; }
token=$(cat "$work/data/admin.token")
kb() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }
before=$(kb VmRSS)
failed=0
started=$(date +%s.%N)
for i in $(seq "$functions"); do
  code=$(curl -s -o "$work/body" -w '%{http_code}' -H "authorization: Bearer $token" \
    -X POST "$admin/v1/functions/F$i/invocations" -d '{}')
  [ "$code" = 200 ] && grep -q Pencil "$work/body" || { failed=$((failed + 1)); echo "F$i: $code $(cat "$work/body")" >&2; }
done
elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
after=$(kb VmRSS)
alive=$(curl -s -H "authorization: Bearer $token" "$admin/v1/status" | sed -n 's/.*"instances_alive":\([0-9]*\).*/\1/p')
per=$(awk -v a="$after" -v b="$before" -v n="$alive" 'BEGIN {printf "%.0f", (a - b) / n}')
printf 'functions %s, max_instances %s: %s calls failed, in %s s\n' "$functions" "$max" "$failed" "$elapsed"
printf 'instances alive %s; resident %s MB before the calls, %s MB after: %s KB per idle instance\n' \
  "$alive" "$((before / 1024))" "$((after / 1024))" "$per"
printf 'address space reserved: %s GB (the pool: 2 memories of max_memory_mb per instance, and their guards)\n' \
  "$(($(kb VmSize) / 1024 / 1024))"
[ "$failed" = 0 ]
