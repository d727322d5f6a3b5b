// ServerStore: the server's SQLite file. A Store (the merged rows every
// supervisor query reads) plus fs_log, the ordered log of every accepted
// change. A change's position in the log (seq) is the pull cursor clients
// keep; UNIQUE(node, hlc) makes a retried push a no-op.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "store/replica_store.h"
#include "sync/hlc.h"

namespace fieldsync::store {

enum class ChangeResult { kApplied, kDuplicate, kRejected };

struct PushResult {
  ChangeResult result = ChangeResult::kApplied;
  Code code = Code::kOk;  // for kRejected
  std::string message;
  int64_t seq = 0;        // for kApplied
};

// Who is pushing: a device (a rep's tablet) may not write reference tables;
// the server itself (imports, later supervisor actions) may.
enum class Writer { kDevice, kServer };

// ---- identities and scope (docs/security.md) ---------------------------------------------
enum class Role { kRep, kSupervisor, kAdmin };
const char* RoleName(Role r);
bool ParseRole(const std::string& s, Role* r);

// A user of the server. A team is a supervisor and the reps that share the
// supervisor's `team`; `region` picks the region-scoped reference rows.
struct User {
  std::string id;  // a row id: also what an assignee column holds
  Role role = Role::kRep;
  std::string team;
  std::string region;
  std::string name;
  bool active = true;
};

// Who a request acts for: the user, and the device id from their token.
struct Actor {
  User user;
  std::string device;
};

// The scope keys a device may read and write (see ScopeRule in sync/schema.h).
struct Scope {
  bool all = false;               // admins, and servers without authentication
  std::vector<std::string> keys;  // sorted, unique; unused when `all`
  bool Contains(const std::string& key) const;
  std::string KeysJson() const;   // a JSON array, for json_each() in SQL
};

class ServerStore {
 public:
  // Opens or creates the file. A new file gets `new_node` as its node id
  // (0 = random), kept in fs_meta: the server's own writes are stamped with it.
  Status Open(const std::string& path, const Schema& schema, NodeId new_node = 0);
  void Close() { store_.Close(); }
  Store& store() { return store_; }
  NodeId node() const { return node_; }

  // Validates and applies a batch in ONE transaction, then commits (fsync):
  // when this returns OK every kApplied change is durable. Invalid changes
  // are refused one by one (kRejected with code) and the rest apply; a
  // change already in the log is kDuplicate and not applied again. On a
  // storage error nothing of the batch is applied. `now_ms` is the server
  // receive time stamped into each change; `clock` bounds device clocks.
  //
  // With an `actor` (an authenticated device) each change is also checked
  // against the actor's scope and role, and refused one by one with
  // kPermissionDenied (not theirs, a supervisor-only column), kNotFound
  // (a parent the server does not hold: the lines of a refused order) or
  // kInvalidArgument (a row's parent cannot change). Without one (the
  // development mode, central writes) only the schema is checked. Either
  // way every applied change gets its row's scope key in the log.
  Status ApplyBatch(const std::vector<Change>& changes, uint64_t now_ms, HybridClock* clock,
                    std::vector<PushResult>* results, std::vector<Change>* applied,
                    Writer writer = Writer::kDevice, const Actor* actor = nullptr);

  // A central write made for a user (the admin API): `rows` as for
  // WriteRows, stamped by the server's `clock`, checked exactly as that
  // user's push would be. All or nothing: the first refused change fails
  // the call with its code and message, and nothing is written.
  Status WriteAs(const Actor& actor, const std::vector<json>& rows, uint64_t now_ms, HybridClock* clock,
                 std::vector<Change>* applied);

  // A central write: sets fields of rows as the server's own node (stamped
  // by `clock`, whose node must be node()), through the same log and merge
  // as a push. `rows` are {"table": t, "id": id, column: value...}. All or
  // nothing: the first row that does not fit the schema fails the call with
  // its index in the message, and nothing is written.
  Status WriteRows(const std::vector<json>& rows, uint64_t now_ms, HybridClock* clock,
                   std::vector<Change>* applied);

