#!/usr/bin/env bash
# Install (from Debian's packages), start and prepare a local PostgreSQL for the database tests.
# Prints nothing on success; exports nothing: callers use the URL below.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
pg_ctlcluster "$version" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 && break
  sleep 1
done
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='duijie'\"" | grep -q 1 ||
  su postgres -c "psql -q -c \"CREATE ROLE duijie LOGIN CREATEDB PASSWORD 'duijie'\""
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='duijie'\"" | grep -q 1 ||
  su postgres -c "createdb -O duijie duijie"
