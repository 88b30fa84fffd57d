#!/usr/bin/env bash
# Load benchmark: requests/s and latency of GET /prod/items through wasmgate
# (hot instances, and a fresh instance per request; with the stage policies
# on — API key, usage plan throttle and quota, stage throttle, CORS — and
# answered from the stage cache) against a bare hyper
# server returning the same bytes, in one run, with the ratios. A second
# baseline, "bare hyper + wasmtime" (examples/hyper_wasmtime.rs: hyper calling
# the same function through wasmgate's runtime alone, no gateway), shows what
# the function call itself costs and what the gateway adds. A second wasmgate
# logs at the default level (an access line and the function's line per
# request, to a file): what a server run as it comes does.
#
#   benches/load.sh [DURATION_SECONDS] [CONNECTIONS] [WRK_THREADS] [ROUNDS] [MODES]
#   (default 10 s, 64, 1, 3, "pinned unpinned": each server measured ROUNDS
#   times, in turns, in each mode)
#   SERVERS="bare hot policies cached" benches/load.sh 6 64 1 15 pinned
#   (only these servers take turns: more rounds in the same time; bare hyper
#   always runs, as every ratio's baseline)
#
# wrk runs on the same machine as the servers. "pinned", the headline: every
# server is pinned to core 0 and wrk to core 1 (taskset), so the server
# under test has one core and the load generator the other — unpinned, one
# wrk thread saturates before bare hyper does, which flatters every ratio.
# "unpinned": the same servers and wrk free to use both cores.
# Needs wrk and taskset (Debian: apt-get install wrk util-linux). Builds the
# release binaries first.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
conns=${2:-64}
threads=${3:-1}
rounds=${4:-3}
modes=${5:-pinned unpinned}
command -v wrk >/dev/null || { echo "load.sh: wrk is missing (apt-get install wrk)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "load.sh: taskset is missing (apt-get install util-linux)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "load.sh: needs 2 cores (one for the server, one for wrk)" >&2; exit 2; }

cargo build --release --quiet --bin wasmgate --example bare_hyper --example hyper_wasmtime
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# wasmgate on the bundled configuration, ports picked by the OS, quiet logs,
# without its stage policies (keys, throttles, cache, CORS): the seed's
# request path as its history measured it.
source benches/bench_config.sh
bench_config "$work/data" | grep -Ev '^ *(api_key_required|throttle =|cache =|cors =)' > "$work/gateway.toml"
WASMGATE_LOG=warn target/release/wasmgate serve --config "$work/gateway.toml" > "$work/wasmgate.out" 2> "$work/wasmgate.err" &
pids+=($!)
# The same with the seed's policies on: an API key of a usage plan with a
# throttle and a quota, and the stage's throttle — limits far above what
# wrk sends, so every call is admitted and every check runs — but no cache
# ("policies"); and with prod's cache too ("cached": cache hits). Without
# CORS in both: what is compared is the server with and without key, plan,
# throttle and quota, and the cache hit against bare hyper serving the same
# bytes (CORS adds response headers bare hyper does not send; what it costs
# is in instructions.sh's table).
bench_config "$work/data-policies" | grep -Ev '^(cors|cache) =' > "$work/gateway-policies.toml"
bench_config "$work/data-cached" | grep -v '^cors =' > "$work/gateway-cached.toml"
for v in policies cached; do
  WASMGATE_LOG=warn target/release/wasmgate serve --config "$work/gateway-$v.toml" > "$work/wasmgate-$v.out" 2> "$work/wasmgate-$v.err" &
  pids+=($!)
