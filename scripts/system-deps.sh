#!/usr/bin/env bash
# Debian packages the test suite uses: Chromium (browser tests), docker-compose (static
# validation of docker-compose.yml; no engine needed), Redis (the Celery topology test).
# Installs only what is missing; needs root (or sudo) and Debian's package index.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "system-deps: missing ${need[*]}; install them (apt-get install ${need[*]})" >&2
    exit 1
  fi
else SUDO=""; fi
echo "system-deps: installing ${need[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
