#!/usr/bin/env bash
# The C kernels under AddressSanitizer and UndefinedBehaviorSanitizer: build cgdn with
# gcc's -fsanitize=address,undefined (CGDN_SANITIZE in setup.py; frame pointers, debug
# information, undefined behaviour not recoverable), then run the tests that drive the
# kernels, the plain path, the careful path, the threads, the density functions and the
# file reader, once per kernel variant (CGDN_ISA), the emulated "wide" one included.
# Any report ends the run with a non-zero status.
#
#   tools/check_sanitizers.sh                # every variant the CPU runs, and wide
#   tools/check_sanitizers.sh avx2           # the variants named (.ci/run: the best one)
#   CGDN_SANITIZER_TESTS="tests/test_kernels.py" tools/check_sanitizers.sh baseline
#
# Python itself is not instrumented, so the sanitizers' runtimes are preloaded
# (LD_PRELOAD: ASan must come first in the process). detect_leaks=0: the interpreter
# keeps allocations alive until exit by design (interned objects, module state), which
# LeakSanitizer would report as leaks that are not cgdn's; cgdn's memory is checked by
# the RSS tests instead. Each run clones the committed HEAD into a temporary folder.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cgdn-sanitize.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
TESTS=${CGDN_SANITIZER_TESTS:-"tests/test_kernels.py tests/test_golden.py tests/test_apply_gdn.py tests/test_plain_path.py tests/test_hostile.py tests/test_adversarial.py tests/test_unaligned.py tests/test_guard_pages.py tests/test_threads.py tests/test_density.py tests/test_files.py"}

echo "== cloning $(git -C "$REPO" rev-parse --short HEAD) into $WORK"
git clone -q "$REPO" "$WORK/cgdn"
cd "$WORK/cgdn"
python3 -m venv .venv
. .venv/bin/activate
started=$(date +%s)
# the variants to test: those named, or every one this CPU runs and the emulated wide;
# only they (and the baseline) are built, the sanitizers making each unit slow to compile
variants=("$@")
if [ ${#variants[@]} -eq 0 ]; then
    variants=(baseline wide)
    if [ "$(uname -m)" = x86_64 ]; then
        flags=$(grep -m1 '^flags' /proc/cpuinfo)
        [[ " $flags " == *" avx2 "* && " $flags " == *" fma "* ]] && variants=(avx2 "${variants[@]}")
        [[ " $flags " == *" avx512f "* && " $flags " == *" avx512bw "* && " $flags " == *" avx512dq "* \
           && " $flags " == *" avx512vl "* ]] && variants=(avx512 "${variants[@]}")
    else
        variants=(neon)
    fi
fi
wide=0
if [[ " ${variants[*]} " == *" wide "* ]]; then wide=1; fi
CGDN_VARIANTS=$(IFS=,; echo "${variants[*]}") CGDN_SANITIZE=address,undefined \
    CGDN_WIDE_EMULATION=$wide pip install -q -e '.[test]' 2>&1 \
    | grep -v "WARNING: Location" || true
echo "== built in $(( $(date +%s) - started )) s"

preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
for isa in "${variants[@]}"; do
    echo "== CGDN_ISA=$isa under ASan + UBSan"
    started=$(date +%s)
    status=0
    # shellcheck disable=SC2086
    CGDN_ISA=$isa LD_PRELOAD="$preload" python -m pytest -q -p no:cacheprovider \
        -o addopts="" $TESTS > "$WORK/$isa.log" 2>&1 || status=$?
    tail -3 "$WORK/$isa.log"
    if [ "$status" -ne 0 ] || grep -q -E "ERROR: AddressSanitizer|runtime error:" "$WORK/$isa.log"; then
        # a report ends the process at once: show it (and the failing tests, if any)
        grep -A30 -E "ERROR: AddressSanitizer|runtime error:|^FAILED" "$WORK/$isa.log" | head -80 || true
        echo "== sanitizer check FAILED for $isa (pytest status $status)"
        exit 1
    fi
    echo "== $isa: no reports ($(( $(date +%s) - started )) s)"
done
echo "== sanitizer check passed: ${variants[*]}"
