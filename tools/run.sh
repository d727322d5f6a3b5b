#!/usr/bin/env bash
# One entry point for people and CI. On a fresh Debian/Ubuntu machine it
# installs what is missing (Debian packages only), builds, then:
#   ./tools/run.sh demo    the server on its embedded SQLite store + reps syncing
#   ./tools/run.sh test    the whole test suite (ctest)
#   ./tools/run.sh server  the server alone (data/ in the work tree, port 8765)
#   ./tools/run.sh build   build only
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libsqlite3-dev libboost-dev libboost-system-dev
          nlohmann-json3-dev libzstd-dev libgtest-dev libgmock-dev libssl-dev openssl
          openjdk-17-jdk-headless libbenchmark-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

build_dir=${FIELDSYNC_BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-RelWithDebInfo} >/dev/null
cmake --build "$build_dir" -j"$jobs"

case "${1:-demo}" in
  demo)   exec "$build_dir/fieldsync" demo "${@:2}" ;;
  test)   exec ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" "${@:2}" ;;
  server) exec "$build_dir/fieldsync" server "${@:2}" ;;
  build)  ;;
  *) echo "usage: $0 demo|test|server|build" >&2; exit 2 ;;
esac
