#!/usr/bin/env bash
# Test AVX-512's blockings on a CPU without AVX-512: build cgdn with an extra kernel
# variant, "wide", compiled against cgdn/simd/vec_wide.h (32 registers of 16 float /
# 8 double lanes, reciprocal estimates cut to 14 bits and refined by a Newton step,
# lane permutes: AVX-512's shape, in portable C), and run the test suite on it.
#
#   tools/check_wide.sh                 # test HEAD
#   tools/check_wide.sh -k kernels      # extra arguments go to pytest
#
# Each run clones the committed HEAD of this checkout into a temporary folder, creates a
# fresh venv, installs the package with CGDN_WIDE_EMULATION=1 and runs the suite with
# CGDN_ISA=wide, so that the public functions and every per-variant test use the
# emulated variant (the per-variant tests also run the CPU's own variants). What this
# checks: the code that depends on the register count and the lane count (rows per
# block, panels, one-pass paths, tails and padding lanes) at AVX-512's values. What it
# cannot check: AVX-512's own intrinsics in cgdn/simd/vec_avx512.h (an AVX-512 CPU runs
# those in the ordinary test suite). Timings mean nothing.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cgdn-wide.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "== cloning $(git -C "$REPO" rev-parse --short HEAD) into $WORK"
git clone -q "$REPO" "$WORK/cgdn"
cd "$WORK/cgdn"
python3 -m venv .venv
. .venv/bin/activate
CGDN_WIDE_EMULATION=1 pip install -q -e '.[test,dask]'
CGDN_ISA=wide python -m cgdn info
python -c "from cgdn import _isa; assert 'wide' in _isa.available(), _isa.available()"
CGDN_ISA=wide python -m pytest -p no:cacheprovider "$@"
