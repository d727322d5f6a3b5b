#!/usr/bin/env bash
# Installs the package into a temporary prefix, builds the C example
# against it twice (pkg-config, and CMake's find_package), starts a real
# server process and runs the example through it.
set -euo pipefail
build_dir=$1 cli=$2 source_dir=$3
work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
libdir=$(ls -d "$work"/prefix/lib*/ | head -1)
test -f "$work/prefix/include/fieldsync/fieldsync.h"
test -f "$libdir/pkgconfig/fieldsync.pc"

PKG_CONFIG_PATH="$libdir/pkgconfig" cc -std=c11 -Wall -Werror -o "$work/example_pc" \
  "$source_dir/examples/c/sync_example.c" $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs fieldsync)
cmake -S "$source_dir/examples/c" -B "$work/example_build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/example_build" >/dev/null

mkdir -p "$work/data" "$work/run1" "$work/run2"
"$cli" server --data "$work/data" --port 0 > "$work/server.out" 2>/dev/null &
server_pid=$!
for _ in $(seq 1 100); do grep -q 'ws://' "$work/server.out" && break; sleep 0.05; done
url=$(grep -o 'ws://[0-9.]*:[0-9]*/' "$work/server.out" | head -1)
test -n "$url"

LD_LIBRARY_PATH="$libdir" "$work/example_pc" "$url" "$source_dir/schema/field_sales.json" "$work/run1"
LD_LIBRARY_PATH="$libdir" "$work/example_build/sync_example" "$url" "$source_dir/schema/field_sales.json" "$work/run2"

# The Java binding from the same installed package: the test program is
# compiled against the installed jar and loads the installed JNI library.
jar=$(ls "$work"/prefix/share/java/fieldsync-*.jar 2>/dev/null | head -1 || true)
if [ -n "$jar" ] && command -v javac >/dev/null; then
  mkdir -p "$work/javatest"
  javac -cp "$jar" -d "$work/javatest" "$source_dir/bindings/java/src/test/java/io/fieldsync/EndToEndTest.java"
  LD_LIBRARY_PATH="$libdir" "$source_dir/bindings/java/run_test.sh" "$cli" "$jar:$work/javatest" "$libdir" \
    "$source_dir/schema/field_sales.json" > "$work/java.out" 2>&1 || { cat "$work/java.out"; exit 1; }
  grep -q "0 failed" "$work/java.out"
  echo "java binding from the installed package: $(grep -o '[0-9]* passed, 0 failed' "$work/java.out")"
fi
