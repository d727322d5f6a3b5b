// The FieldSync client SDK: a local SQLite replica that works offline and
// syncs with a FieldSync server over WebSocket.
//
// Contract, in the spirit of LevelDB's and LiteCore's APIs:
//  - Every call that can fail returns a Status; no exception leaves the SDK.
//  - A Replica is thread-safe: calls are serialized by an internal mutex.
//  - Every write (Put, Delete, Increment, Apply(WriteBatch)) is one SQLite
//    transaction, fsync'ed before the call returns: a committed write
//    survives an app kill or power loss, and sits in the outbox until the
//    server acknowledges it.
//  - Observers are called after a change commits, outside the lock, on the
//    thread that made it: the caller's thread for local writes, the sync
//    thread for received changes. An observer may call back into the Replica.
//  - The shapes here map one to one onto the C API (fieldsync.h, later):
//    handles, JSON text values, callbacks with a context pointer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fieldsync/transport.h"
#include "store/replica_store.h"
#include "sync/schema.h"
#include "sync/status.h"

namespace fieldsync {

// One operation of a WriteBatch.
struct WriteOp {
  enum Kind { kPut, kDelete, kIncrement, kAddMember, kRemoveMember } kind = kPut;
  std::string table, id;
  json fields;           // kPut: {column: value}
  std::string column;    // kIncrement / member ops
  double delta = 0;      // kIncrement
  std::string member;    // member ops
};

// Several writes applied atomically (all or nothing) by Replica::Apply.
class WriteBatch {
 public:
  void Put(std::string table, std::string id, json fields);
  void Delete(std::string table, std::string id);
  void Increment(std::string table, std::string id, std::string column, double delta);
  void AddMember(std::string table, std::string id, std::string column, std::string member);
  void RemoveMember(std::string table, std::string id, std::string column, std::string member);
  const std::vector<WriteOp>& ops() const { return ops_; }
  void Clear() { ops_.clear(); }

 private:
  std::vector<WriteOp> ops_;
};

struct ChangeEvent {
  std::string table;
  std::string id;
  bool deleted = false;
  bool remote = false;  // arrived through sync
};
using Observer = std::function<void(const std::vector<ChangeEvent>&)>;

struct SyncOptions {
  std::string url;            // ws://host:port/ or wss://host:port/
  // The bearer token the server issued for this user and device
  // (docs/security.md); sent in the upgrade request. Empty: none (a
  // development server). A refused token fails the sync with
  // kUnauthenticated, and background sync stops instead of retrying.
  std::string token;
  std::string tls_ca_file;    // PEM CA bundle that verifies a wss:// server; empty = the system's
  // The device's local date, YYYY-MM-DD, sent by a new replica so that the
  // accounts of today's planned visits load first. Empty = today's date.
  std::string today;
  int connect_timeout_ms = 5000;
  int request_timeout_ms = 30000;
  size_t push_batch = 1000;   // changes per push message (capped by the server)
  std::string client_name = "fieldsync-sdk/0.1";
  bool msgpack = true;        // offer MessagePack (JSON is always accepted)
  // Where frames go; empty = the built-in WebSocket client for ws:// URLs.
  TransportFactory transport;
};

struct SyncReport {
  int64_t pushed = 0;     // changes acknowledged as applied or duplicate
  int64_t rejected = 0;   // changes the server refused (see Rejections())
  int64_t snapshot_rows = 0;  // rows loaded from a snapshot (a new or re-bootstrapped replica, or a scope that grew)
  int64_t evicted_rows = 0;   // rows removed because they left this device's scope (a reassignment)
  int64_t reverted_rows = 0;  // rows put back to the server's state after a refused change
  int64_t restamped = 0;  // changes re-stamped because the device clock ran ahead (on connect or after a clock_skew refusal)
  int64_t pulled = 0;     // remote changes received
  int64_t bytes_sent = 0;      // WebSocket message bytes, as sent (compressed)
  int64_t bytes_received = 0;
  int64_t payload_bytes_sent = 0;      // the same messages before compression
  int64_t payload_bytes_received = 0;
  int64_t cursor = 0;     // pull cursor after the sync
};

// What the app shows in its sync indicator. `reason` says why the state is
// what it is (never "busy" without a cause).
struct SyncStatus {
  enum class State { kIdle, kConnecting, kSyncing, kLive, kBackoff, kPaused, kStopped };
  State state = State::kIdle;
  std::string reason;
  int64_t pending = 0;        // outbox depth
  int64_t cursor = 0;         // last server position applied
  uint64_t last_sync_ms = 0;  // wall time of the last successful sync, 0 = never
  std::string last_error;     // empty when the last attempt succeeded
  // While a snapshot loads (a new device, a re-bootstrap, a scope that grew):
  // rows installed so far of how many, and bytes received so far. A new
  // device first loads the accounts of today's visits (their own total),
  // then its whole scope.
  int64_t progress_rows = 0;
  int64_t progress_total_rows = 0;
  int64_t progress_bytes = 0;
  int attempts = 0;           // consecutive failures (background mode)
};
const char* SyncStateName(SyncStatus::State s);

struct Conflict {
  int64_t id = 0;
  std::string table, row, column;
  std::string kind;        // lww, state, deleted
  json lost_value;         // what lost
  std::string lost_node;   // who wrote it (node hex)
  uint64_t lost_time_ms = 0;
  json won_value;
  std::string won_node;
  uint64_t won_time_ms = 0;
  bool resolved = false;
};

struct ReplicaOptions {
  // Wall clock in ms since the epoch; empty = the system clock. Tests and
  // the simulator inject their own to model devices with a wrong date.
  std::function<uint64_t()> clock;
  // The node id a NEW file gets; 0 = random (what apps want). The simulator
  // sets it so that a seed reproduces exactly.
  NodeId node = 0;
  // Fault injection for crash tests (store/database.h); never set by apps.
  store::FaultHook fault_hook;
};

class Replica {
 public:
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // Opens or creates the replica file at `path` for `schema`. A new file gets
  // a fresh random node id. Refuses a file created for another schema only if
  // a column changed type (additive changes are migrated).
  static Status Open(const std::string& path, const Schema& schema, std::unique_ptr<Replica>* out,
                     const ReplicaOptions& options = {});

