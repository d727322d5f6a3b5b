/*
 * FieldSync C API: the embeddable offline-first replica, for apps written in
 * any language (Swift/Objective-C, Java/Kotlin via JNI, C).
 *
 * Contract (docs/c-api.md has every function in detail):
 *  - Handles are opaque. Whoever creates a handle frees it with the matching
 *    function: fs_replica_free, fs_txn_commit/fs_txn_abort, fs_result_free.
 *    Strings this library returns as `char*` are the caller's, freed with
 *    fs_free. `const char*` results are borrowed: valid until the named call.
 *  - Every call that can fail returns false or NULL and, when `err` is not
 *    NULL, fills it with a code (FS_* below) and a NUL-terminated message.
 *    No C++ exception ever crosses this boundary.
 *  - Strings are UTF-8. JSON arguments are given with their length (a length
 *    of (size_t)-1 means NUL-terminated); records are JSON objects.
 *  - Threads: a replica may be used from any thread; calls on one replica are
 *    serialized inside the library. Observer callbacks run on the thread
 *    whose write or sync produced the change (the caller's thread for local
 *    writes, the background sync thread for remote changes), after the
 *    change is committed; a callback may call back into the replica but must
 *    not close or free it. A transaction handle belongs to one thread at a
 *    time and must be committed or aborted before its replica is freed.
 *  - Closing, like sqlite3_close: the app makes sure no other call on the
 *    same replica is running when it calls fs_replica_close/fs_replica_free
 *    (calls made after the close fail with FS_ERR_CLOSED). fs_sync_stop may
 *    be called from an observer, even on the sync thread itself.
 *    fs_observer_remove does not wait for a callback already running on
 *    another thread: keep its context alive until that callback has returned
 *    (at the latest, until the replica is closed).
 *  - A NULL or closed handle gets FS_ERR_INVALID_ARGUMENT / FS_ERR_CLOSED,
 *    never a crash.
 */
#ifndef FIELDSYNC_FIELDSYNC_H_
#define FIELDSYNC_FIELDSYNC_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define FS_API __declspec(dllexport)
#else
#define FS_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: the same numbers as the wire protocol's (docs/protocol.md). */
enum {
  FS_OK = 0,
  FS_ERR_INVALID_ARGUMENT = 1,
  FS_ERR_NOT_FOUND = 2,
  FS_ERR_SCHEMA_VIOLATION = 3,
  FS_ERR_CORRUPTION = 4,
  FS_ERR_IO = 5,
  FS_ERR_PROTOCOL = 6,
  FS_ERR_LIMIT_EXCEEDED = 7,
  FS_ERR_CLOCK_SKEW = 8,
  FS_ERR_UNSUPPORTED = 9,
  FS_ERR_BUSY = 10,
  FS_ERR_CLOSED = 11,
  FS_ERR_PERMISSION_DENIED = 12,
  FS_ERR_DELETED = 13,
  FS_ERR_UNAUTHENTICATED = 14, /* the server refused the token: sign in again */
  FS_ERR_FROZEN = 15           /* the record was submitted: change it as a new revision */
};

typedef struct fs_error {
  int code;          /* FS_OK or an FS_ERR_* */
  char message[512]; /* NUL-terminated, truncated if longer */
} fs_error;

typedef struct fs_replica fs_replica; /* an open local replica */
typedef struct fs_txn fs_txn;         /* writes applied together, all or nothing */
typedef struct fs_result fs_result;   /* rows returned by a query */

/* ---- library ---------------------------------------------------------- */
FS_API const char* fs_version(void);     /* "0.1.0"; static storage */
FS_API int fs_protocol_version(void);    /* the wire protocol version spoken */
FS_API void fs_free(void* p);            /* frees a char* this library returned */
FS_API char* fs_new_id(void);            /* a fresh UUIDv4; free with fs_free */

/* ---- open and close ----------------------------------------------------- */
/* Opens or creates the replica file at `path` for the schema document
 * `schema_json` (the JSON of schema/field_sales.json or your own). */
FS_API fs_replica* fs_replica_open(const char* path, const char* schema_json, size_t schema_len, fs_error* err);
/* Stops background sync, waits for it, and closes the file. The handle stays
 * valid: later calls fail with FS_ERR_CLOSED until fs_replica_free. Closing
 * twice is harmless. */
FS_API bool fs_replica_close(fs_replica* r, fs_error* err);
/* Closes if still open and frees the handle. NULL is a no-op. */
FS_API void fs_replica_free(fs_replica* r);
/* The replica's node id as 16 hex digits, or NULL; borrowed until close. */
FS_API const char* fs_replica_node(fs_replica* r);

/* ---- records ------------------------------------------------------------ */
/* Sets the given fields of one row, creating it: fields_json is an object
 * {column: value}. Set columns take the member list; counters the total. */
FS_API bool fs_put(fs_replica* r, const char* table, const char* id, const char* fields_json, size_t len,
                   fs_error* err);
FS_API bool fs_delete(fs_replica* r, const char* table, const char* id, fs_error* err);
FS_API bool fs_increment(fs_replica* r, const char* table, const char* id, const char* column, double delta,
                         fs_error* err);
/* The row as a JSON object; free with fs_free. *out_len may be NULL. */
FS_API char* fs_get(fs_replica* r, const char* table, const char* id, size_t* out_len, fs_error* err);
/* Rows of `table` matching query_json (may be NULL):
 * {"where": {column: value...}, "order_by": "col", "descending": bool,
 *  "limit": n, "offset": n}. */
