#!/usr/bin/env bash
# Instructions per request: GET /prod/items served by bare hyper, by "bare
# hyper + wasmtime" (examples/hyper_wasmtime.rs) and by wasmgate, each under
# valgrind's callgrind while wrk sends it requests. Callgrind counts the
# instructions the server executes in user space (not the kernel's), the
# same for the same binary and inputs however fast the machine is that
# minute: where load.sh's requests/s drift with the machine, these show
# what a change did.
#
#   benches/instructions.sh [SECONDS] [CONNECTIONS]   (default 10 s, 2 connections)
#   CACHE_SIM=1 benches/instructions.sh 10 64
#
# CACHE_SIM=1 also simulates the caches (valgrind's model of this machine's
# L1 and last-level caches) and reports instruction-cache and data-cache
# misses per request: what an instruction count misses when two servers
# run the same number of instructions at different speeds. With 64
# connections, as in load.sh, the connections' own state competes for the
# cache as it does under load.
#
# Only the requests are counted: instrumentation starts after the server is
# up and warmed, and stops before it shuts down. Under valgrind a server
# runs on one thread at a time, so wrk uses 2 connections.
# Needs valgrind and wrk (Debian: apt-get install valgrind wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
conns=${2:-2}
sim=()
[ "${CACHE_SIM:-0}" = 1 ] && sim=(--cache-sim=yes)
for tool in valgrind callgrind_control callgrind_annotate wrk; do
  command -v "$tool" >/dev/null || { echo "instructions.sh: $tool is missing (apt-get install valgrind wrk)" >&2; exit 2; }
done

cargo build --release --quiet --bin wasmgate --example bare_hyper --example hyper_wasmtime
work=$(mktemp -d)
cleanup() { pkill -f "callgrind-out-file=$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The instance pool reserves address space for every instance it may hold;
# valgrind cannot map terabytes, so the servers keep a small pool.
# "wasmgate": the seed without its stage policies, as its history measured
# it; "policies": with them (an API key of the seed's plan, its throttle and
# quota, prod's throttle; limits wrk never reaches), no cache; "cors": the
# same with the seed's CORS too (what CORS adds to an answer); "cached":
# "policies" with prod's cache on (cache hits). As in load.sh.
source benches/bench_config.sh
bench_config "$work/data" -e 's/^\[server\]$/[server]\nmax_instances = 3\nmax_memory_mb = 128/' \
  > "$work/gateway-full.toml"
grep -Ev '^ *(api_key_required|throttle =|cache =|cors =)' "$work/gateway-full.toml" > "$work/gateway.toml"
sed -e "s|^data_dir = .*|data_dir = \"$work/data-cors\"|" "$work/gateway-full.toml" | grep -v '^cache =' \
  > "$work/gateway-cors.toml"
sed -e "s|^data_dir = .*|data_dir = \"$work/data-policies\"|" "$work/gateway-cors.toml" | grep -v '^cors =' \
  > "$work/gateway-policies.toml"
sed -e "s|^data_dir = .*|data_dir = \"$work/data-cached\"|" "$work/gateway-full.toml" | grep -v '^cors =' \
  > "$work/gateway-cached.toml"
key=()

measure() { # name listening-pattern command...
  local name=$1 pattern=$2
  shift 2
  valgrind --tool=callgrind "${sim[@]}" --instr-atstart=no --callgrind-out-file="$work/$name.%p" "$@" \
    > "$work/$name.out" 2> "$work/$name.err" &
  local pid=$!
  local addr=""
  for _ in $(seq 600); do
    addr=$(sed -n "s/^${pattern}//p" "$work/$name.out" | head -1)
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || { grep -v '^==' "$work/$name.err" >&2; exit 1; }
    sleep 0.2
  done
  [ -n "$addr" ] || { echo "instructions.sh: $name did not start" >&2; exit 1; }
  local url="$addr/prod/items"
  curl -sf "${key[@]}" "$url" | grep -q Pencil || { echo "instructions.sh: $name did not answer $url" >&2; exit 1; }
  wrk -t1 -c2 -d3s "${key[@]}" "$url" > /dev/null   # warm-up
  callgrind_control -i on "$pid" > /dev/null 2>&1
  local requests
  requests=$(wrk -t1 -c"$conns" -d"${duration}s" "${key[@]}" "$url" | awk '/requests in/ {print $1}')
  callgrind_control -i off "$pid" > /dev/null 2>&1
  callgrind_control -d "$pid" > /dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  local dump
  dump=$(ls -S "$work/$name".*.1 2>/dev/null | head -1)
  # Instructions, and with the simulation the I1 and D1 (read + write) misses.
  local totals
  if [ ${#sim[@]} -gt 0 ]; then
    totals=$(callgrind_annotate --show=Ir,I1mr,D1mr,D1mw "$dump" 2>/dev/null \
      | awk '/PROGRAM TOTALS/ {gsub(",", ""); print $1, $3, $5 + $7}')
  else
    totals=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1, 0, 0}')
  fi
  echo "$name $requests $totals" >> "$work/results"
}

measure bare 'listening on ' target/release/examples/bare_hyper
measure loop 'listening on ' target/release/examples/hyper_wasmtime --max-instances 3
WASMGATE_LOG=warn measure wasmgate 'wasmgate: gateway listening on ' \
  target/release/wasmgate serve --config "$work/gateway.toml"
key=(-H "x-api-key: $bench_key")
for v in policies cors cached; do
  WASMGATE_LOG=warn measure "$v" 'wasmgate: gateway listening on ' \
    target/release/wasmgate serve --config "$work/gateway-$v.toml"
done

if [ ${#sim[@]} -gt 0 ]; then
  printf '\n%-36s %10s %22s %8s %12s %12s\n' "server (GET /prod/items)" requests "instructions/request" ratio \
    "I1 misses" "D1 misses"
else
  printf '\n%-36s %10s %22s %8s\n' "server (GET /prod/items)" requests "instructions/request" ratio
fi
bare_per=$(awk '$1 == "bare" {printf "%d", $3 / $2}' "$work/results")
while read -r name requests total i1 d1; do
  case $name in
    bare) label="bare hyper (same bytes)";;
    loop) label="bare hyper + wasmtime, hot";;
    wasmgate) label="wasmgate, hot instances";;
    policies) label="wasmgate, key+plan+throttle+quota";;
    cors) label="  the same with CORS";;
    cached) label="wasmgate, cache hits";;
  esac
  per=$(awk -v t="$total" -v r="$requests" 'BEGIN {printf "%d", t / r}')
  printf '%-36s %10d %22d %7.2fx' "$label" "$requests" "$per" "$(awk -v a="$per" -v b="$bare_per" 'BEGIN {print a / b}')"
  if [ ${#sim[@]} -gt 0 ]; then
    printf ' %12d %12d' "$(awk -v m="$i1" -v r="$requests" 'BEGIN {printf "%d", m / r}')" \
      "$(awk -v m="$d1" -v r="$requests" 'BEGIN {printf "%d", m / r}')"
  fi
  printf '\n'
done < "$work/results"
