#!/usr/bin/env bash
# What the stage policies cost per request, measured with both servers at
# once: wasmgate on the bundled gateway.toml without its policies ("off")
# and the same with an API key, the plan's throttle and quota and prod's
# throttle ("on"), both pinned to core 0, each loaded by its own wrk on
# core 1 for the same seconds. Sharing one core, each gets half of it, so
# the ratio of their requests/s is the inverse ratio of what a request
# costs each in CPU, and whatever slows the machine that moment slows both
# alike: far steadier on a noisy VM than load.sh's servers in turns.
#
#   benches/shared_core.sh [ROUNDS] [SECONDS] [ON]
#   (default 8 rounds of 4 s; ON: "all" (default), "key" (the key's check
#   alone: no throttles, no quota), "same" (the on server as the off
#   one: the method's own bias, which should read 1.000) or "logged" (the
#   off server with a CLF access log to a file on both stages))
#
# BASE=PATH runs the off server from another wasmgate binary (an earlier
# build): with ON=same, the ratio is what the change between the two costs
# per request (`BASE=/tmp/wasmgate-before benches/shared_core.sh 8 4 same`);
# with ON=logged, what it costs with the stages' access logs on too.
#
# Both servers are sent the same requests, the API key's header included
# (the off server ignores it): the ratio is what the policies cost, not
# what parsing one more request header does.
#
# Prints each round's requests/s and ratio (on / off), and the ratio of
# requests per second of CPU each server used (all its threads: an access
# log's writer too), then the medians. The two agree when the core is
# shared evenly; the second does not depend on it.
#
# A pair of servers, once started, keeps a bias of its own of up to 1.5%
# for as long as they run (the same binary as both read 0.986 in one run,
# 1.010 in the next), so the servers are started again for each set of
# rounds (SETS=4 by default; ROUNDS is split among them), the off one
# first in one set and the on one in the next, and the medians are taken
# over all rounds. Address-space randomisation is off (setarch -R), so
# that a binary is laid out the same each time.
# Needs wrk, taskset and setarch (Debian: apt-get install wrk util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-8}
secs=${2:-4}
on=${3:-all}
command -v wrk >/dev/null || { echo "shared_core.sh: wrk is missing (apt-get install wrk)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "shared_core.sh: taskset is missing (apt-get install util-linux)" >&2; exit 2; }
command -v setarch >/dev/null || { echo "shared_core.sh: setarch is missing (apt-get install util-linux)" >&2; exit 2; }
sets=${SETS:-4}
[ "$(nproc)" -ge 2 ] || { echo "shared_core.sh: needs 2 cores" >&2; exit 2; }

cargo build --release --quiet --bin wasmgate
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

source benches/bench_config.sh
config() { # name
  bench_config "$work/data-$1" | grep -Ev '^(cors|cache) ='
}
config off | grep -Ev '^ *(api_key_required|throttle) =' > "$work/off.toml"
case $on in
  all) config on > "$work/on.toml";;
  key) config on | grep -Ev '^(throttle|quota) =' > "$work/on.toml";;
  same) sed "s|data-off|data-on|" "$work/off.toml" > "$work/on.toml";;
  logged) sed -e "s|data-off|data-on|" \
      -e 's/^\[apis\.ItemsAPI\.stages\.[a-z]*\]$/&\naccess_log = { format = "CLF", file = "access.log" }/' \
      "$work/off.toml" > "$work/on.toml";;
  *) echo "shared_core.sh: ON is all, key, same or logged" >&2; exit 2;;
esac
declare -A addr bin pid
bin[off]=${BASE:-target/release/wasmgate}
bin[on]=target/release/wasmgate
key=(-H "x-api-key: $bench_key")
start() { # off|on
  local v=$1
  WASMGATE_LOG=warn setarch -R taskset -c 0 "${bin[$v]}" serve --config "$work/$v.toml" \
    > "$work/$v.out" 2> "$work/$v.err" &
  pid[$v]=$!
  pids+=($!)
  addr[$v]=
  for _ in $(seq 300); do
    addr[$v]=$(sed -n 's/^wasmgate: gateway listening on //p' "$work/$v.out")
    [ -n "${addr[$v]}" ] && break
    kill -0 "${pid[$v]}" 2>/dev/null || { cat "$work/$v.err" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "${addr[$v]}" ] || { echo "shared_core.sh: the $v server did not start" >&2; exit 1; }
  curl -sf "${key[@]}" "${addr[$v]}/prod/items" | grep -q Pencil
}
stop() { # off|on
  kill "${pid[$1]}"
  wait "${pid[$1]}" 2>/dev/null || true
}

# A server's CPU time so far, all its threads (those ended too), in clock
# ticks.
cpu_ticks() { # pid
  awk '{print $14 + $15}' "/proc/$1/stat"
}
load() { # seconds, writing $work/off.txt and $work/on.txt
  taskset -c 1 wrk -t1 -c32 -d"$1s" "${key[@]}" "${addr[off]}/prod/items" > "$work/off.txt" &
  local a=$!
  taskset -c 1 wrk -t1 -c32 -d"$1s" "${key[@]}" "${addr[on]}/prod/items" > "$work/on.txt" &
  local b=$!
  wait "$a" "$b"
}
echo "servers on core 0 at once, a wrk each on core 1 (32 conns each, ${secs}s rounds, $sets sets); on = $on"
printf '%-6s %12s %12s %8s %10s\n' round "off req/s" "on req/s" ratio "per CPU s"
round=0
for set in $(seq "$sets"); do
  if [ $((set % 2)) = 1 ]; then start off; start on; else start on; start off; fi
  load 2   # warm-up
  for _ in $(seq $(((rounds + sets - set) / sets))); do
    round=$((round + 1))
    off_cpu=$(cpu_ticks "${pid[off]}")
    on_cpu=$(cpu_ticks "${pid[on]}")
    load "$secs"
    off_cpu=$(($(cpu_ticks "${pid[off]}") - off_cpu))
    on_cpu=$(($(cpu_ticks "${pid[on]}") - on_cpu))
    grep -h "Non-2xx\|Socket errors" "$work/off.txt" "$work/on.txt" && exit 1
    off=$(awk '/Requests\/sec/ {print $2}' "$work/off.txt")
    on_rps=$(awk '/Requests\/sec/ {print $2}' "$work/on.txt")
    ratio=$(awk -v a="$on_rps" -v b="$off" 'BEGIN {printf "%.3f", a / b}')
    # Requests per second of CPU each server used (its threads all counted):
    # what a request costs, however the core was shared that round.
    per_cpu=$(awk -v a="$on_rps" -v b="$off" -v ca="$on_cpu" -v cb="$off_cpu" 'BEGIN {printf "%.3f", (a / ca) / (b / cb)}')
    echo "$ratio" >> "$work/ratios"
    echo "$per_cpu" >> "$work/per_cpu"
    printf '%-6s %12.0f %12.0f %8s %10s\n' "$round" "$off" "$on_rps" "$ratio" "$per_cpu"
  done
  stop off
  stop on
done
median() { # file, label
  sort -g "$1" | awk -v label="$2" '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
    printf "%s: median %.3f, %.3f-%.3f per round\n", label, m, v[1], v[NR]}'
}
median "$work/ratios" "on / off"
median "$work/per_cpu" "on / off per CPU second"
