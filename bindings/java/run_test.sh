#!/usr/bin/env bash
# The Java binding's end-to-end test (ctest JavaBinding.EndToEnd): starts a
# real server on a free port, runs io.fieldsync.EndToEndTest against it,
# stops the server with SIGTERM and exits with the test's status.
#   run_test.sh FIELDSYNC_CLI CLASSPATH LIBRARY_PATH SCHEMA
# CLASSPATH: fieldsync.jar and the test jar; LIBRARY_PATH: the directories of
# libfieldsync_jni.so and libfieldsync.so (both ':'-separated). $JAVA picks
# the java launcher (default: java on PATH).
set -uo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 FIELDSYNC_CLI CLASSPATH LIBRARY_PATH SCHEMA" >&2
  exit 2
fi
cli=$1 classpath=$2 libpath=$3 schema=$4
java=${JAVA:-java}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fieldsync-java.XXXXXX")
server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null
  for _ in $(seq 100); do  # 10 s for a clean stop, then no more waiting
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "run_test.sh: the server did not stop on SIGTERM; killing it" >&2
    kill -KILL "$server_pid" 2>/dev/null
  fi
  wait "$server_pid" 2>/dev/null
  server_pid=""
}
trap 'stop_server; rm -rf "$tmp"' EXIT

"$cli" server --data "$tmp/server" --port 0 --schema "$schema" >"$tmp/server.log" 2>&1 &
server_pid=$!

url=""
for _ in $(seq 100); do  # up to 10 s for the "listening on ws://..." line
  url=$(grep -o 'ws://127\.0\.0\.1:[0-9]*/' "$tmp/server.log" | head -n 1)
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "run_test.sh: the server did not start:" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi
echo "server: $url"

mkdir -p "$tmp/replicas"
# -Xcheck:jni: the JVM checks every JNI call; a warning of it fails the test.
"$java" -Xcheck:jni -Djava.library.path="$libpath" -cp "$classpath" io.fieldsync.EndToEndTest \
  "$url" "$schema" "$tmp/replicas" 2>&1 | tee "$tmp/java.log"
status=${PIPESTATUS[0]}
if [ $status -eq 0 ] && grep -q -e "in native method" -e "JNI local refs" "$tmp/java.log"; then
  echo "run_test.sh: -Xcheck:jni reported a misuse of JNI (above)" >&2
  status=1
fi

stop_server
if [ $status -ne 0 ]; then
  echo "--- server log ---" >&2
  cat "$tmp/server.log" >&2
fi
exit $status
