#!/usr/bin/env bash
# Install, start and stop a throwaway PostgreSQL (Debian's `postgresql`) on 127.0.0.1 for tests.
#
#   bash .ci/postgres.sh start OUT_ENV [PORT]   # idempotent; PORT defaults to $PG_PORT or 55432
#   bash .ci/postgres.sh stop
#
# `start` installs the package if missing, makes a fresh cluster in $PG_STATE_DIR (default
# /tmp/tokenproviders-postgres) owned by the `postgres` user, with password (SCRAM) logins only
# over TCP, starts it on 127.0.0.1:PORT, creates the role and database `tokenproviders`, and
# writes a 0600 pgpass file and OUT_ENV, a file of libpq variables to source:
#   PGHOST=127.0.0.1 PGPORT=PORT PGDATABASE=tokenproviders PGUSER=tokenproviders PGPASSFILE=...
# The password never appears on a command line. A server already started by this script is reused.
set -euo pipefail

STATE_DIR=${PG_STATE_DIR:-/tmp/tokenproviders-postgres}
DATA=$STATE_DIR/data
PORT_FILE=$STATE_DIR/port
LOG_FILE=$STATE_DIR/server.log
PASSFILE=$STATE_DIR/pgpass

log() { echo "postgres.sh: $*" >&2; }
die() { echo "postgres.sh: ERROR: $*" >&2; exit 1; }

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] || return 1
    echo "$dir"
}

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() {
    pg_bin >/dev/null && return
    log "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    pg_bin >/dev/null || die "postgresql installed but no /usr/lib/postgresql/*/bin"
}

running() {
    local bin=$1
    [ -f "$DATA/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
    local out=${1:?usage: start OUT_ENV [PORT]} port=${2:-${PG_PORT:-55432}} bin
    install
    bin=$(pg_bin)
    if running "$bin"; then
        port=$(cat "$PORT_FILE")
        log "reusing the server on 127.0.0.1:$port"
    else
        rm -rf "$STATE_DIR"
        mkdir -p "$STATE_DIR"
        chmod 0700 "$STATE_DIR"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$STATE_DIR"
        # The superuser's and the test role's passwords: random, kept in files, never in argv.
        as_postgres sh -c "umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > '$STATE_DIR/superpw'"
        as_postgres sh -c "umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > '$STATE_DIR/rolepw'"
        as_postgres "$bin/initdb" -D "$DATA" -U postgres --pwfile="$STATE_DIR/superpw" \
            --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
        as_postgres "$bin/pg_ctl" -D "$DATA" -l "$LOG_FILE" -w -t 60 \
            -o "-p $port -k $STATE_DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" \
            start >/dev/null
        echo "$port" > "$PORT_FILE"
        local pw
        pw=$(cat "$STATE_DIR/rolepw")
        # The password goes to psql on stdin, not on its command line.
        as_postgres "$bin/psql" -q -h "$STATE_DIR" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE tokenproviders LOGIN CREATEDB PASSWORD '$pw';
CREATE DATABASE tokenproviders OWNER tokenproviders;
SQL
        log "started on 127.0.0.1:$port"
    fi
    # The pgpass file belongs to whoever runs the tests (this script's caller).
    (umask 077; printf '127.0.0.1:%s:*:tokenproviders:%s\n' "$port" "$(cat "$STATE_DIR/rolepw")" > "$PASSFILE.new")
    mv "$PASSFILE.new" "$PASSFILE"
    cat > "$out" <<ENV
PGHOST=127.0.0.1
PGPORT=$port
PGDATABASE=tokenproviders
PGUSER=tokenproviders
PGPASSFILE=$PASSFILE
ENV
    PGHOST=127.0.0.1 PGPORT=$port PGDATABASE=tokenproviders PGUSER=tokenproviders PGPASSFILE=$PASSFILE \
        "$bin/psql" -qAt -c 'SELECT 1' >/dev/null || die "cannot log in as tokenproviders over TCP"
}

stop() {
    local bin
    bin=$(pg_bin) || return 0
    if running "$bin"; then
        as_postgres "$bin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        log "stopped"
    fi
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) stop ;;
    *) echo "usage: bash $0 start OUT_ENV [PORT] | bash $0 stop" >&2; exit 2 ;;
esac
