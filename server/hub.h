// The state every connection shares: the store, the server's clock, the list
// of live subscribers. No sockets here: Beast sessions (session.h) and the
// deterministic simulator (tests/sim) drive the same Hub.
//
// Threading: the store is a single SQLite connection guarded by the Hub's
// mutex. Store calls are short (one bounded batch), so sessions call it from
// their strand; everything else is asynchronous.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/server_store.h"
#include "sync/protocol.h"

namespace fieldsync::server {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;            // 0: an ephemeral port, see Server::port()
  std::string data_dir = "data";
  int threads = 2;
  Limits limits;
  size_t max_connections = 20000;
  int handshake_timeout_ms = 10000;  // WebSocket upgrade + hello
  int idle_timeout_ms = 120000;      // no frame (pings count) for this long
  size_t max_errors_per_session = 16;  // bad frames tolerated before closing
  // Compaction (docs/storage.md): every compact_interval_ms the server
  // removes the log entries every device seen within device_retention_ms
  // has pulled. A device behind the result loads a snapshot. 0 = never
  // (compaction then runs only when asked: Hub::Compact, `fieldsync compact`).
  uint64_t compact_interval_ms = 10 * 60 * 1000;
  uint64_t device_retention_ms = 30ull * 24 * 3600 * 1000;
  size_t snapshot_rows_per_page = 500;  // rows in one `snapshot` reply
  // Authentication (docs/security.md). The HMAC-SHA256 key tokens are
  // signed with; empty = development mode: no tokens, every device reads
  // and writes every row (the server says so loudly when it starts).
  std::string auth_key;
  // TLS: with both set the server speaks wss:// only (PEM files).
  std::string tls_cert_file;
  std::string tls_key_file;
  bool handle_signals = false;  // stop cleanly on SIGINT/SIGTERM
  bool log = true;              // one line per event on stderr

  // What `welcome.features` advertises, and so what the server honours
  // (protocol.md 5.2): a push's `after`, a pull's `applied`, a snapshot's
  // `columns`. A test clears them to stand for a server from before them,
  // which ignores those fields.
  bool feature_push_after = true;
  bool feature_pull_applied = true;
  bool feature_snapshot_columns = true;
  // For the simulator and crash tests; production leaves them empty.
  std::function<uint64_t()> clock;  // wall clock, ms since the epoch
  NodeId node = 0;                  // node id of a NEW store; 0 = random
  store::FaultHook fault_hook;      // see store/database.h
};

// Something the Hub pokes when new changes are committed (a live session).
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  // Called from any thread; the subscriber reads the log on its own thread.
  virtual void Poke() = 0;
};

class Hub {
 public:
  Hub(const ServerOptions& opts, const Schema& schema);
  // Opens data_dir/server.db, creating it if needed.
  Status Open();

  const ServerOptions& options() const { return opts_; }
  const Schema& schema() const { return schema_; }
  NodeId server_node() const { return node_; }

  // ---- identities (docs/security.md) ------------------------------------
  bool auth_enabled() const { return !opts_.auth_key.empty(); }
  // Checks a bearer token (the WebSocket handshake's Authorization header,
  // without "Bearer "): signature, expiry, an active user, neither device
  // nor token revoked. kUnauthenticated with the reason otherwise.
  Status Authenticate(const std::string& token, store::Actor* actor);
  // Issues a token for an existing, active user's device.
  Status IssueToken(const std::string& user, const std::string& device, uint64_t ttl_s, std::string* token);
  Status PutUser(const store::User& u);
  Status GetUser(const std::string& id, store::User* u, bool* found);
  Status ListUsers(std::vector<store::User>* out);
  Status Revoke(const std::string& kind, const std::string& value);
  // Applies an exported outbox (ServerStore::ImportOutbox) as its device's
  // pushes, acting for `actor` (null: unchecked); live subscribers are told.
  Status ImportOutbox(const std::string& text, const store::Actor* actor, store::ServerStore::ImportReport* report);
  Status FirstKeys(const store::Scope& scope, const std::string& today, std::vector<std::string>* keys);
  Status CountRows(const store::Scope& scope, int64_t* n);
  // What the actor may read and write now (assignments change it).
  Status ComputeScope(const store::Actor& actor, store::Scope* out);
  // The keys a device confirmed holding (ServerStore::DeviceKeys).
  Status DeviceKeys(NodeId node, const std::string& user, std::vector<std::string>* keys);
  Status UpdateDeviceKeys(NodeId node, const std::string& user, const std::vector<std::string>& add,
                          const std::vector<std::string>& remove, bool replace);

