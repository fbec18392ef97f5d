#!/bin/sh
# Runs once, when the PostgreSQL volume is first created: one database per consumer, all owned
# by POSTGRES_USER. POSTGRES_DB (the Dagster instance) is created by the image itself.
set -eu
for db in "$ARTIFACTS_DB" "$MLFLOW_DB"; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
done