  NodeId node() const { return node_; }
  const Schema& schema() const { return store_.schema(); }

  // A random UUIDv4 for new records, made offline.
  static std::string NewId();

  // ---- writes --------------------------------------------------------------
  // Sets the given fields of one row (creating it), leaving others alone.
  // Set columns take the full member list; counters take the new total.
  // Refuses, changing nothing: an unknown table or column (kNotFound), a
  // value that does not fit the schema (kSchemaViolation), a reference table
  // (kPermissionDenied: written centrally), a deleted row (kDeleted).
  Status Put(const std::string& table, const std::string& id, const json& fields);
  Status Delete(const std::string& table, const std::string& id);
  Status Increment(const std::string& table, const std::string& id, const std::string& column, double delta);
  Status Apply(const WriteBatch& batch);

  // ---- reads ---------------------------------------------------------------
  Status Get(const std::string& table, const std::string& id, json* row);
  Status Query(const std::string& table, const store::QueryOptions& q, std::vector<json>* rows);
  Status Dump(const std::function<void(const json&)>& emit);

  // ---- conflicts and refusals -----------------------------------------------
  Status Conflicts(bool include_resolved, std::vector<Conflict>* out);
  // Writes the losing value back as a new local edit and marks the record
  // resolved. A "deleted" conflict cannot revive its row (deletes are
  // final, docs/merge.md): the row's lost values are written into a new row
  // whose id is returned in *new_id. A "state" conflict whose value lies
  // behind the current state is refused (kInvalidArgument): states only move
  // forward.
  Status RestoreConflict(int64_t id, std::string* new_id = nullptr);
  Status DismissConflict(int64_t id);
  Status Rejections(std::vector<store::Rejection>* out);
  // Local changes the server has not acknowledged yet, oldest first, at most
  // `limit`: what "pending" counts.
  Status PendingChanges(size_t limit, std::vector<Change>* out);

  // ---- leaving the device: nothing unsent is lost ----------------------------
  // Writes every unacknowledged local change to `file` (JSON Lines: a header
  // {"fieldsync_outbox": 1, "node": hex, "schema": fingerprint, "changes": n},
  // then one change per line, oldest first) and sets *count. The server
  // takes it with `fieldsync import-outbox`, under the same checks as a
  // push; a change it already holds is a duplicate, so exporting twice or
  // after a partial sync is harmless. The outbox itself is left as it is.
  Status ExportOutbox(const std::string& file, int64_t* count);
  // Stops background sync for a user who signs out. Refused (kBusy, with the
  // number of unsent changes) while the outbox is not empty, unless `force`:
  // sync or ExportOutbox first.
  Status SignOut(bool force);
  // Deletes a replica file (with its -wal and -shm) that no one has open.
  // Refused (kBusy) while its outbox holds unacknowledged changes, unless
  // `force`. A file that does not exist is kNotFound.
  static Status DeleteFile(const std::string& path, const Schema& schema, bool force);

