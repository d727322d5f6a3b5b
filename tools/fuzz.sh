#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ into build-fuzz/ and runs each
# for SECONDS (default 30) from its seed corpus tests/fuzz/corpus/<target>/.
#
#   tools/fuzz.sh [SECONDS]
#
# Needs clang++ (with libFuzzer), nlohmann-json3-dev and libzstd-dev. Builds
# one compile at a time (sync/*.cc are compiled directly, with coverage and
# ASan/UBSan, not through CMake) and only what is older than its sources.
# UBSan findings abort (-fno-sanitize-recover), so they count as crashes.
#
# New inputs the fuzzer finds go to build-fuzz/corpus/<target>/ (the seed
# directories stay as checked in). A crash leaves its input in
# build-fuzz/artifacts/<target>/crash-<sha1> (or leak-/timeout-/oom-), and the
# log in build-fuzz/logs/<target>.log; reproduce it with
#   build-fuzz/<target> build-fuzz/artifacts/<target>/crash-...
# (fuzz_change: with FIELDSYNC_SCHEMA=schema/field_sales.json set, as here).
# Every target runs even when an earlier one crashed; the exit status is
# non-zero when any build failed or any target crashed.
set -euo pipefail

SECONDS_EACH="${1:-30}"
if ! [[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || [ "$SECONDS_EACH" -lt 1 ]; then
  echo "usage: tools/fuzz.sh [SECONDS]" >&2
  exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT=build-fuzz
CXX="${CXX:-clang++}"
TARGETS=(fuzz_frame fuzz_change fuzz_merge fuzz_snapshot)
COMMON=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=undefined -I.)
LIB_FLAGS=(-fsanitize=fuzzer-no-link,address,undefined)   # sync/ objects: instrumented, no main
TARGET_FLAGS=(-fsanitize=fuzzer,address,undefined)        # the targets: libFuzzer's main

command -v "$CXX" >/dev/null || { echo "fuzz.sh: $CXX not found (apt-get install clang)" >&2; exit 1; }
mkdir -p "$OUT/obj" "$OUT/logs"

# True when $1 is missing or older than any of the remaining files.
stale() {
  local target="$1"; shift
  [ -e "$target" ] || return 0
  local f
  for f in "$@"; do [ "$f" -nt "$target" ] && return 0; done
  return 1
}

HEADERS=(sync/*.h tools/fuzz.sh)
OBJS=()
for src in sync/*.cc; do
  obj="$OUT/obj/$(basename "${src%.cc}").o"
  OBJS+=("$obj")
  if stale "$obj" "$src" "${HEADERS[@]}"; then
    echo "== compile $src"
    "$CXX" "${COMMON[@]}" "${LIB_FLAGS[@]}" -c "$src" -o "$obj"
  fi
done

for t in "${TARGETS[@]}"; do
  src="tests/fuzz/$t.cc"
  obj="$OUT/obj/$t.o"
  if stale "$obj" "$src" "${HEADERS[@]}"; then
    echo "== compile $src"
    "$CXX" "${COMMON[@]}" "${TARGET_FLAGS[@]}" -c "$src" -o "$obj"
  fi
  if stale "$OUT/$t" "$obj" "${OBJS[@]}"; then
    echo "== link $OUT/$t"
    "$CXX" "${COMMON[@]}" "${TARGET_FLAGS[@]}" "$obj" "${OBJS[@]}" -lzstd -o "$OUT/$t"
  fi
done

export FIELDSYNC_SCHEMA="$ROOT/schema/field_sales.json"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

failed=()
for t in "${TARGETS[@]}"; do
  seeds="tests/fuzz/corpus/$t"
  work="$OUT/corpus/$t"
  artifacts="$OUT/artifacts/$t"
  log="$OUT/logs/$t.log"
  mkdir -p "$work" "$artifacts"
  echo "== fuzz $t for ${SECONDS_EACH}s (log: $log)"
  set +e
  "$OUT/$t" "$work" "$seeds" \
    -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  set -e
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
  if [ "$rc" -eq 0 ]; then
    echo "   ok: ${execs:-?} executions"
  else
    echo "   CRASH (exit $rc) after ${execs:-?} executions:"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_[a-z]+:|artifact_prefix|Test unit written|.*runtime error)' "$log" | head -n 20 | sed 's/^/     /'
    failed+=("$t")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: crashed: ${failed[*]} (inputs under $OUT/artifacts/, logs under $OUT/logs/)" >&2
  exit 1
fi
echo "fuzz.sh: all ${#TARGETS[@]} targets ran ${SECONDS_EACH}s without a crash"
