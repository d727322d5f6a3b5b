/*
 * A small app on the FieldSync C API: two tablets (replicas), one server.
 * Tablet A records a store check offline and syncs; tablet B syncs and its
 * observer sees the check arrive. Copy this as a starting point.
 *
 *   sync_example ws://127.0.0.1:8765/ schema/field_sales.json /tmp/work
 */
#include <fieldsync/fieldsync.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char* read_file(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  *len = (size_t)n;
  return buf;
}

static int remote_changes = 0;

/* Called after a change commits; events_json is borrowed. */
static void on_change(void* context, const char* events_json, size_t len) {
  (void)context;
  printf("observer: %.*s\n", (int)len, events_json);
  if (strstr(events_json, "\"remote\":true")) remote_changes++;
}

static int fail(const char* what, const fs_error* err) {
  fprintf(stderr, "%s failed: code %d: %s\n", what, err->code, err->message);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s URL SCHEMA_JSON WORK_DIR\n", argv[0]);
    return 2;
  }
  const char* url = argv[1];
  size_t schema_len = 0;
  char* schema = read_file(argv[2], &schema_len);
  if (!schema) return fail("reading the schema", &(fs_error){FS_ERR_IO, "cannot read file"});
  char path_a[1024], path_b[1024];
  snprintf(path_a, sizeof path_a, "%s/tablet-a.db", argv[3]);
  snprintf(path_b, sizeof path_b, "%s/tablet-b.db", argv[3]);

  fs_error err;
  fs_replica* a = fs_replica_open(path_a, schema, schema_len, &err);
  if (!a) return fail("open A", &err);
  fs_replica* b = fs_replica_open(path_b, schema, schema_len, &err);
  if (!b) return fail("open B", &err);
  free(schema);
  printf("FieldSync %s, protocol %d\n", fs_version(), fs_protocol_version());

  uint64_t token = fs_observer_add(b, on_change, NULL, &err);
  if (!token) return fail("observe B", &err);

  /* Offline on tablet A: one store check with one line, in a transaction. */
  char* check_id = fs_new_id();
  char fields[256];
  fs_txn* t = fs_txn_begin(a, &err);
  if (!t) return fail("begin", &err);
  snprintf(fields, sizeof fields, "{\"status\":\"submitted\",\"checked_at\":\"2026-11-23\"}");
  fs_txn_put(t, "store_checks", check_id, fields, (size_t)-1, &err);
  snprintf(fields, sizeof fields, "{\"store_check_id\":\"%s\",\"facings\":4,\"stock_status\":\"short\"}", check_id);
  fs_txn_put(t, "store_check_lines", "line-1", fields, (size_t)-1, &err);
  if (!fs_txn_commit(t, &err)) return fail("commit", &err);

  fs_sync_report rep;
  if (!fs_sync_once(a, url, &rep, &err)) return fail("sync A", &err);
  printf("A pushed %lld changes\n", (long long)rep.pushed);
  if (!fs_sync_once(b, url, &rep, &err)) return fail("sync B", &err);
  printf("B pulled %lld changes\n", (long long)rep.pulled);

  size_t len = 0;
  char* row = fs_get(b, "store_checks", check_id, &len, &err);
  if (!row) return fail("get on B", &err);
  printf("B sees: %s\n", row);
  fs_free(row);
  fs_free(check_id);

  fs_observer_remove(b, token);
  fs_replica_free(a);
  fs_replica_free(b);
  if (remote_changes == 0) {
    fprintf(stderr, "the observer saw no remote change\n");
    return 1;
  }
  printf("ok\n");
  return 0;
}
