# shellcheck shell=bash
# Shared by scripts/bench/*: servers, release-optimised service binaries, wrk summaries.
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
command -v wrk >/dev/null || apt_install wrk
BENCH_STATE="$REPO_ROOT/.dev/bench"
BENCH_KAFKA="127.0.0.1:${TEST_KAFKA_PORT:-19092}"
BENCH_RUN="b$(date +%s)"

bench_servers() {
  ensure_postgres "$BENCH_STATE/postgres" 55434
  ensure_redis "$BENCH_STATE/redis" 56381
  start_tansu "$BENCH_STATE/tansu" "${TEST_KAFKA_PORT:-19092}" sqlite
}

# Builds (bench profile: optimised, no LTO) and starts `service` on `port` with its own
# database; extra VAR=value arguments are passed to it.
bench_service() { # service port [VAR=value...]
  local service=$1 port=$2
  shift 2
  local db="bench_${service}_$BENCH_RUN"
  create_database "$db"
  (cd "$REPO_ROOT" && cargo build --quiet --profile bench --bin "$service")
  spawn "$service" "$BENCH_STATE/$service.log" env SERVER_PORT="$port" SERVER_HOST=127.0.0.1 \
    DATABASE_URL="${PG_ADMIN_URL%/postgres}/$db" DATABASE_MIGRATE_ON_START=true \
    REDIS_URL="$REDIS_ADMIN_URL" REDIS_KEY_PREFIX="$BENCH_RUN:" KAFKA_BROKERS="$BENCH_KAFKA" \
    KAFKA_TOPIC_PREFIX="$BENCH_RUN-" LOG_LEVEL=warn DATABASE_MAX_CONNECTIONS=32 "$@" \
    "$CARGO_TARGET_DIR/release/$service"
  wait_port 127.0.0.1 "$port" 60 "$service" "$BENCH_STATE/$service.log"
}

# wrk output -> "requests/s | p50 | p99 | non-2xx"
wrk_summary() {
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
       END {printf "%s | %s | %s | %s", rps, p50, p99, (bad==""?0:bad)}'
}
