# shellcheck shell=bash
# Functions shared by scripts/run-stack and scripts/test-all: install what is missing, start
# real servers (PostgreSQL, Redis, the tansu Kafka broker, SecantusDB for the MongoDB wire
# protocol, moto for the S3 API) idempotently, and stop exactly what this invocation started.
#
# Caches outside the clone (survive `git clean`, shared by CI runs on one machine):
#   $DAILYFEED_CACHE (default ~/.cache/dailyfeed): cargo target dir, tansu, SecantusDB and
#   moto venvs.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DAILYFEED_CACHE="${DAILYFEED_CACHE:-$HOME/.cache/dailyfeed}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$DAILYFEED_CACHE/target}"

TANSU_VERSION=0.6.0
TANSU_SHA256=aa775f2cc826e6079ffe7fd74e06fa131ebf5f68eb366111b0d24b9d2806df23
TANSU_ROOT="$DAILYFEED_CACHE/tansu-$TANSU_VERSION"
TANSU_BIN="$TANSU_ROOT/bin/tansu"
SECANTUS_VERSION=0.7.0b3
SECANTUS_VENV="$DAILYFEED_CACHE/secantus-$SECANTUS_VERSION"
MOTO_VERSION=5.2.5
MOTO_VENV="$DAILYFEED_CACHE/moto-$MOTO_VERSION"
MOTO_BIN="$MOTO_VENV/bin/moto_server"

STARTED_PIDS=()

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (install sudo or run as root)"; fi
}

apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
  log "installing from apt: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() { # host port seconds name [logfile]
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_open "$1" "$2" && return 0
    sleep 0.1
  done
  [ -n "${5:-}" ] && [ -f "$5" ] && tail -n 30 "$5" >&2
  die "$4 did not open $1:$2 within $3 s"
}

# Starts a background process with its log, remembers its pid for stop_started. Each runs in
# its own session, so a terminal Ctrl-C reaches only the script, which then stops them in
# order (services first, servers last).
spawn() { # name logfile command...
  local name=$1 logfile=$2
  shift 2
  mkdir -p "$(dirname "$logfile")"
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  STARTED_PIDS+=("$!")
  log "started $name (pid $!, log $logfile)"
}

