#!/usr/bin/env bash
# Install, start, seed and stop a real Redmine 5 (Debian's `redmine` + `redmine-sqlite`) for
# integration tests of tokenproviders.
#
#   bash .ci/redmine.sh start OUT_JSON [PORT]   # idempotent; PORT defaults to 3030
#   bash .ci/redmine.sh stop
#
# `start` installs the packages if missing (needs root and apt), adds gem "webrick" to
# /usr/share/redmine/Gemfile.local and `config.allow_concurrency = false` to
# /usr/share/redmine/config/additional_environment.rb, makes sure the production database is
# migrated, starts `rails server -u webrick` on 127.0.0.1:PORT in the background, seeds it
# (while it boots) with .ci/redmine_seed.rb (REST API on, users tpbot/alice/bob
# with passwords and API keys, project tokenproviders-demo with a role allowing
# view_issues/add_issues/add_issue_notes/edit_issues) and writes OUT_JSON:
#   {"url": "http://127.0.0.1:PORT", "project": "tokenproviders-demo", "admin_key": "...",
#    "users": {"tpbot": {"id": N, "login": "tpbot", "api_key": "...", "password": "..."}, ...}}
# then waits (bounded) until it answers HTTP and checks every key against /users/current.json.
# If a server started by this script is already running on PORT it is reused.
#
# Environment knobs: REDMINE_STATE_DIR (default /tmp/tokenproviders-redmine: pid, log, port),
# REDMINE_START_TIMEOUT (seconds to wait for HTTP, default 180).
set -euo pipefail

REDMINE_DIR=/usr/share/redmine
INSTANCE=default
PROJECT=tokenproviders-demo
CI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SEED_RB=$CI_DIR/redmine_seed.rb
STATE_DIR=${REDMINE_STATE_DIR:-/tmp/tokenproviders-redmine}
PID_FILE=$STATE_DIR/server.pid        # pid of `ruby bin/rails server`
RAILS_PID_FILE=$STATE_DIR/rails.pid   # pid file written by rails itself (-P)
PORT_FILE=$STATE_DIR/port
LOG_FILE=$STATE_DIR/server.log
START_TIMEOUT=${REDMINE_START_TIMEOUT:-180}
T0=$SECONDS

log() { echo "redmine.sh: [$((SECONDS - T0))s] $*" >&2; }
DIED=
die() { DIED=1; echo "redmine.sh: ERROR: $*" >&2; exit 1; }
on_exit() {
    local rc=$?
    [ $rc -eq 0 ] && return
    [ -n "$DIED" ] || echo "redmine.sh: ERROR: command failed (exit $rc): $BASH_COMMAND" >&2
    # A server launched by this invocation is stopped again when start fails.
    if [ -n "${LAUNCHED_PID:-}" ]; then DIED=1; stop_server || true; fi
    exit $rc
}
trap on_exit EXIT

usage() {
    DIED=1
    echo "usage: bash $0 start OUT_JSON [PORT] | bash $0 stop" >&2
    exit 2
}

# Run as root, or through sudo when it exists (only needed for apt-get / Gemfile edits).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -E "$@"
    else die "need root for: $*"
    fi
}

pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

webrick_available() {
    command -v ruby >/dev/null 2>&1 && ruby -e 'gem "webrick"' >/dev/null 2>&1
}

