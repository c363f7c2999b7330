#!/usr/bin/env bash
# Fuzz cgdn's parameter-file readers (fuzz/fuzz_files.py, atheris) for a given time.
#
#   tools/run_fuzz.sh 60          # one minute (.ci/run)
#   tools/run_fuzz.sh 1800        # half an hour
#
# The seed corpus is written fresh by fuzz/make_corpus.py into a temporary folder (the
# fuzzer adds the inputs it finds there). A crash, a slow input or a memory bound
# exceeded stops the run with a non-zero status and leaves the input as
# fuzz/crash-<hash> (or timeout-/oom-): minimize it (-minimize_crash=1), add it to
# tests/fuzz_regressions/ and fix the reader. Needs the package installed and atheris
# (installed here if missing).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_TO_RUN=${1:-60}
python -c "import atheris" 2>/dev/null || pip install -q atheris
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cgdn-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
python "$REPO/fuzz/make_corpus.py" "$WORK/corpus"
cd "$REPO/fuzz"
status=0
python fuzz_files.py "$WORK/corpus" -max_total_time="$SECONDS_TO_RUN" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 > "$WORK/fuzz.log" 2>&1 || status=$?
grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|stat::|ERROR|Error|Test unit|Traceback" "$WORK/fuzz.log" || true
if [ "$status" -ne 0 ]; then tail -40 "$WORK/fuzz.log"; fi
echo "== fuzzing: status $status, $(ls "$WORK/corpus" | wc -l) corpus inputs"
exit "$status"
