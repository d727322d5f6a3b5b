#!/usr/bin/env bash
# Runs the test suite under sanitizers, each in its own build directory:
#   tools/sanitize.sh asan   AddressSanitizer + UndefinedBehaviorSanitizer, leak detection, whole suite
#   tools/sanitize.sh tsan   ThreadSanitizer, the tests that run the server's io threads,
#                            live sync and the C API's background sync
#   tools/sanitize.sh        both
# Takes a while on 2 cores (each build is a full build); not part of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
what=${1:-all}

if [ "$what" = asan ] || [ "$what" = all ]; then
  cmake -S . -B build-asan -DFIELDSYNC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DFIELDSYNC_BUILD_JAVA=OFF >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs"
fi
if [ "$what" = tsan ] || [ "$what" = all ]; then
  cmake -S . -B build-tsan -DFIELDSYNC_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFIELDSYNC_BUILD_JAVA=OFF >/dev/null
  cmake --build build-tsan -j"$jobs" --target e2e_tests c_api_tests fieldsync
  # halt_on_error: a data race fails the test that found it.
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --test-dir build-tsan --output-on-failure -j"$jobs" \
      -R '^(LiveSync|Convergence|AllOrders|Durability|ClockSkew|LimitsTest|BadInputTest|Compaction|CApi)\.'
fi
