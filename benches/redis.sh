#!/usr/bin/env bash
# The shared store under load: requests/s and latency of GET /prod/items with
# the seed's policies on (an API key of a usage plan with a throttle and a
# quota, the stage's throttle, CORS) on two wasmgate nodes sharing one Redis
# (`[server] shared_store`), against one node on the embedded store, in one
# run; without the cache (every call a function call and three Redis round
# trips: the key's bucket, the stage's bucket, the quota) and with it (cache
# hits from Redis).
#
#   benches/redis.sh [DURATION_SECONDS] [CONNECTIONS] [ROUNDS]
#   (default 10 s, 64 connections in all, 3 rounds)
#
# Pinned: the servers and redis-server on core 0, wrk on core 1 (taskset).
# Two nodes get one wrk each, with half the connections, at the same time;
# their requests/s add up and the worse p99 is reported. Limits are far above
# what wrk sends, so every call is admitted and every check runs.
# Needs wrk, taskset and redis-server (Debian: wrk util-linux redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
conns=${2:-64}
rounds=${3:-3}
for tool in wrk taskset redis-server; do
  command -v "$tool" >/dev/null || { echo "redis.sh: $tool is missing" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "redis.sh: needs 2 cores" >&2; exit 2; }

# The same set as load.sh builds (examples bring dev-dependencies, whose
# features change shared crates: building the binary alone would rebuild it).
cargo build --release --quiet --bin wasmgate --example bare_hyper --example hyper_wasmtime
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" > "$work/redis.out" &
pids+=($!)
until grep -qi "ready to accept connections" "$work/redis.out"; do
  kill -0 "${pids[0]}" || { cat "$work/redis.out"; exit 1; }
  sleep 0.1
done

source benches/bench_config.sh
config() { # data_dir shared_store cache(yes/no)
  bench_config "$work/$1" -e "s|^\\(data_dir = .*\\)$|\\1\\n${2:+shared_store = \"$2\"}|" |
    if [ "$3" = yes ]; then cat; else grep -v '^cache ='; fi
}
start() { # name data_dir shared_store cache
  config "$2" "$3" "$4" > "$work/$1.toml"
  WASMGATE_LOG=warn target/release/wasmgate serve --config "$work/$1.toml" > "$work/$1.out" 2> "$work/$1.err" &
  pids+=($!)
}
redis_url="redis://127.0.0.1:$port"
start embedded data-e "" no
start embedded-cached data-ec "" yes
start node1 data-1 "$redis_url" no
start node2 data-2 "$redis_url" no
start node1-cached data-1c "$redis_url" yes
start node2-cached data-2c "$redis_url" yes
names=(embedded embedded-cached node1 node2 node1-cached node2-cached)
for _ in $(seq 300); do
  ready=0
  for n in "${names[@]}"; do grep -q "admin API listening" "$work/$n.out" 2>/dev/null && ready=$((ready + 1)); done
  [ "$ready" -eq ${#names[@]} ] && break
  sleep 0.1
done
declare -A url
for n in "${names[@]}"; do
  url[$n]="$(sed -n 's/^wasmgate: gateway listening on //p' "$work/$n.out")/prod/items"
  [ "${url[$n]}" != /prod/items ] || { cat "$work/$n.err"; exit 1; }
  curl -sf -H "x-api-key: $bench_key" "${url[$n]}" | grep -q Pencil
done
grep -q '"store":"redis"' <(curl -sf -H "Authorization: Bearer $(cat "$work/data-1/admin.token")" \
  "$(sed -n 's/^wasmgate: admin API listening on //p' "$work/node1.out")/v1/status")

for p in "${pids[@]}"; do taskset -a -p -c 0 "$p" > /dev/null; done
to_ms() { awk -v t="$1" 'BEGIN { v = t + 0; if (t ~ /us$/) v /= 1000; else if (t ~ /[0-9]s$/ && t !~ /ms$/) v *= 1000; printf "%.3f", v }'; }
wrk_one() { # url conns seconds out
  taskset -c 1 wrk -t1 -c"$2" -d"$3"s --latency -H "x-api-key: $bench_key" "$1" > "$4"
}
measure() { # label round url...
  local label=$1 round=$2; shift 2
  local per=$((conns / $#)) i=0 files=() loads=()
  for u in "$@"; do wrk_one "$u" "$per" 2 /dev/null & loads+=($!); done
  wait "${loads[@]}"   # warm-up (only the wrks: the servers are children too)
  loads=()
  for u in "$@"; do i=$((i + 1)); files+=("$work/$label.$round.$i.txt"); wrk_one "$u" "$per" "$duration" "${files[-1]}" & loads+=($!); done
  wait "${loads[@]}"
  local rps=0 p99=0
  for f in "${files[@]}"; do
    rps=$(awk -v a="$rps" '/Requests\/sec/ {printf "%.2f", a + $2}' "$f")
    p99=$(awk -v a="$p99" -v b="$(to_ms "$(awk '$1=="99%" {print $2}' "$f")")" 'BEGIN {print (b > a) ? b : a}')
  done
  echo "$label $round $rps $p99" >> "$work/results"
}
for round in $(seq "$rounds"); do
  measure embedded "$round" "${url[embedded]}"
  measure redis2 "$round" "${url[node1]}" "${url[node2]}"
  measure embedded-cached "$round" "${url[embedded-cached]}"
  measure redis2-cached "$round" "${url[node1-cached]}" "${url[node2-cached]}"
done

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
column_of() { awk -v s="$1" -v c="$2" '$1 == s {print $c}' "$work/results"; }
printf '\nservers and redis-server on core 0, wrk on core 1 (%s conns in all, %sx%ss)\n' "$conns" "$rounds" "$duration"
printf '%-52s %12s %10s\n' "GET /prod/items, key+plan+throttle+quota on" "requests/s" "p99 ms"
for s in embedded redis2 embedded-cached redis2-cached; do
  case $s in
    embedded) name="one node, embedded store";;
    redis2) name="two nodes, one Redis";;
    embedded-cached) name="one node, embedded store, cache hits";;
    redis2-cached) name="two nodes, one Redis, cache hits";;
  esac
  printf '%-52s %12.0f %10.2f\n' "$name" "$(column_of "$s" 3 | median)" "$(column_of "$s" 4 | median)"
done
grep -h "Non-2xx\|Socket errors" "$work"/*.txt || true
