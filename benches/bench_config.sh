# Sourced by the benchmark scripts (load.sh, instructions.sh, redis.sh,
# shared_core.sh): the bundled gateway.toml made ready to measure.
#
# bench_config DATA_DIR [SED_ARGUMENT...] prints gateway.toml with its
# listeners on ports the OS picks, DATA_DIR as its data directory, the
# plan's and the stage's throttles and the plan's quota far above what wrk
# sends (so every check runs and every call is admitted), whatever the
# extra sed arguments change, and an API key of the seed's plan whose value
# is $bench_key. Each script then drops the lines of the policies a server
# should run without.
bench_key=BenchKeyBenchKeyBenchKey0001
bench_config() {
  local data_dir=$1
  shift
  sed -e 's/^listen = .*/listen = "127.0.0.1:0"/' -e 's/^admin_listen = .*/admin_listen = "127.0.0.1:0"/' \
      -e "s|^data_dir = .*|data_dir = \"$data_dir\"|" \
      -e 's/^throttle = .*/throttle = { rate = 10000000, burst = 10000000 }/' \
      -e 's/^quota = .*/quota = { limit = 1000000000000, period = "DAY" }/' "$@" gateway.toml
  printf '\n[api_keys.bench]\nplans = ["CloudAcademyPlan"]\nvalue_sha256 = "%s"\n' \
    "$(printf %s "$bench_key" | sha256sum | cut -d' ' -f1)"
}
