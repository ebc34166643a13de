#!/usr/bin/env bash
# Prepares this machine for keycommit's Trillian backend:
#
#   1. MariaDB on 127.0.0.1:3306 (root, empty password): installed from
#      Debian's packages and started if it is not running. Done only when
#      CI=true or --mariadb is given (it changes the machine).
#   2. trillian_log_server and trillian_log_signer v1.8.0, built from the
#      Go module proxy with Trillian's own go.mod into $KEYCOMMIT_TRILLIAN_BIN
#      (default: $HOME/.cache/keycommit/trillian-v1.8.0/bin). Skipped when
#      both binaries are there already.
#   3. With --database NAME: creates database NAME (refusing an existing one
#      unless --recreate) and loads Trillian's MySQL schema into it.
#
# Usage: .ci/trillian-setup.sh [--mariadb] [--no-build] [--database NAME [--recreate]]
# Prints, as its last line, the directory holding the two binaries.
set -euo pipefail

TRILLIAN_VERSION=v1.8.0
BIN_DIR="${KEYCOMMIT_TRILLIAN_BIN:-$HOME/.cache/keycommit/trillian-$TRILLIAN_VERSION/bin}"
MYSQL_HOST="${KEYCOMMIT_MYSQL_HOST:-127.0.0.1}"
MYSQL_PORT="${KEYCOMMIT_MYSQL_PORT:-3306}"

want_mariadb=false
[ "${CI:-}" = "true" ] && want_mariadb=true
build=true
database=""
recreate=false
while [ $# -gt 0 ]; do
  case "$1" in
    --mariadb) want_mariadb=true ;;
    --no-build) build=false ;;
    --database) database="$2"; shift ;;
    --recreate) recreate=true ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "trillian-setup.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

mysql_root() { mysql --protocol=tcp -h"$MYSQL_HOST" -P"$MYSQL_PORT" -uroot "$@"; }
mariadb_up() { mysqladmin --protocol=tcp -h"$MYSQL_HOST" -P"$MYSQL_PORT" -uroot status >/dev/null 2>&1; }

if $want_mariadb && ! mariadb_up; then
  if [ ! -x /usr/sbin/mariadbd ]; then
    echo "trillian-setup.sh: installing MariaDB from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  fi
  echo "trillian-setup.sh: starting MariaDB" >&2
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do mariadb_up && break; sleep 1; done
  mariadb_up || { echo "trillian-setup.sh: MariaDB did not come up on $MYSQL_HOST:$MYSQL_PORT" >&2; exit 1; }
fi
# A fresh Debian install lets root in only through the unix socket: allow
# root over TCP with an empty password, as the tests expect.
if $want_mariadb && ! mysql_root -e "SELECT 1" >/dev/null 2>&1; then
  echo "trillian-setup.sh: allowing root over TCP with an empty password" >&2
  mysql -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); FLUSH PRIVILEGES;"
fi

# Trillian's module directory (downloaded through the module proxy if the
# module cache lacks it), for the schema.
trillian_dir() {
  local d
  d="$(go env GOMODCACHE)/github.com/google/trillian@$TRILLIAN_VERSION"
  if [ ! -f "$d/storage/mysql/schema/storage.sql" ]; then
    d="$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/google/trillian@$TRILLIAN_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  fi
  echo "$d"
}

if [ -n "$database" ]; then
  mariadb_up || { echo "trillian-setup.sh: MariaDB is not reachable at $MYSQL_HOST:$MYSQL_PORT (run with --mariadb to start it)" >&2; exit 1; }
  case "$database" in *[!A-Za-z0-9_]*) echo "trillian-setup.sh: database name must be [A-Za-z0-9_]+" >&2; exit 2 ;; esac
  if [ -n "$(mysql_root -N -e "SHOW DATABASES LIKE '$database'")" ]; then
    if $recreate; then
      mysql_root -e "DROP DATABASE \`$database\`"
    else
      echo "trillian-setup.sh: database $database exists; refusing to load the schema over it (use --recreate to drop it)" >&2
      exit 1
    fi
  fi
  schema="$(trillian_dir)/storage/mysql/schema/storage.sql"
  mysql_root -e "CREATE DATABASE \`$database\`"
  mysql_root "$database" < "$schema"
  echo "trillian-setup.sh: created database $database with Trillian $TRILLIAN_VERSION's schema" >&2
fi

if $build && { [ ! -x "$BIN_DIR/trillian_log_server" ] || [ ! -x "$BIN_DIR/trillian_log_signer" ]; }; then
  echo "trillian-setup.sh: building trillian_log_server and trillian_log_signer $TRILLIAN_VERSION into $BIN_DIR (a few minutes the first time)" >&2
  mkdir -p "$BIN_DIR"
  # Outside any module, so Trillian's own go.mod pins its dependencies.
  (cd /tmp && GOFLAGS= GOBIN="$BIN_DIR" go install \
    "github.com/google/trillian/cmd/trillian_log_server@$TRILLIAN_VERSION" \
    "github.com/google/trillian/cmd/trillian_log_signer@$TRILLIAN_VERSION")
fi
echo "$BIN_DIR"
