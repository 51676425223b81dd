#!/usr/bin/env bash
# docker-compose hook: the postgres image runs this once, from
# /docker-entrypoint-initdb.d, when it creates the cluster. It applies the
# same roles.psql as the local stack, with passwords from the environment
# (INGEST_DB_PASSWORD, SEGMENTATION_DB_PASSWORD, SCHEDULER_DB_PASSWORD,
# DISPATCHER_DB_PASSWORD). roles.psql itself has a suffix the image ignores.
set -euo pipefail

dir="$(dirname "${BASH_SOURCE[0]}")"
psql -q -v ON_ERROR_STOP=1 --no-psqlrc \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v ingest_password="${INGEST_DB_PASSWORD:?INGEST_DB_PASSWORD is not set}" \
    -v segmentation_password="${SEGMENTATION_DB_PASSWORD:?SEGMENTATION_DB_PASSWORD is not set}" \
    -v scheduler_password="${SCHEDULER_DB_PASSWORD:?SCHEDULER_DB_PASSWORD is not set}" \
    -v dispatcher_password="${DISPATCHER_DB_PASSWORD:?DISPATCHER_DB_PASSWORD is not set}" \
    -f "$dir/roles.psql"
