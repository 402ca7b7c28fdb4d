#!/usr/bin/env bash
# Makes sure PostgreSQL's server programs (initdb, pg_ctl) are here: the
# tests start a throwaway cluster of their own (internal/pgtest) and stop it.
# Installs Debian's postgresql package when they are missing and this runs as
# root; otherwise says the PostgreSQL tests will be skipped (CI sets
# LOCKSTEP_REQUIRE_POSTGRES, which makes them fail instead).
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "*** PostgreSQL (initdb) not found and not installable here: the PostgreSQL tests will be SKIPPED ***" >&2
	exit 0
fi
echo "installing postgresql from Debian's packages (the tests run a throwaway cluster of their own)"
# No cluster of the package's own: the tests make theirs.
mkdir -p /etc/postgresql-common
[ -e /etc/postgresql-common/createcluster.conf ] || echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq postgresql >/dev/null