FS_API fs_result* fs_query(fs_replica* r, const char* table, const char* query_json, size_t len, fs_error* err);
FS_API size_t fs_result_count(const fs_result* res);
/* Row i as a JSON object, borrowed until fs_result_free; NULL past the end. */
FS_API const char* fs_result_row(const fs_result* res, size_t i, size_t* out_len);
FS_API void fs_result_free(fs_result* res);

/* ---- transactions ----------------------------------------------------------- */
/* Collects writes; fs_txn_commit applies them in one SQLite transaction
 * (all or nothing) and frees the handle, whatever the outcome.
 * fs_txn_abort frees it without writing. */
FS_API fs_txn* fs_txn_begin(fs_replica* r, fs_error* err);
FS_API bool fs_txn_put(fs_txn* t, const char* table, const char* id, const char* fields_json, size_t len,
                       fs_error* err);
FS_API bool fs_txn_delete(fs_txn* t, const char* table, const char* id, fs_error* err);
FS_API bool fs_txn_increment(fs_txn* t, const char* table, const char* id, const char* column, double delta,
                             fs_error* err);
FS_API bool fs_txn_add_member(fs_txn* t, const char* table, const char* id, const char* column, const char* member,
                              fs_error* err);
FS_API bool fs_txn_remove_member(fs_txn* t, const char* table, const char* id, const char* column,
                                 const char* member, fs_error* err);
FS_API bool fs_txn_commit(fs_txn* t, fs_error* err);
FS_API void fs_txn_abort(fs_txn* t);

/* ---- observers ----------------------------------------------------------------- */
/* events_json: [{"table": t, "id": id, "deleted": bool, "remote": bool}, ...],
 * borrowed for the duration of the call. */
typedef void (*fs_observer_fn)(void* context, const char* events_json, size_t len);
/* Returns a token (> 0) for fs_observer_remove, or 0 on error. */
FS_API uint64_t fs_observer_add(fs_replica* r, fs_observer_fn fn, void* context, fs_error* err);
FS_API void fs_observer_remove(fs_replica* r, uint64_t token);

/* ---- sync ------------------------------------------------------------------------- */
typedef struct fs_sync_report {
  int64_t pushed, rejected, restamped, pulled, bytes_sent, bytes_received, cursor;
} fs_sync_report;
/* The bearer token the server issued for this user and device, and the PEM
 * CA file that verifies a wss:// server (NULL or "" = the system's trust
 * store). Used by every later sync; a refused token fails a sync with
 * FS_ERR_UNAUTHENTICATED and stops background sync. Copied. */
FS_API bool fs_set_credentials(fs_replica* r, const char* token, const char* tls_ca_file, fs_error* err);
/* Leaving the device without losing anything (docs/c-api.md 2.9). Writes the
 * unacknowledged changes to `path` (JSON Lines) for `fieldsync import-outbox`;
 * *count (may be NULL) gets how many. */
FS_API bool fs_export_outbox(fs_replica* r, const char* path, int64_t* count, fs_error* err);
/* Stops background sync and forgets the token; FS_ERR_BUSY while changes
 * are unacknowledged, unless force. */
FS_API bool fs_sign_out(fs_replica* r, bool force, fs_error* err);
/* Deletes a replica file nobody has open; FS_ERR_BUSY while it holds
 * unacknowledged changes, unless force. schema_len (size_t)-1: NUL-terminated. */
FS_API bool fs_replica_delete(const char* path, const char* schema_json, size_t schema_len, bool force, fs_error* err);
/* One exchange with the server at `url` (ws://host:port/ or wss://). report may be NULL. */
FS_API bool fs_sync_once(fs_replica* r, const char* url, fs_sync_report* report, fs_error* err);
/* Background sync: keeps a connection, pushes writes as they happen,
 * receives live changes, reconnects with backoff. */
FS_API bool fs_sync_start(fs_replica* r, const char* url, fs_error* err);
FS_API void fs_sync_stop(fs_replica* r);
/* {"state": "idle|connecting|syncing|live|backoff|paused|stopped", "reason",
 *  "pending", "cursor", "last_sync_ms", "last_error", "attempts", "progress_rows", "progress_total_rows",
 *  "progress_bytes" (a snapshot loading: rows of how many, bytes so far)}; free with fs_free. */
FS_API char* fs_sync_status(fs_replica* r, fs_error* err);

/* ---- mobile lifecycle ---------------------------------------------------------------- */
/* The app went to the background (pause background sync, keep its place and
 * hold no transaction) or came to the foreground (resume at once). */
FS_API void fs_app_background(fs_replica* r);
FS_API void fs_app_foreground(fs_replica* r);
/* The OS reports the network up (reconnect now, skipping any backoff) or down. */
FS_API void fs_network_changed(fs_replica* r, bool available);

/* ---- conflicts and refusals ---------------------------------------------------------------- */
/* JSON array of conflict records (see docs/merge.md); free with fs_free. */
FS_API char* fs_conflicts(fs_replica* r, bool include_resolved, fs_error* err);
/* Writes the lost value back; for a deleted row, into a new row whose id is
 * returned in *new_id (free with fs_free) when new_id is not NULL. */
FS_API bool fs_conflict_restore(fs_replica* r, int64_t id, char** new_id, fs_error* err);
FS_API bool fs_conflict_dismiss(fs_replica* r, int64_t id, fs_error* err);
/* JSON array of changes the server refused, with code and message. */
FS_API char* fs_rejections(fs_replica* r, fs_error* err);

#ifdef __cplusplus
}
#endif

#endif /* FIELDSYNC_FIELDSYNC_H_ */