done
sed -e "s|^data_dir = .*|data_dir = \"$work/data-info\"|" "$work/gateway.toml" > "$work/gateway-info.toml"
# Appending, so that the log can be emptied between its turns (see `run`).
WASMGATE_LOG=info target/release/wasmgate serve --config "$work/gateway-info.toml" > "$work/wasmgate-info.out" 2>> "$work/wasmgate-info.log" &
pids+=($!)
target/release/examples/bare_hyper > "$work/bare.out" &
pids+=($!)
target/release/examples/hyper_wasmtime > "$work/loop.out" &
pids+=($!)
target/release/examples/hyper_wasmtime --fresh > "$work/loop-fresh.out" &
pids+=($!)
for _ in $(seq 100); do
  grep -q "admin API listening" "$work/wasmgate.out" 2>/dev/null && grep -q listening "$work/bare.out" 2>/dev/null \
    && grep -q "admin API listening" "$work/wasmgate-info.out" 2>/dev/null \
    && grep -q "admin API listening" "$work/wasmgate-policies.out" 2>/dev/null \
    && grep -q "admin API listening" "$work/wasmgate-cached.out" 2>/dev/null \
    && grep -q listening "$work/loop.out" 2>/dev/null && grep -q listening "$work/loop-fresh.out" 2>/dev/null && break
  sleep 0.1
done
gateway=$(sed -n 's/^wasmgate: gateway listening on //p' "$work/wasmgate.out")
admin=$(sed -n 's/^wasmgate: admin API listening on //p' "$work/wasmgate.out")
gateway_info=$(sed -n 's/^wasmgate: gateway listening on //p' "$work/wasmgate-info.out")
gateway_policies=$(sed -n 's/^wasmgate: gateway listening on //p' "$work/wasmgate-policies.out")
gateway_cached=$(sed -n 's/^wasmgate: gateway listening on //p' "$work/wasmgate-cached.out")
bare=$(sed -n 's/^listening on //p' "$work/bare.out")
loop=$(sed -n 's/^listening on //p' "$work/loop.out")
loop_fresh=$(sed -n 's/^listening on //p' "$work/loop-fresh.out")
[ -n "$gateway" ] && [ -n "$gateway_info" ] && [ -n "$gateway_policies" ] && [ -n "$gateway_cached" ] && [ -n "$bare" ] && [ -n "$loop" ] && [ -n "$loop_fresh" ] || { cat "$work/wasmgate.err"; exit 1; }

# dev runs $LATEST: give it a fresh instance per request (reuse = false).
WASMGATE_ADMIN=$admin target/release/wasmgate function update-config ItemsFunction --reuse false \
  --data-dir "$work/data" > /dev/null

# wrk's latencies come as 671.00us, 1.58ms or 1.02s: in milliseconds.
to_ms() { awk -v t="$1" 'BEGIN { v = t + 0; if (t ~ /us$/) v /= 1000; else if (t ~ /[0-9]s$/ && t !~ /ms$/) v *= 1000; printf "%.3f", v }'; }

# The cores of the servers and of wrk, for a mode.
pin() { # mode
  local server_cores=0 wrk_cores=1
  if [ "$1" = unpinned ]; then server_cores=0-$(($(nproc) - 1)); wrk_cores=$server_cores; fi
  for p in "${pids[@]}"; do taskset -a -p -c "$server_cores" "$p" > /dev/null; done
  wrk_pin="taskset -c $wrk_cores"
}

# Every server is sent the same requests, the API key's header included
# (the servers without policies ignore it): what differs between two rows
# is what the servers do, not what they are sent.
run() { # name url round mode
  local key=(-H "x-api-key: $bench_key")
  $wrk_pin wrk -t"$threads" -c"$conns" -d2s "${key[@]}" "$2" > /dev/null   # warm-up
  $wrk_pin wrk -t"$threads" -c"$conns" -d"${duration}s" --latency "${key[@]}" "$2" > "$work/$4.$1.$3.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$4.$1.$3.txt")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' "$work/$4.$1.$3.txt")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' "$work/$4.$1.$3.txt")")
  echo "$1 $3 $rps $p50 $p99" >> "$work/results.$4"
  # The logging server writes about 450 MB per turn. Left in the page
  # cache, the kernel writes them back 30 s later (vm.dirty_expire), in the
  # middle of another server's turn: emptied, they are never written.
  if [ "$1" = logged ]; then : > "$work/wasmgate-info.log"; fi
  sync
}

# The servers take turns, round after round, in reverse order every other
# round (A B C, C B A, ...): the machine's drift over the run and whatever
# the turn before leaves behind touch all of them alike, and the medians of
# the rounds are reported.
servers=(bare loop hot policies cached loop-fresh fresh logged)
if [ -n "${SERVERS:-}" ]; then
  read -r -a servers <<< "bare ${SERVERS//bare/}"