  // ---- observers -------------------------------------------------------------
  uint64_t AddObserver(Observer fn);
  void RemoveObserver(uint64_t token);

  // ---- sync ------------------------------------------------------------------
  // One exchange: push the outbox in batches (each acknowledged after the
  // server's commit), then pull every change since the cursor. Refused
  // changes are moved to Rejections() and never block the rest.
  Status Sync(const SyncOptions& opts, SyncReport* report = nullptr);

  // Background mode: a thread keeps a connection, pushes local writes as
  // they happen, receives live changes, and reconnects with exponential
  // backoff (0.5 s doubling to 30 s, with jitter) after a failure.
  Status StartBackgroundSync(const SyncOptions& opts);
  void StopBackgroundSync();
  // App hints: the OS says the network is back (retry now, skip the backoff)
  // or gone (stop trying until it returns).
  void SetNetworkAvailable(bool up);
  // App hint: in the background, background sync closes its connection and
  // waits (state "paused") without losing its place; back in the foreground
  // it reconnects at once.
  void SetForeground(bool foreground);

  SyncStatus GetSyncStatus();

 private:
  Replica() = default;
  class Session;
  friend class Session;

  Status ApplyLocked(const WriteBatch& batch, std::vector<ChangeEvent>* events);
  Status ApplyRemote(const std::vector<Change>& changes, int64_t cursor, std::vector<ChangeEvent>* events);
  // One page of a snapshot, in one transaction (docs/protocol.md,
  // "Snapshot"). `wipe`: the first page of a re-bootstrap, which first
  // removes every replicated row (their ids go to `stale`). The last page
  // re-applies the outbox on top and moves the cursor to `cursor`; earlier
  // ones record the progress so a killed app resumes at the next page.
  // Fields whose values do not fit this schema are removed from `rows`
  // (FitToSchema): the page is changed in place rather than copied.
  Status InstallSnapshotPage(std::vector<RowState>* rows, bool wipe, int64_t cursor, bool last,
                             const json& after, std::set<std::pair<std::string, std::string>>* stale,
                             std::vector<ChangeEvent>* events);
  // The scope moved (docs/protocol.md, "Scope changes"). Installs the rows
  // of keys that joined it as the server holds them, the outbox re-applied
  // on top; the cursor stays where it is.
  // With `revert` (rows whose changes the server refused): those of them
  // not in `rows` leave the replica, and the pending revert is cleared.
  Status InstallScopePage(std::vector<RowState>* rows, std::vector<ChangeEvent>* events,
                          const std::vector<std::pair<std::string, std::string>>* revert = nullptr);
  // Removes the rows of keys that left it; a key whose rows still have
  // unacknowledged changes stays (it is evicted at a later sync, once they
  // are pushed). `evicted` gets the keys that were removed.
  Status EvictKeys(const std::vector<std::string>& keys, std::vector<std::string>* evicted,
                   std::vector<ChangeEvent>* events);
  // Raises fs_meta.remote_hlc to `newest` (call inside a transaction).
  Status RaiseRemoteHlc(Hlc newest);
  // Leaves out the fields of snapshot rows that do not fit this schema.
  void FitToSchema(std::vector<RowState>* rows);
  void Notify(const std::vector<ChangeEvent>& events);
  void SetState(SyncStatus::State s, const std::string& reason);
  void BackgroundLoop(SyncOptions opts);
  void WakeBackground();

  mutable std::mutex mu_;  // guards store_, clock_, status_
  store::Store store_;
  std::unique_ptr<HybridClock> clock_;
  NodeId node_ = 0;
  SyncStatus status_;

  std::mutex obs_mu_;
  std::vector<std::pair<uint64_t, Observer>> observers_;
  uint64_t next_observer_ = 1;

  std::mutex sync_mu_;  // one sync at a time
  std::thread bg_;             // guarded by bg_thread_mu_
  std::mutex bg_thread_mu_;
  std::atomic<bool> bg_running_{false};
  std::atomic<bool> network_up_{true};
  std::atomic<bool> foreground_{true};
  std::atomic<uint64_t> wake_gen_{0};  // bumped by "network up" / "foreground": ends a backoff
  std::atomic<uint64_t> local_writes_{0};
  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
};

}  // namespace fieldsync
