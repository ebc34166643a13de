#!/usr/bin/env bash
# Ensures the services the test suite needs are installed and running:
# MariaDB on 127.0.0.1:3306 (root, empty password) for the Trillian
# backend's tests. Idempotent; safe to run on a machine that has it already.
set -euo pipefail

mariadb_up() { mysqladmin --protocol=tcp -h127.0.0.1 -P3306 -uroot status >/dev/null 2>&1; }

if ! mariadb_up; then
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    echo "installing MariaDB from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  fi
  echo "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do mariadb_up && break; sleep 1; done
fi
if ! mariadb_up; then
  echo "MariaDB is not reachable at 127.0.0.1:3306" >&2
  exit 1
fi
# Root over TCP with an empty password, as the tests expect.
mysql --protocol=tcp -h127.0.0.1 -uroot -e "SELECT 1" >/dev/null
echo "MariaDB is up: $(mysql --protocol=tcp -h127.0.0.1 -uroot -N -e 'SELECT VERSION()')"