ensure_packages() {
    command -v dpkg-query >/dev/null 2>&1 || die "this script needs a Debian/Ubuntu system (dpkg/apt)"
    local want=() p
    for p in redmine redmine-sqlite; do pkg_installed "$p" || want+=("$p"); done
    if ! webrick_available && ! pkg_installed ruby-webrick; then want+=(ruby-webrick); fi
    if [ ${#want[@]} -eq 0 ]; then
        log "packages already installed"
        return
    fi
    log "installing ${want[*]} (about 20 s with a fast mirror, longer on a slow one)"
    export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
    # dbconfig-common: create the instance database with sqlite3, no questions.
    # (default-language: the preseeded question ends up empty, and an empty value makes the
    # postinst load the default data in English whatever $LANG is.)
    as_root debconf-set-selections <<'EOF' || die "debconf-set-selections failed"
redmine redmine/current-instances string default
redmine redmine/instances/default/dbconfig-install boolean true
redmine redmine/instances/default/database-type select sqlite3
redmine redmine/instances/default/default-language select en
EOF
    # A previously interrupted install leaves half-configured packages behind.
    if [ -n "$(dpkg --audit 2>/dev/null || true)" ]; then
        log "finishing an interrupted dpkg run (dpkg --configure -a)"
        as_root dpkg --configure -a || die "dpkg --configure -a failed"
    fi
    local apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    if ! as_root apt-get install "${apt_opts[@]}" "${want[@]}" >"$STATE_DIR/apt.log" 2>&1; then
        log "apt-get install failed; running apt-get update and retrying"
        as_root apt-get update -q >>"$STATE_DIR/apt.log" 2>&1 || { tail -n 20 "$STATE_DIR/apt.log" >&2; die "apt-get update failed (log: $STATE_DIR/apt.log)"; }
        as_root apt-get install "${apt_opts[@]}" "${want[@]}" >>"$STATE_DIR/apt.log" 2>&1 \
            || { tail -n 30 "$STATE_DIR/apt.log" >&2; die "apt-get install ${want[*]} failed (log: $STATE_DIR/apt.log)"; }
    fi
    for p in redmine redmine-sqlite; do pkg_installed "$p" || die "package $p is not installed after apt-get (log: $STATE_DIR/apt.log)"; done
    log "packages installed"
}

# Ruby 3 no longer ships webrick, and Redmine's Gemfile has no app server: add it locally.
ensure_webrick() {
    local gemfile_local=$REDMINE_DIR/Gemfile.local
    webrick_available || die "the webrick gem is not available (install ruby-webrick)"
    if ! grep -Eqs '^[[:space:]]*gem[[:space:]]+["'"'"']webrick["'"'"']' "$gemfile_local"; then
        log "adding gem \"webrick\" to $gemfile_local"
        CONFIG_CHANGED=1
        printf 'gem "webrick"\n' | as_root tee -a "$gemfile_local" >/dev/null
    fi
    # Gemfile.lock (-> /var/lib/redmine/Gemfile.lock) must include webrick, or bundler/setup fails
    # in the server and in `rails runner`.
    if ! grep -qs '^    webrick ' /var/lib/redmine/Gemfile.lock; then
        log "refreshing Gemfile.lock (bundle install --local)"
        (cd "$REDMINE_DIR" && as_root bundle install --local --quiet) >"$STATE_DIR/bundle.log" 2>&1 \
            || { cat "$STATE_DIR/bundle.log" >&2; die "bundle install --local failed in $REDMINE_DIR"; }
        as_root chown www-data:www-data /var/lib/redmine/Gemfile.lock 2>/dev/null || true
    fi
}

# Rails 6.1 + SQLite: concurrent write requests deadlock inside SQLite and fail with
# "SQLite3::BusyException: database is locked" (HTTP 500; a busy timeout does not help).
# allow_concurrency = false makes Rails insert Rack::Lock, i.e. one request at a time.
ensure_serialized_requests() {
    local f=$REDMINE_DIR/config/additional_environment.rb
    if ! grep -qs '^[[:space:]]*config\.allow_concurrency[[:space:]]*=[[:space:]]*false' "$f"; then
        log "setting config.allow_concurrency = false in $f (SQLite cannot take parallel writes)"
        CONFIG_CHANGED=1
        printf '%s\n' '# added by tokenproviders .ci/redmine.sh: serialize requests, SQLite cannot take parallel writes' \
            'config.allow_concurrency = false' | as_root tee -a "$f" >/dev/null
    fi
}

rails_env() {
    # Runs a command from /usr/share/redmine in the production environment of instance "default".
    (cd "$REDMINE_DIR" && RAILS_ENV=production X_DEBIAN_SITEID=$INSTANCE REDMINE_LANG=en "$@")
}

# Migrate only when something is pending: a `rails db:migrate` costs a full Rails boot.
ensure_migrated() {
    local db_yml=/etc/redmine/$INSTANCE/database.yml db pending
    [ -r "$db_yml" ] || die "$db_yml is missing: the redmine package did not configure instance '$INSTANCE' (try: dpkg-reconfigure redmine)"
    db=$(ruby -ryaml -e 'c = YAML.load_file(ARGV[0]); puts c["production"]["adapter"].to_s + " " + c["production"]["database"].to_s' "$db_yml" 2>/dev/null || true)
    if [[ "$db" == sqlite3\ /* ]] && [ -f "${db#sqlite3 }" ] && command -v sqlite3 >/dev/null 2>&1; then
        db=${db#sqlite3 }
        pending=$(comm -13 \
            <(sqlite3 "$db" 'SELECT version FROM schema_migrations' 2>/dev/null | sed 's/^0*//' | sort -u) \
            <(find "$REDMINE_DIR/db/migrate" -name '[0-9]*_*.rb' -printf '%f\n' | sed 's/_.*//; s/^0*//' | sort -u))
        if [ -z "$pending" ]; then
            log "database $db is migrated"
            return
        fi
        log "$(echo "$pending" | wc -l) pending migration(s)"
    else
        log "cannot inspect the database ($db); running db:migrate anyway"
    fi
    rails_env ruby bin/rails db:migrate >"$STATE_DIR/migrate.log" 2>&1 \
        || { tail -n 30 "$STATE_DIR/migrate.log" >&2; die "rails db:migrate failed (log: $STATE_DIR/migrate.log)"; }
    log "database migrated"
}

pid_alive() {
    # true when $1 is a running `rails server` process
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'rails server'
}

server_pid() { cat "$PID_FILE" 2>/dev/null || true; }

http_code() {
    # prints the HTTP status of GET $1 (000 when nothing answers); optional $2 = API key
    local url=$1 key=${2:-}
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null -m 10 -w '%{http_code}' ${key:+-H "X-Redmine-API-Key: $key"} "$url" 2>/dev/null || true
    else
        ruby -rnet/http -e 'u = URI(ARGV[0]); h = {}; h["X-Redmine-API-Key"] = ARGV[1] if ARGV[1].to_s != ""
            begin; print Net::HTTP.start(u.host, u.port, read_timeout: 10) { |x| x.get(u.request_uri, h) }.code
            rescue StandardError; print "000"; end' "$url" "$key"
    fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop_server() {
    local pid
    pid=$(server_pid)
    if pid_alive "$pid"; then
        log "stopping Redmine (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do pid_alive "$pid" || break; sleep 0.1; done
        if pid_alive "$pid"; then
            log "still running after 10 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
        pid_alive "$pid" && die "could not stop pid $pid"
    else
        log "no running Redmine started by this script"
    fi
    rm -f "$PID_FILE" "$RAILS_PID_FILE" "$PORT_FILE"
}

# Launches `rails server` in the background unless our server already runs on $1.
# Sets LAUNCHED_PID when a new server was launched.
LAUNCHED_PID=
CONFIG_CHANGED=
launch_server() {
    local port=$1 pid
    pid=$(server_pid)
    if pid_alive "$pid"; then
        if [ -z "$CONFIG_CHANGED" ] && [ "$(cat "$PORT_FILE" 2>/dev/null)" = "$port" ] && [ "$(http_code "http://127.0.0.1:$port/")" != 000 ]; then
            log "Redmine already running (pid $pid) on port $port; reusing it"
            return
        fi
        stop_server
    fi
    rm -f "$PID_FILE" "$RAILS_PID_FILE" "$PORT_FILE"   # a stale rails pid file makes rails refuse to start
    port_in_use "$port" && die "port $port on 127.0.0.1 is already in use by another process"

    log "starting Redmine on 127.0.0.1:$port (log: $LOG_FILE)"
    (
        cd "$REDMINE_DIR"
        RAILS_ENV=production X_DEBIAN_SITEID=$INSTANCE exec nohup ruby bin/rails server -u webrick \
            -b 127.0.0.1 -p "$port" -P "$RAILS_PID_FILE" </dev/null >"$LOG_FILE" 2>&1
    ) &
    LAUNCHED_PID=$!
    echo "$LAUNCHED_PID" >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
}

# Waits (bounded) until the server answers HTTP at all.
wait_http() {
    local port=$1 pid code deadline=$((SECONDS + START_TIMEOUT))
    pid=$(server_pid)
    while :; do
        code=$(http_code "http://127.0.0.1:$port/")
        [ "$code" != 000 ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$LOG_FILE" >&2
            rm -f "$PID_FILE" "$PORT_FILE"
            die "Redmine exited during startup (log: $LOG_FILE)"
        fi
        if [ $SECONDS -ge $deadline ]; then
            tail -n 40 "$LOG_FILE" >&2
            stop_server
            die "Redmine did not answer HTTP on port $port within ${START_TIMEOUT}s (log: $LOG_FILE)"
        fi
        sleep 0.2
    done
    log "Redmine answers HTTP $code (pid $pid)"
}

seed() {
    local out=$1 url=$2 seedlog=$STATE_DIR/seed.log
    [ -r "$SEED_RB" ] || die "seed file $SEED_RB not found"
    log "seeding (rails runner $(basename "$SEED_RB"))"
    rails_env env OUT_JSON="$out" REDMINE_URL="$url" REDMINE_PROJECT="$PROJECT" \
        ruby bin/rails runner "$SEED_RB" >"$seedlog" 2>&1 \
        || { tail -n 40 "$seedlog" >&2; die "seeding failed (log: $seedlog)"; }
    [ -s "$out" ] || die "seeding did not write $out (log: $seedlog)"
}

# Proves over HTTP that the REST API is on and the seeded keys authenticate.
verify() {
    local out=$1 url=$2 who key code
    for who in admin tpbot alice bob; do
        key=$(ruby -rjson -e 'j = JSON.parse(File.read(ARGV[0])); puts(ARGV[1] == "admin" ? j["admin_key"] : j["users"][ARGV[1]]["api_key"])' "$out" "$who")
        code=$(http_code "$url/users/current.json" "$key")
        [ "$code" = 200 ] || die "GET $url/users/current.json with the $who key answered HTTP $code (expected 200)"
    done
    code=$(http_code "$url/projects/$PROJECT.json" "$key")
    [ "$code" = 200 ] || die "GET $url/projects/$PROJECT.json as bob answered HTTP $code (expected 200)"
    log "verified: REST API on, admin/tpbot/alice/bob keys accepted, project $PROJECT visible"
}

cmd_start() {
    local out=${1:-} port=${2:-3030}
    [ -n "$out" ] || usage
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "invalid port: $port"
    case $out in /*) ;; *) out=$PWD/$out ;; esac
    mkdir -p "$STATE_DIR" "$(dirname "$out")"
    ensure_packages
    ensure_webrick
    ensure_serialized_requests
    ensure_migrated
    launch_server "$port"
    # Seeding only needs the database, so it runs while the server boots (saves ~3 s).
    seed "$out" "http://127.0.0.1:$port"
    wait_http "$port"
    verify "$out" "http://127.0.0.1:$port"
    log "ready: http://127.0.0.1:$port ; credentials in $out"
}

case ${1:-} in
    start) shift; [ $# -ge 1 ] && [ $# -le 2 ] || usage; cmd_start "$@" ;;
    stop) [ $# -eq 1 ] || usage; mkdir -p "$STATE_DIR"; stop_server ;;
    *) usage ;;
esac
