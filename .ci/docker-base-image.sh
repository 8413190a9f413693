#!/usr/bin/env bash
# Build, once, the CI-only base image that stands in for python:3.11-slim-bookworm, and print its name.
#
# Usage: .ci/docker-base-image.sh          (as root; needs docker and debootstrap)
#
# No image registry is reachable from CI, so the base is made here: debootstrap a minimal Debian from the
# mirror apt already uses, `docker import` it as local/debian:bookworm, then add python3 and a venv on PATH
# (python and pip as in the official image). pip inside later builds must trust the host's CA bundle, so
# this image carries it and sets PIP_CERT: it exists only in CI and never ships. Both images are cached by
# tag: a second run prints the name and builds nothing; `docker rmi` one to rebuild it.
set -euo pipefail

BASE=local/debian:bookworm
PYTHON_BASE=local/stagebackup-ci-python:bookworm
# Debian's client first (a newer one elsewhere on PATH may lack the legacy builder's defaults).
docker=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}

have_image() { "$docker" image inspect "$1" >/dev/null 2>&1; }

debian_mirror() {
    # The first deb mirror of the host's own apt sources (deb822 or one-line format); never written to a file.
    local sources=/etc/apt/sources.list.d/debian.sources
    if [[ -r $sources ]]; then
        awk '/^URIs:/ { print $2; exit }' "$sources"
    else
        awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list
    fi
}

build_debian() {
    local root=$work/root mirror
    mirror=$(debian_mirror)
    [[ -n $mirror ]] || { echo "docker-base-image: no Debian mirror in the host's apt sources" >&2; exit 1; }
    echo "docker-base-image: debootstrap bookworm (about 30 s)" >&2
    debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
    tar -C "$root" -c . | "$docker" import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - "$BASE" >/dev/null
}

build_python_base() {
    local context=$work/context
    mkdir "$context"
    cp /etc/ssl/certs/ca-certificates.crt "$context/host-ca.crt"
    cat >"$context/Dockerfile" <<EOF
FROM $BASE
RUN apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        python3 python3-venv ca-certificates tzdata \\
    && rm -rf /var/lib/apt/lists/* \\
    && python3 -m venv /usr/local/python
COPY host-ca.crt /usr/local/share/ci-host-ca.crt
ENV PATH=/usr/local/python/bin:\$PATH PIP_CERT=/usr/local/share/ci-host-ca.crt
EOF
    echo "docker-base-image: building $PYTHON_BASE (about 20 s)" >&2
    DOCKER_BUILDKIT=0 "$docker" build -q -t "$PYTHON_BASE" "$context" >/dev/null
}

if ! have_image "$PYTHON_BASE"; then
    work=$(mktemp -d /var/tmp/stagebackup-docker-base.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    have_image "$BASE" || build_debian
    build_python_base
fi
echo "$PYTHON_BASE"
