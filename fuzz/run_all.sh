#!/usr/bin/env bash
# Run every fuzz harness for SECONDS each (default 20) from its seed corpus, with a per-input
# time limit and a memory limit; exit non-zero on the first crash, leak of memory or slow input
# (libFuzzer saves it as ARTIFACTS/<harness>-crash-..., default a temporary directory: copy it
# into fuzz/regressions/<harness>/ so tests/test_fuzz_regressions.py replays it).
# Without atheris (unsupported platform, not installed) it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
python="${PYTHON:-python}"

if ! "$python" -c "import atheris" 2>/dev/null; then
  echo "fuzz: atheris is not installed for $python (pip install atheris); skipping the fuzz run"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/hashmatch-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
artifacts="${FUZZ_ARTIFACTS:-$work/artifacts}"
mkdir -p "$artifacts"

for harness in formats from_hex load vpdq; do
  mkdir -p "$work/$harness"  # new inputs go here, not into the committed seeds
  echo "fuzz: $harness for ${seconds}s"
  if ! "$python" "fuzz/fuzz_$harness.py" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2560 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$harness-" "$work/$harness" "fuzz/corpus/$harness" \
      >"$work/$harness.log" 2>&1; then
    tail -n 60 "$work/$harness.log"
    echo "fuzz: $harness FAILED; the input is in $artifacts:"
    ls -l "$artifacts"
    if [[ -z "${FUZZ_ARTIFACTS:-}" ]]; then  # the temporary directory goes: show the input
      for crash in "$artifacts"/*; do echo "$crash (base64):"; base64 "$crash" | head -c 4000; echo; done
    fi
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^Done [0-9]+ runs" "$work/$harness.log" || true
done
echo "fuzz: no crash in ${seconds}s per harness"