stop_started() {
  local pid i
  # Newest first, one at a time: each service stops (commits offsets, flushes to the
  # broker) while the servers it uses are still up; 10 s each before KILL.
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${STARTED_PIDS[$i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  STARTED_PIDS=()
}

require_cargo() {
  command -v cargo >/dev/null && return 0
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH" && return 0
  die "cargo not found: install Rust with rustup (https://rustup.rs), then re-run"
}

# --- PostgreSQL -------------------------------------------------------------------------
# Sets PG_ADMIN_URL. Uses a server already answering as user postgres on 127.0.0.1:5432;
# otherwise installs PostgreSQL from apt and runs a private cluster under $1 on port $2.
ensure_postgres() { # private_dir private_port
  if command -v psql >/dev/null && psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
    PG_ADMIN_URL="postgres://postgres@127.0.0.1:5432/postgres"
    log "PostgreSQL: using the server on 127.0.0.1:5432"
    return
  fi
  local dir=$1 port=$2
  PG_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres"
  if psql "$PG_ADMIN_URL" -Atqc 'select 1' >/dev/null 2>&1; then
    log "PostgreSQL: private server already running on $port"
    return
  fi
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql postgresql-client
  local bin
  bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
  local run=()
  if [ "$(id -u)" -eq 0 ]; then run=(runuser -u postgres --); fi
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
  fi
  "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $dir" start >/dev/null
  PG_PRIVATE_CTL=("${run[@]}" "$bin/pg_ctl" -D "$dir/data")
  log "PostgreSQL: private server on $port (data $dir/data)"
}

stop_private_postgres() {
  [ -n "${PG_PRIVATE_CTL+x}" ] && "${PG_PRIVATE_CTL[@]}" stop -m fast >/dev/null 2>&1 || true
}

create_database() { # name
  psql "$PG_ADMIN_URL" -Atqc "select 1 from pg_database where datname = '$1'" | grep -q 1 ||
    psql "$PG_ADMIN_URL" -qc "create database \"$1\"" >/dev/null
}

# --- Redis ------------------------------------------------------------------------------
# Sets REDIS_ADMIN_URL: the server on 127.0.0.1:6379 if it answers, else a private one.
ensure_redis() { # private_dir private_port
  if command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then
    REDIS_ADMIN_URL="redis://127.0.0.1:6379"
    log "Redis: using the server on 127.0.0.1:6379"
    return
  fi
  local dir=$1 port=$2
  REDIS_ADMIN_URL="redis://127.0.0.1:$port"
  command -v redis-server >/dev/null || apt_install redis-server
  if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
    log "Redis: private server already running on $port"
    return
  fi
  mkdir -p "$dir"
  spawn redis "$dir/redis.log" redis-server --bind 127.0.0.1 --port "$port" --save "" \
    --appendonly no --dir "$dir"
  wait_port 127.0.0.1 "$port" 20 redis "$dir/redis.log"
}

# --- tansu (Kafka protocol) -------------------------------------------------------------
ensure_tansu() {
  if [ -x "$TANSU_BIN" ] && [ "$("$TANSU_BIN" --version 2>/dev/null)" = "tansu $TANSU_VERSION" ]; then
    return
  fi
  local shared="$REPO_ROOT/../shared/tools/tansu-$TANSU_VERSION/tansu"
  if [ -x "$shared" ] && [ "$("$shared" --version 2>/dev/null)" = "tansu $TANSU_VERSION" ] &&
    [ "$(sha256sum "$shared" | cut -d' ' -f1)" = "$TANSU_SHA256" ]; then
    log "tansu: copying the verified prebuilt $TANSU_VERSION"
    mkdir -p "$TANSU_ROOT/bin"
    cp "$shared" "$TANSU_BIN.tmp" && chmod +x "$TANSU_BIN.tmp" && mv "$TANSU_BIN.tmp" "$TANSU_BIN"
    return
  fi
  require_cargo
  log "tansu: building $TANSU_VERSION from crates.io (15-40 min on 2 cores, once)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
    --root "$TANSU_ROOT"
}

# Starts a broker on 127.0.0.1:$port with data in $dir unless something already listens.
start_tansu() { # dir port [engine: sqlite|memory]
  local dir=$1 port=$2 engine=${3:-sqlite}
  if port_open 127.0.0.1 "$port"; then
    log "tansu: already listening on $port"
    return
  fi
  ensure_tansu
  mkdir -p "$dir"
  local storage="sqlite://tansu.db"
  [ "$engine" = memory ] && storage="memory://tansu/"
  # tansu reads .env and OTEL_* from its environment: pass everything explicitly.
  spawn "tansu ($engine)" "$dir/tansu.log" env -u OTEL_EXPORTER_OTLP_ENDPOINT -C "$dir" \
    "$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine "$storage"
  wait_port 127.0.0.1 "$port" 30 tansu "$dir/tansu.log"
}

# --- SecantusDB (MongoDB wire protocol) ---------------------------------------------------
ensure_secantus() {
  local installed=""
  [ -x "$SECANTUS_VENV/bin/secantusd-py" ] &&
    installed=$("$SECANTUS_VENV/bin/pip" show secantusdb 2>/dev/null || true)
  if grep -qx "Version: $SECANTUS_VERSION" <<<"$installed"; then
    return
  fi
  command -v python3 >/dev/null || apt_install python3 python3-venv
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  log "SecantusDB: installing $SECANTUS_VERSION from PyPI into $SECANTUS_VENV"
  rm -rf "$SECANTUS_VENV"
  python3 -m venv "$SECANTUS_VENV"
  "$SECANTUS_VENV/bin/pip" install -q "secantusdb==$SECANTUS_VERSION"
}

start_secantus() { # dir port
  local dir=$1 port=$2
  if port_open 127.0.0.1 "$port"; then
    log "SecantusDB: already listening on $port"
    return
  fi
  ensure_secantus
  mkdir -p "$dir/data"
  spawn SecantusDB "$dir/secantus.log" "$SECANTUS_VENV/bin/secantusd-py" --host 127.0.0.1 \
    --port "$port" --storage-path "$dir/data"
  wait_port 127.0.0.1 "$port" 60 SecantusDB "$dir/secantus.log"
}

# --- moto (S3 API, for the image service) ----------------------------------------------
ensure_moto() {
  local installed=""
  [ -x "$MOTO_BIN" ] && installed=$("$MOTO_VENV/bin/pip" show moto 2>/dev/null || true)
  if grep -qx "Version: $MOTO_VERSION" <<<"$installed"; then
    return
  fi
  command -v python3 >/dev/null || apt_install python3 python3-venv
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  log "moto: installing moto[server] $MOTO_VERSION from PyPI into $MOTO_VENV"
  rm -rf "$MOTO_VENV"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION"
}

# An S3-API server on 127.0.0.1:$port (state in memory: buckets are gone when it stops).
start_moto() { # dir port
  local dir=$1 port=$2
  if port_open 127.0.0.1 "$port"; then
    log "moto: already listening on $port"
    return
  fi
  ensure_moto
  mkdir -p "$dir"
  spawn "moto (S3)" "$dir/moto.log" "$MOTO_BIN" -H 127.0.0.1 -p "$port"
  wait_port 127.0.0.1 "$port" 60 moto "$dir/moto.log"
}

# Creates bucket $2 on the S3 endpoint $1 (moto accepts unsigned requests; 409 = exists).
create_bucket() { # endpoint bucket
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$1/$2")
  case "$code" in 200 | 409) ;; *) die "cannot create bucket $2 on $1 (HTTP $code)" ;; esac
}

# --- Local OAuth 2.0 / OIDC servers (Google and Kakao stand-ins, for tests) -------------
ensure_oauth_mock() {
  local dir="$REPO_ROOT/scripts/oauth-mock"
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -d "$dir/node_modules/oauth2-mock-server" ]; then
    log "oauth2-mock-server: installing from npm"
    (cd "$dir" && npm ci --silent --no-audit --no-fund)
  fi
}

start_oauth_mock() { # logdir google_port kakao_port
  local logdir=$1 google=$2 kakao=$3
  if port_open 127.0.0.1 "$google" && port_open 127.0.0.1 "$kakao"; then
    log "OAuth servers: already listening on $google/$kakao"
    return
  fi
  ensure_oauth_mock
  spawn "OAuth servers" "$logdir/oauth-mock.log" node "$REPO_ROOT/scripts/oauth-mock/server.mjs" "$google" "$kakao"
  wait_port 127.0.0.1 "$google" 30 "OAuth server (google)" "$logdir/oauth-mock.log"
  wait_port 127.0.0.1 "$kakao" 30 "OAuth server (kakao)" "$logdir/oauth-mock.log"
}
