#!/bin/bash
# Install the registry into a virtualenv and run it.
#   bash tools/serve.sh [zuul-registry arguments]   (default: serve)
# Without arguments it serves plain HTTP on 127.0.0.1:5000, anonymous
# push and pull, storage in ./zuul-registry-data.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${ZUUL_REGISTRY_VENV:-$HERE/.venv}"

if [ ! -x "$VENV/bin/pip" ] && ! python3 -m venv "$VENV" >/dev/null 2>&1
then
    # Debian's python3 needs python3-venv for virtualenvs.
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv
    rm -rf "$VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q "$HERE"
[ $# -gt 0 ] || set -- serve
exec "$VENV/bin/zuul-registry" "$@"
