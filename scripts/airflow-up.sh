#!/usr/bin/env bash
# Start `airflow standalone` in the background with the embedded stack's environment.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(.venv/bin/veilflow airflow env)"
pidfile="$VEILFLOW_HOME/airflow.pid"
log="$VEILFLOW_HOME/airflow-standalone.log"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "Airflow already running (pid $(cat "$pidfile")); http://localhost:${AIRFLOW__API__PORT}"
  exit 0
fi
setsid airflow standalone >"$log" 2>&1 < /dev/null &
echo $! >"$pidfile"
echo -n "starting Airflow (log: $log) "
for _ in $(seq 1 120); do
  if curl -fsS "http://localhost:${AIRFLOW__API__PORT}/api/v2/monitor/health" >/dev/null 2>&1; then
    echo
    echo "Airflow UI: http://localhost:${AIRFLOW__API__PORT}"
    echo "login: admin, password in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
    exit 0
  fi
  kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo; echo "Airflow exited; see $log"; exit 1; }
  echo -n "."; sleep 2
done
echo; echo "Airflow did not answer within 240 s; see $log"; exit 1
