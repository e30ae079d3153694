#!/usr/bin/env bash
# Finds or starts the services userapi needs on a developer's machine, and
# prints `export` lines for the caller to eval.
#
#   scripts/dev-env.sh start   print the environment, starting what is missing
#   scripts/dev-env.sh stop    stop what `start` started
#
# PostgreSQL: DATABASE_URL when set; else the server on 127.0.0.1:5432 when it
# answers; else a project-local cluster in .data/postgres on port 55432, made
# with the installed initdb. Redis: likewise with REDIS_URL, 127.0.0.1:6379,
# and a local redis-server on port 56379 (optional: without it the service
# runs without a cache). What is not installed is installed with apt-get when
# this user may (root, or sudo without a password); otherwise one line says
# what to install.
#
# Only `export` lines go to stdout; everything said goes to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
data=$root/.data
pg_port=55432
redis_port=56379

say() { echo "dev-env: $*" >&2; }

pg_bin() {
  local name=$1 dir
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/$name" ] && { echo "$dir/$name"; return; }
  done
  return 1
}

# apt_install installs Debian packages, after apt-get update, when this user
# may without being asked for a password; it fails quietly otherwise.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    sudo -n true 2>/dev/null || return 1
    sudo="sudo -n"
  fi
  mkdir -p "$data"
  say "installing $* (apt-get update && apt-get install $*; output in .data/apt-get.log)"
  { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } \
    >"$data/apt-get.log" 2>&1 || { say "apt-get failed; see .data/apt-get.log"; return 1; }
}

# as_owner runs a command as the user that owns the local cluster: PostgreSQL
# refuses to run as root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then return; fi
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then say "PostgreSQL: the one on 127.0.0.1:5432"; return; fi
  local initdb pg_ctl
  if ! pg_bin initdb >/dev/null && apt_install postgresql \
    && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    say "PostgreSQL: installed, and answering on 127.0.0.1:5432"
    return
  fi
  if ! initdb=$(pg_bin initdb) || ! pg_ctl=$(pg_bin pg_ctl); then
    say "PostgreSQL is not installed and none answers on 127.0.0.1:5432."
    say "Install it (Debian/Ubuntu: sudo apt-get install postgresql), or set DATABASE_URL."
    exit 1
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    say "running as root, and there is no 'postgres' user to run a local PostgreSQL as; set DATABASE_URL instead."
    exit 1
  fi
  mkdir -p "$data"
  if [ ! -f "$data/postgres/PG_VERSION" ]; then
    say "creating a local PostgreSQL cluster in .data/postgres"
    mkdir -p "$data/postgres"
    [ "$(id -u)" = 0 ] && chown postgres: "$data/postgres"
    as_owner "$initdb" -D "$data/postgres" -U postgres --auth=trust -E UTF8 >"$data/initdb.log" 2>&1 \
      || { say "initdb failed; see .data/initdb.log"; exit 1; }
  fi
  if ! pg_isready -q -h 127.0.0.1 -p "$pg_port" 2>/dev/null; then
    say "starting the local PostgreSQL on 127.0.0.1:$pg_port"
    touch "$data/postgres.log"
    [ "$(id -u)" = 0 ] && chown postgres: "$data/postgres.log"
    as_owner "$pg_ctl" -D "$data/postgres" -l "$data/postgres.log" -w \
      -o "-p $pg_port -c listen_addresses=127.0.0.1 -k /tmp" start >/dev/null \
      || { say "PostgreSQL did not start; see .data/postgres.log"; exit 1; }
  fi
  echo "export DATABASE_URL='postgres://postgres@127.0.0.1:$pg_port/userapi?sslmode=disable'"
}

start_redis() {
  if [ -n "${REDIS_URL:-}" ]; then return; fi
  if [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then say "Redis: the one on 127.0.0.1:6379"; return; fi
  if ! command -v redis-server >/dev/null 2>&1 && apt_install redis-server \
    && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then
    say "Redis: installed, and answering on 127.0.0.1:6379"
    return
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    say "Redis is not installed and none answers on 127.0.0.1:6379: the service runs without a cache."
    say "Install it (Debian/Ubuntu: sudo apt-get install redis-server) to use one."
    return
  fi
  if [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" != PONG ]; then
    say "starting a local Redis on 127.0.0.1:$redis_port"
    mkdir -p "$data/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
      --dir "$data/redis" --logfile "$data/redis.log" --pidfile "$data/redis.pid" >/dev/null
  fi
  echo "export REDIS_URL='redis://127.0.0.1:$redis_port/0'"
}

stop_all() {
  local pg_ctl
  if [ -f "$data/postgres/postmaster.pid" ] && pg_ctl=$(pg_bin pg_ctl); then
    as_owner "$pg_ctl" -D "$data/postgres" -m fast stop >/dev/null && say "stopped the local PostgreSQL"
  fi
  if [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ]; then
    redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    say "stopped the local Redis"
  fi
}

# Sourced (for trying a function alone), it only defines them.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

case "${1:-}" in
  start)
    command -v go >/dev/null 2>&1 || { say "Go is not installed: install Go 1.26 or later and put it on PATH."; exit 1; }
    start_postgres
    start_redis
    ;;
  stop) stop_all ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
