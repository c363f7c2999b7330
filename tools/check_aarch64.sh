#!/usr/bin/env bash
# Build and test cgdn on arm64 Linux under emulation (qemu-user + binfmt), as root.
#
#   sudo tools/check_aarch64.sh            # build the arm64 root once, then test HEAD
#   CGDN_ARM64_ROOT=/path tools/check_aarch64.sh
#   tools/check_aarch64.sh -k golden       # extra arguments go to pytest
#
# The root (Debian bookworm, arm64, minbase) is made with debootstrap on first use and
# kept in $CGDN_ARM64_ROOT (default ~/.cache/cgdn-arm64-root). Each run clones the
# committed HEAD of this checkout into it, creates a fresh venv, installs the package
# with its test extra (which builds the NEON kernels) and runs the test suite. Timings
# under emulation mean nothing; the point is correctness on aarch64.
#
# Needs, on the host: debootstrap, qemu-user-static and binfmt-support (Debian packages).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="${CGDN_ARM64_ROOT:-$HOME/.cache/cgdn-arm64-root}"
SUITE="${CGDN_ARM64_SUITE:-bookworm}"
MIRROR="${CGDN_ARM64_MIRROR:-http://deb.debian.org/debian}"

if [ "$(id -u)" != 0 ]; then
    echo "check_aarch64.sh: run as root (debootstrap, chroot and binfmt need it)" >&2
    exit 2
fi
for tool in debootstrap update-binfmts qemu-aarch64-static; do
    command -v "$tool" >/dev/null || {
        echo "check_aarch64.sh: $tool not found; apt-get install debootstrap qemu-user-static binfmt-support" >&2
        exit 2
    }
done

# binfmt: the kernel hands arm64 binaries to qemu-aarch64-static.
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true

if [ ! -x "$ROOT/usr/bin/python3" ]; then
    echo "== building the arm64 root in $ROOT (once)"
    rm -rf "$ROOT"
    mkdir -p "$ROOT"
    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,python3-dev,gcc,g++,libgomp1,git,ca-certificates \
        "$SUITE" "$ROOT" "$MIRROR"
fi

# Network and pip settings of the host (certificates, indexes) go into the root.
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
fi
for conf in /etc/pip.conf /etc/xdg/pip/pip.conf; do
    if [ -f "$conf" ]; then
        mkdir -p "$ROOT$(dirname "$conf")"
        # local wheel folders of the host do not exist in the root: keep index settings only
        grep -v -E '^(find-links|extra-index-url|constraint)' "$conf" > "$ROOT$conf" || true
    fi
done

cleanup() {
    for m in dev proc; do
        mountpoint -q "$ROOT/$m" && umount -l "$ROOT/$m" || true
    done
}
trap cleanup EXIT
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"

echo "== cloning $(git -C "$REPO" rev-parse --short HEAD) into the root"
rm -rf "$ROOT/work/cgdn"
mkdir -p "$ROOT/work"
git clone -q "$REPO" "$ROOT/work/cgdn"

# quoted for the inner shell, so that -k "a or b" stays one argument
PYTEST_ARGS=""
[ $# -gt 0 ] && PYTEST_ARGS=$(printf '%q ' "$@")
chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
    /bin/bash -c "
set -euo pipefail
cd /work/cgdn
uname -m
python3 -m venv .venv
. .venv/bin/activate
pip install -q -e '.[test,dask]'
python -m cgdn info
python -m pytest -p no:cacheprovider $PYTEST_ARGS
"
