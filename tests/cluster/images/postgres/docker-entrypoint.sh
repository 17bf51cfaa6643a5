#!/usr/bin/env bash
# Entry point of the test PostgreSQL image: the official postgres image's behaviour, cut down to what the
# chart uses. On an empty PGDATA it runs initdb (superuser POSTGRES_USER with POSTGRES_PASSWORD), allows
# password logins over TCP from anywhere, creates POSTGRES_DB and runs /docker-entrypoint-initdb.d/*.sql
# and *.sh; then it execs postgres, so postgres is PID 1 and gets the runtime's signals itself
# (SIGTERM: smart shutdown, SIGINT: fast, SIGQUIT: immediate).
set -Eeuo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PASSWORD:=}"
: "${POSTGRES_INITDB_ARGS:=}"
# scram-sha-256 is PostgreSQL 15's password_encryption; trust is accepted only when asked for by name.
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
SOCKET_DIR=/var/run/postgresql

say() { printf 'docker-entrypoint.sh: %s\n' "$*" >&2; }

# PGDATA is usually a subdirectory of a mounted volume (the chart: /var/lib/postgresql/data/pgdata), so
# it may not exist yet; initdb insists on 0700.
create_directories() {
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA" 2>/dev/null || :
  mkdir -p "$SOCKET_DIR" 2>/dev/null || :
  chmod 3777 "$SOCKET_DIR" 2>/dev/null || :
}

# As root (a plain `docker run` without --user), hand the directories to postgres and start over as it:
# PostgreSQL refuses to run as root.
step_down_from_root() {
  if [[ $(id -u) == 0 ]]; then
    find "$PGDATA" "$SOCKET_DIR" \! -user postgres -exec chown postgres:postgres '{}' +
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
}

require_password() {
  if [[ -z $POSTGRES_PASSWORD && $POSTGRES_HOST_AUTH_METHOD != trust ]]; then
    say "the database is uninitialized and POSTGRES_PASSWORD is not set;"
    say "set it (or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without one)"
    exit 1
  fi
}

# Unix-socket connections stay trusted (the init steps below use them; only processes inside the
# container reach the socket). TCP always asks for the password, loopback included: stricter than the
# official image, whose initdb default trusts 127.0.0.1, so a test over loopback really logs in.
init_cluster() {
  local options=(--username="$POSTGRES_USER" --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD")
  # shellcheck disable=SC2206  # POSTGRES_INITDB_ARGS is a list of options, split on purpose
  options+=($POSTGRES_INITDB_ARGS)
  if [[ -n $POSTGRES_PASSWORD ]]; then # the password never appears in a command line
    initdb "${options[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD")
  else
    initdb "${options[@]}"
  fi
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

# A server on the socket only (listen_addresses=''), with the same arguments as the real start, so nobody
# connects to a half-initialised database.
with_temporary_server() {
  pg_ctl -D "$PGDATA" -w start -o "$(printf '%q ' "$@" -c listen_addresses='' -p "${PGPORT:-5432}")"
  create_database
  run_init_files
  pg_ctl -D "$PGDATA" -m fast -w stop
}

psql_socket() { psql -v ON_ERROR_STOP=1 --no-psqlrc --host "$SOCKET_DIR" --username "$POSTGRES_USER" "$@"; }

create_database() {
  local exists
  exists=$(psql_socket --dbname postgres --tuples-only --set db="$POSTGRES_DB" \
    <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")
  if [[ -z ${exists//[[:space:]]/} ]]; then
    psql_socket --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
}

run_init_files() {
  local file
  for file in /docker-entrypoint-initdb.d/*; do
    case $file in
      *.sh) say "running $file"; bash "$file" ;;
      *.sql) say "running $file"; psql_socket --dbname "$POSTGRES_DB" -f "$file" ;;
      */\*) ;; # the directory is empty
      *) say "ignoring $file" ;;
    esac
  done
}

main() {
  # `args: ["-c", "max_connections=200"]` (options only) means: postgres with these options.
  if [[ ${1:-} == -* ]]; then
    set -- postgres "$@"
  fi
  if [[ ${1:-} == postgres ]]; then
    create_directories
    step_down_from_root "$@"
    if [[ -s $PGDATA/PG_VERSION ]]; then
      say "$PGDATA already holds a database; skipping initialization"
    else
      require_password
      init_cluster
      shift
      with_temporary_server "$@"
      set -- postgres "$@"
      say "PostgreSQL init process complete; ready for start up"
    fi
  fi
  exec "$@"
}

main "$@"
