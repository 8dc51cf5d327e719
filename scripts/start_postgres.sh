#!/usr/bin/env bash
# Start (or find already running) a throwaway PostgreSQL server for tests and benchmarks, and print
# its URL on stdout. Idempotent: a second call finds the running server and prints the same URL.
#
#   export AGENTLIGHTNING_TEST_PG=$(scripts/start_postgres.sh)
#
# Settings (environment): AGENTLIGHTNING_PG_PORT (55432), AGENTLIGHTNING_PG_DIR (/tmp/agentlightning-pg).
# The cluster listens on 127.0.0.1 only; role and database "agentlightning" (password "agentlightning",
# CREATEDB so tests can make a fresh database each). Run as root it uses the "postgres" user (initdb
# refuses root); as anyone else it runs as that user. Needs Debian's postgresql package: installed
# with apt-get when missing and we are root.
set -euo pipefail

port="${AGENTLIGHTNING_PG_PORT:-55432}"
dir="${AGENTLIGHTNING_PG_DIR:-/tmp/agentlightning-pg}"
role=agentlightning
url="postgresql://${role}:${role}@127.0.0.1:${port}/${role}"

log() { echo "start_postgres: $*" >&2; }

find_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  if [ -z "$d" ] && command -v pg_config >/dev/null 2>&1; then d=$(pg_config --bindir); fi
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

bin=$(find_bin || true)
if [ -z "$bin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "PostgreSQL not installed: apt-get install postgresql"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
    bin=$(find_bin)
  else
    log "PostgreSQL server binaries not found (install Debian's postgresql package)"
    exit 1
  fi
fi

if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" --shell /bin/sh postgres
  as_pg() { runuser -u postgres -- "$@"; }
  owner=postgres
else
  as_pg() { "$@"; }
  owner=$(id -un)
fi

mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown "$owner" "$dir"
chmod 700 "$dir"
data="$dir/data"

# One starter at a time (parallel CI steps, pytest workers).
exec 9>"$dir.lock"
flock 9

if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  if [ ! -s "$data/PG_VERSION" ]; then
    log "initdb $data"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  # A stale pid file from a killed server would stop pg_ctl; postgres itself checks it, so only the
  # server's own shutdown removes it. Start with fsync on: tests check durability semantics.
  log "starting on 127.0.0.1:$port"
  as_pg "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=300" >&2 9>&- \
    || { tail -n 30 "$dir/server.log" >&2; exit 1; }
fi

# Role and database (idempotent), over the unix socket as the superuser.
psql_admin() { as_pg "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname='$role'")" != 1 ]; then
  psql_admin -c "CREATE ROLE $role LOGIN CREATEDB PASSWORD '$role'" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname='$role'")" != 1 ]; then
  psql_admin -c "CREATE DATABASE $role OWNER $role" >&2
fi
echo "$url"
