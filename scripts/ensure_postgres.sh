#!/usr/bin/env bash
# PostgreSQL's server programs (initdb, pg_ctl) for the database tests, which start their own
# throwaway server (tests/postgres.py): installed from the distribution's packages when absent.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then
    exit 0
fi
sudo=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
$sudo apt-get update -qq
$sudo apt-get install -y -qq postgresql >/dev/null