  // Store access, serialized. A null actor: development mode, no checks
  // beyond the schema.
  Status Push(const std::vector<Change>& changes, std::vector<store::PushResult>* results,
              std::vector<Change>* applied, const store::Actor* actor = nullptr);
  // A central write by the server's own node (see ServerStore::WriteRows);
  // live subscribers are told.
  Status WriteRows(const std::vector<json>& rows, std::vector<Change>* applied);
  // A central write made for a user (ServerStore::WriteAs: checked as
  // their push, all or nothing); live subscribers are told.
  Status WriteAs(const store::Actor& actor, const std::vector<json>& rows, std::vector<Change>* applied);
  // Runs `f` on the store under the Hub's lock: the admin API's reads.
  // `f` must be short and must not call back into the Hub.
  Status WithStore(const std::function<Status(store::ServerStore&)>& f);
  Status RevisionDiff(const std::string& table, const std::string& row, json* out);

  // ---- device status (the admin API) --------------------------------------
  // Who a connected device acts for and how many unsent changes it said it
  // held (hello's "pending"), less those it pushed since. Kept in memory:
  // after a restart a device is known by its cursor until it connects.
  void NoteDeviceUser(NodeId node, const store::Actor* actor, int64_t pending);
  void NotePushed(NodeId node, int64_t changes);
  struct DeviceStatus {
    NodeId node = 0;
    std::string user, device;  // empty until it connects with a token
    int64_t cursor = 0;
    uint64_t seen_ms = 0;
    int64_t pending = -1;      // -1: not known
  };
  Status Devices(std::vector<DeviceStatus>* out);

  // The canonical dump of the server's rows (Store::Dump).
  Status Dump(const std::function<void(const json&)>& emit);
  Status ReadLog(int64_t after, size_t limit, NodeId exclude, std::vector<Change>* out, int64_t* scanned_to,
                 const store::Scope* scope = nullptr);
  int64_t head() const { return head_.load(); }

  // A page of the server's current state (ServerStore / Store::ReadState).
  Status ReadState(const std::string& after_table, const std::string& after_row, size_t max_rows,
                   std::vector<RowState>* out, bool* more, const store::Scope* scope = nullptr,
                   const std::string& rows_json = {});
  // Log entries at or below this are compacted away: a cursor below it
  // cannot catch up from the log.
  int64_t compacted_through() const { return compacted_.load(); }
  // Devices say how far they have applied the log (hello, pull, the start
  // of a snapshot); compaction never passes a device seen within the
  // retention period. A device's first hello is written at once; later
  // progress is kept in memory and written by Compact(), since a stale
  // (lower) cursor only holds compaction back.
  Status NoteDevice(NodeId node, int64_t cursor, bool first_contact);
  // Writes device progress, then removes what every retained device has
  // pulled. `horizon` and `removed` (may be null) report what it did.
  Status Compact(int64_t* horizon, int64_t* removed);
  // Writes device progress kept in memory (at a clean stop).
  Status SaveDevices();
  uint64_t NowMs();
  // The largest clock reading this server may accept from a device.
  const HybridClock& clock() const { return clock_; }

  // Live subscribers are poked after every commit.
  void Subscribe(const std::shared_ptr<Subscriber>& s);
  void Unsubscribe(Subscriber* s);
  void NotifyAll(Subscriber* except);

  bool AdmitConnection();
  void ReleaseConnection();
  void Log(const std::string& line);

 private:
  ServerOptions opts_;
  Schema schema_;
  NodeId node_ = 0;
  std::mutex store_mu_;
  store::ServerStore store_;
  HybridClock clock_;
  std::atomic<int64_t> head_{0};
  std::atomic<int64_t> compacted_{0};
  std::map<NodeId, store::ServerStore::DeviceCursor> devices_;  // guarded by store_mu_
  struct DeviceInfo {
    std::string user, device;
    int64_t pending = -1;
  };
  std::map<NodeId, DeviceInfo> device_info_;  // guarded by store_mu_
  std::mutex subs_mu_;
  std::vector<std::weak_ptr<Subscriber>> subs_;
  std::atomic<size_t> connections_{0};
  std::mutex log_mu_;
};

}  // namespace fieldsync::server