fi
declare -A url=([bare]="$bare/prod/items" [loop]="$loop/prod/items" [hot]="$gateway/prod/items"
                [policies]="$gateway_policies/prod/items" [cached]="$gateway_cached/prod/items"
                [loop-fresh]="$loop_fresh/prod/items" [fresh]="$gateway/dev/items" [logged]="$gateway_info/prod/items")
for mode in $modes; do
  pin "$mode"
  for round in $(seq "$rounds"); do
    order=("${servers[@]}")
    if [ $((round % 2)) = 0 ]; then
      order=()
      for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[$i]}"); done
    fi
    for s in "${order[@]}"; do run "$s" "${url[$s]}" "$round" "$mode"; done
  done
done
# Every response must have been a 200 with the items.
curl -sf "$gateway/prod/items" | grep -q Pencil
curl -sf "$gateway/dev/items" | grep -q Pencil
curl -sf -H "x-api-key: $bench_key" "$gateway_policies/prod/items" | grep -q Pencil
curl -sf -H "x-api-key: $bench_key" "$gateway_cached/prod/items" | grep -q Pencil
# The cached server answered from its cache (hits, and one miss per start).
curl -sf -H "Authorization: Bearer $(cat "$work/data-cached/admin.token")" \
  "$(sed -n 's/^wasmgate: admin API listening on //p' "$work/wasmgate-cached.out")/v1/status" | grep -o '"hits":[0-9]*' 

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for mode in $modes; do
column_of() { awk -v s="$1" -v c="$2" '$1 == s {print $c}' "$work/results.$mode"; }
bare_rps=$(column_of bare 3 | median)
case $mode in
  pinned) cores="server on core 0, wrk on core 1";;
  *) cores="unpinned";;
esac
printf '\n%s\n%-40s %12s %10s %10s %8s %14s\n' "$cores" "server ($conns conns, $threads wrk thr, ${rounds}x${duration}s)" \
  "requests/s" "p50 ms" "p99 ms" "ratio" "ratio range"
for s in "${servers[@]}"; do
  case $s in
    bare) name="bare hyper (same bytes)";;
    loop) name="bare hyper + wasmtime, hot";;
    hot) name="wasmgate, hot instances";;
    policies) name="wasmgate, hot, key+plan+throttle+quota";;
    cached) name="wasmgate, cache hits (key+plan on)";;
    loop-fresh) name="bare hyper + wasmtime, fresh";;
    fresh) name="wasmgate, fresh instance/request";;
    logged) name="wasmgate, hot, info logs to a file";;
  esac
  rps=$(column_of "$s" 3 | median)
  ratio=$(awk -v a="$rps" -v b="$bare_rps" 'BEGIN {printf "%.3f", a / b}')
  # The ratio within each round (against that round's bare hyper).
  range=$(awk -v s="$s" '$1 == "bare" {b[$2] = $3} $1 == s {r[$2] = $3}
    END {lo = 1e9; hi = 0; for (k in r) {x = r[k] / b[k]; if (x < lo) lo = x; if (x > hi) hi = x}
         printf "%.3f-%.3f", lo, hi}' "$work/results.$mode")
  printf '%-40s %12.0f %10.2f %10.2f %8s %14s\n' "$name" "$rps" "$(column_of "$s" 4 | median)" \
    "$(column_of "$s" 5 | median)" "${ratio}x" "$range"
done
# What the policies cost: the policy server against the same server without
# them, per round (one run, the same machine state): the range, and the
# median of the rounds' ratios.
ratios=$(awk '$1 == "hot" {h[$2] = $3} $1 == "policies" {p[$2] = $3}
  END {for (k in p) if (k in h) print p[k] / h[k]}' "$work/results.$mode")
if [ -n "$ratios" ]; then
  printf 'policies on / off (hot): median of the rounds %.3f, %.3f-%.3f per round\n' \
    "$(median <<< "$ratios")" "$(sort -g <<< "$ratios" | head -1)" "$(sort -g <<< "$ratios" | tail -1)"
fi
done
grep -h "Non-2xx\|Socket errors" "$work"/*.txt || true
