// ServerStore: the server's SQLite file. A Store (the merged rows every
// supervisor query reads) plus fs_log, the ordered log of every accepted
// change. A change's position in the log (seq) is the pull cursor clients
// keep; UNIQUE(node, hlc) makes a retried push a no-op.
#pragma once

#include <map>
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
  Status ApplyBatch(const std::vector<Change>& changes, uint64_t now_ms, HybridClock* clock,
                    std::vector<PushResult>* results, std::vector<Change>* applied,
                    Writer writer = Writer::kDevice);

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
  Status ReadLog(int64_t after, size_t limit, NodeId exclude_node, std::vector<Change>* out,
                 int64_t* scanned_to);
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
  // The largest HLC in the log: a restarted server's clock resumes past it
  // even if the wall clock went back.
  Status MaxHlc(Hlc* hlc);

 private:
  Status WriteRowsLocked(const std::vector<json>& rows, uint64_t now_ms, HybridClock* clock,
                         std::vector<Change>* applied);

  Store store_;
  NodeId node_ = 0;
};

}  // namespace fieldsync::store