  // Changes with seq > after, oldest first, at most `limit`, skipping those
  // made by `exclude_node` (a client does not need its own changes back).
  // `scanned_to` is the last seq looked at, skipped or not: the new cursor.
  // With a `scope` (not `all`), only entries whose key is in it are read,
  // at most `limit` of them; `scanned_to` is then the seq of the last one
  // when `limit` were found, else the head: nothing in scope lies between.
  Status ReadLog(int64_t after, size_t limit, NodeId exclude_node, std::vector<Change>* out,
                 int64_t* scanned_to, const Scope* scope = nullptr);
  Status Head(int64_t* seq);

  // ---- compaction (docs/storage.md, "Compaction") ------------------------
  // Devices and how far each has pulled: what bounds compaction. A device
  // is registered at its first hello; cursors and last-seen times are
  // raised (never lowered) by RecordDevices.
  struct DeviceCursor {
    int64_t cursor = 0;
    uint64_t seen_ms = 0;
  };
  Status RegisterDevice(NodeId node, int64_t cursor, uint64_t now_ms);
  Status RecordDevices(const std::map<NodeId, DeviceCursor>& devices);
  // Every registered device, as last written.
  Status ListDevices(std::map<NodeId, DeviceCursor>* out);
  // The compaction horizon: the smallest cursor among devices seen within
  // `retention_ms` of `now_ms`, or the head when there are none.
  Status Horizon(uint64_t now_ms, uint64_t retention_ms, int64_t* horizon);
  // Removes the log entries with seq <= horizon, except the newest entry
  // of the log (which keeps seq numbers rising). A client whose cursor is
  // below CompactedThrough() afterwards can no longer catch up from the log
  // and must load a snapshot. One transaction.
  Status Compact(int64_t horizon, int64_t* removed);
  // Every log entry with seq <= this is gone (0: nothing ever compacted).
  Status CompactedThrough(int64_t* seq);
  // Applies an outbox a device exported (Replica::ExportOutbox) as pushes
  // from that device's node, acting for `actor` (null: unchecked, for a
  // server without authentication): the same checks, batch by batch, a
  // change already held counted as a duplicate. A file that is not an
  // export, or whose changes are not all of the header's node, applies
  // nothing.
  struct ImportReport {
    int64_t applied = 0, duplicates = 0;
    std::vector<std::pair<Change, PushResult>> rejected;
    std::vector<Change> changes;  // applied, for live subscribers
  };
  Status ImportOutbox(const std::string& text, const Actor* actor, uint64_t now_ms, HybridClock* clock,
                      ImportReport* report);

  // ---- identities and scope ------------------------------------------------
  // Adds or replaces a user. The id must be a valid row id.
  Status PutUser(const User& u);
  Status GetUser(const std::string& id, User* u, bool* found);
  Status ListUsers(std::vector<User>* out);
  // Revocation is by device (a lost tablet) or by token id; both are
  // checked at every connection.
  Status Revoke(const std::string& kind, const std::string& value, uint64_t now_ms);
  Status IsRevoked(const std::string& kind, const std::string& value, bool* revoked);
  // The actor's scope from the schema's rules and the current assignments:
  // "*", the regions of the users it sees, and every assignee-scoped row
  // assigned to them (a rep sees their own; a supervisor the team's).
  Status ComputeScope(const Actor& actor, Scope* out);
  // The keys a device holds for a user, as it last confirmed them
  // (scope_ack, or the start of a full snapshot). Kept per user: another
  // user on the same node id never inherits them. `replace` first forgets
  // every key it had.
  Status DeviceKeys(NodeId node, const std::string& user, std::vector<std::string>* keys);
  Status UpdateDeviceKeys(NodeId node, const std::string& user, const std::vector<std::string>& add,
                          const std::vector<std::string>& remove, bool replace);
  // The audit trail of one row: its newest `limit` accepted changes still
  // in the log, oldest first, with who made it (user, device; empty for central writes
  // and servers without authentication), its HLC and the receive time.
  struct AuditEntry {
    Change change;  // with seq and server_ms
    std::string user, device;
  };
  Status History(const std::string& table, const std::string& row, size_t limit, std::vector<AuditEntry>* out);
  // The keys a new device should load first: those of rows of tables with
  // a bootstrap_first rule dated `today` (YYYY-MM-DD), within `scope`, at
  // most `limit`. Today's planned visits give their accounts.
  Status FirstKeys(const Scope& scope, const std::string& today, size_t limit, std::vector<std::string>* keys);
  // How many rows (live or deleted) a snapshot of `scope` holds.
  Status CountRows(const Scope& scope, int64_t* n);
  // What changed from the revision a workflow row replaces (its `previous`
  // column) to the row: {"previous": id|null, "changed": {column: {"from",
  // "to"}}, "items": {"added": [...], "removed": [...], "changed": [{"key",
  // "id", "fields"}]}}, items paired by the workflow's item key.
  Status RevisionDiff(const std::string& table, const std::string& row, json* out);
  // The assignee of an assignee-scoped key "<table>/<id>" (a rep).
  Status KeyOwner(const std::string& key, std::string* owner, bool* found);
  // The scope key of a row, if the server holds it.
  Status RowKey(const std::string& table, const std::string& row, std::string* key, bool* found);

