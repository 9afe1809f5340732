#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for the tests of the PostgreSQL store.
#
#   Scripts/postgres-test-cluster.sh start DIR   make and start a cluster in DIR (empty or missing)
#   Scripts/postgres-test-cluster.sh stop DIR    stop it (DIR can then be removed)
#
# `start` prints the settings file the tests read, DIR/settings.json: export it as
# VEIL_TEST_POSTGRES. The cluster listens on 127.0.0.1 only, on a free port, with TLS (a CA
# and a server certificate for "localhost", made here with openssl) and SCRAM passwords; the
# role `veil` may create databases, one per test. Nothing outside DIR is touched.
# Debian's `postgresql` package provides the server; initdb refuses root, so as root the
# cluster runs as the `postgres` user the package creates.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
command="$1"
dir="$2"

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] && [ -x "$bin/initdb" ] || { echo "error: no PostgreSQL server (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$command" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ -z "$(ls -A "$dir")" ] || { echo "error: $dir is not empty" >&2; exit 1; }
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    chmod 700 "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password=$(openssl rand -hex 24)
    printf '%s\n' "$password" > "$dir/password"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --locale=C.UTF-8 --encoding=UTF8 > "$dir/initdb.log"

    # TLS: a CA of the tests' own and a certificate for localhost that it signs.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=veil test PostgreSQL CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2> /dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
        -keyout "$dir/data/server.key" -out "$dir/server.csr" 2> /dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$dir/san.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
        -extfile "$dir/san.ext" -out "$dir/data/server.crt" 2> /dev/null
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir/data/server.key" "$dir/data/server.crt"
    chmod 600 "$dir/data/server.key"
    cat >> "$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
ssl = on
max_connections = 200
fsync = off
EOF
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start > /dev/null
    as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE veil LOGIN CREATEDB PASSWORD '$password'"
    cat > "$dir/settings.json" <<EOF
{"host": "127.0.0.1", "port": $port, "database": "postgres", "user": "veil", "password_file": "$dir/password", "tls": "disable"}
EOF
    echo "$dir/settings.json"
    ;;
stop)
    [ -d "$dir/data" ] || exit 0
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null
    ;;
*) usage ;;
esac
