#!/usr/bin/env bash
# Install Debian packages, but only if some of them are missing.
#
# Usage: .ci/install-debian-deps.sh PACKAGE...
#
# Fast path: when every package is already installed, prints nothing and makes
# no apt call. Otherwise runs "apt-get update" once, then
# "apt-get install -y --no-install-recommends" for the missing packages,
# as root directly or through sudo. Without root and without sudo, lists the
# missing packages and exits 1.
set -euo pipefail

prog=install-debian-deps

if [[ $# -eq 0 ]]; then
    echo "usage: $0 PACKAGE..." >&2
    exit 2
fi

missing=()
for pkg in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "$prog: missing Debian packages: ${missing[*]}" >&2
    echo "$prog: not root and sudo is not available; install them with:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "$prog: installing missing packages: ${missing[*]}" >&2
"${as_root[@]}" apt-get update
# sudo resets the environment by default, so pass DEBIAN_FRONTEND via env.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
