#!/usr/bin/env bash
# Stop the Airflow started by `make up` (its whole process group).
set -uo pipefail
cd "$(dirname "$0")/.."
home="${VEILFLOW_HOME:-$PWD/.veilflow}"
pidfile="$home/airflow.pid"
if [ -f "$pidfile" ]; then
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "stopped Airflow (pid $pid)"
  fi
  rm -f "$pidfile"
else
  echo "Airflow was not running"
fi