  // The largest HLC in the log: a restarted server's clock resumes past it
  // even if the wall clock went back.
  Status MaxHlc(Hlc* hlc);

 private:
  Status ApplyBatchImpl(const std::vector<Change>& changes, uint64_t now_ms, HybridClock* clock,
                        std::vector<PushResult>* results, std::vector<Change>* applied, Writer writer,
                        const Actor* actor, bool all_or_nothing);
  // Creates the identity and scope tables; gives a log from before scopes
  // its keys (docs/storage.md, "Scope keys").
  Status OpenIdentity();
  Status WriteRowsLocked(const std::vector<json>& rows, uint64_t now_ms, HybridClock* clock,
                         std::vector<Change>* applied);
  // Values a batch sets for the columns that decide a row's key (parent and
  // scope columns) and that a decision record is checked by, so both are
  // known whatever order a row's fields came in.
  using KeyHints = std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>>;
  static void CollectKeyHints(const Schema& schema, const std::vector<Change>& changes, KeyHints* hints);
  // The key of the row `c` touches: the stored one, or (`created`) the one
  // its rule gives, for StoreRowKey once the change is accepted. kNotFound
  // when a parent-scoped row's parent is unknown.
  Status DeriveRowKey(const Change& c, const KeyHints& hints, std::string* key, bool* created);
  Status StoreRowKey(const std::string& table, const std::string& row, const std::string& key);
  // Checks `c` against the actor's scope and role (see ApplyBatch).
  // `created`: the row is new in this batch.
  Status Authorize(const Actor& actor, const Change& c, const KeyHints& hints, const std::string& key,
                   bool created, Scope* scope);
  // What one batch's workflow checks remember between its changes.
  struct BatchState {
    Scope* scope = nullptr;
    // Workflow rows open for this batch: new, or not frozen when it began.
    std::set<std::pair<std::string, std::string>> open;
  };
  // The workflow and decision-record rules (server_workflow.cc): tables
  // written by supervisors only, server-set columns, append-only rows,
  // frozen records (kFrozen) and decisions on what the actor may see.
  Status CheckWorkflow(const Actor& actor, const Change& c, const KeyHints& hints, bool created, BatchState* batch);
  // After a push wrote a decision record: from its stored (final) values,
  // the subject's status takes the first decision, a later disagreeing one
  // is flagged. Once per record per push; without an actor too (it is merge
  // semantics, not a permission).
  Status ApplyDecision(const std::string& table, const std::string& row, uint64_t now_ms, HybridClock* clock,
                       std::vector<Change>* applied);
  // One field written by the server's own node inside the caller's
  // transaction, logged (attributed to `actor`, may be null) and merged.
  Status WriteServerField(const std::string& table, const std::string& row, const std::string& column,
                          const json& value, uint64_t now_ms, HybridClock* clock, const Actor* actor,
                          std::vector<Change>* applied);
  // The workflow status rank of a row as the server holds it (-1: none).
  Status StatusOf(const TableDef& t, const std::string& row, int* rank);
  // Keeps fs_rows.owner equal to the row's assignee after `c` applied.
  Status UpdateOwner(const Change& c);
  // Appends an accepted change to the log; its seq is *seq.
  Status AppendLog(const Change& c, const std::string& key, const Actor* actor, int64_t* seq);

  Store store_;
  NodeId node_ = 0;
};

// One audit entry as the CLI and the admin API print it: seq, user,
// device, node, hlc_ms, received_ms, op, column, value.
json AuditEntryJson(const ServerStore::AuditEntry& e);

}  // namespace fieldsync::store
