// fieldsync: the command-line tool. Starts a server, and drives replicas by
// hand: import, put, get, delete, query, sync, status, dump, conflicts.
// Every command prints its own --help. Exit codes: 0 success, 1 the
// operation failed (the message says why), 2 bad usage.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "fieldsync/replica.h"
#include "server/auth_token.h"
#include "server/server.h"
#include "store/server_store.h"
#include "tools/cli/demo.h"
#include "tools/cli/jsonl.h"

namespace fieldsync::cli {
namespace {

// ---- argument parsing ------------------------------------------------------------

struct Args {
  std::map<std::string, std::string> opts;  // --name value, or --flag -> "1"
  std::vector<std::string> pos;
  bool Has(const std::string& k) const { return opts.count(k) > 0; }
  std::string Get(const std::string& k, const std::string& def = "") const {
    auto it = opts.find(k);
    return it == opts.end() ? def : it->second;
  }
};

// Flags that take no value.
const char* kFlags[] = {"help", "live", "desc", "all", "json", "keep", "production", "inactive", "force"};

bool IsFlag(const std::string& name) {
  for (const char* f : kFlags)
    if (name == f) return true;
  return false;
}

bool Parse(int argc, char** argv, int start, Args* a, std::string* err) {
  for (int i = start; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "-h") s = "--help";
    if (s.rfind("--", 0) == 0 && s.size() > 2) {
      std::string name = s.substr(2);
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        a->opts[name.substr(0, eq)] = name.substr(eq + 1);
      } else if (IsFlag(name)) {
        a->opts[name] = "1";
      } else if (i + 1 < argc) {
        a->opts[name] = argv[++i];
      } else {
        *err = "option --" + name + " needs a value";
        return false;
      }
    } else {
      a->pos.push_back(s);
    }
  }
  return true;
}

int Usage(const std::string& msg) {
  std::cerr << "fieldsync: " << msg << " (see fieldsync --help)\n";
  return 2;
}

int Fail(const Status& st) {
  std::cerr << "fieldsync: " << st.ToString() << "\n";
  return 1;
}

std::string DefaultSchemaPath() {
#ifdef FIELDSYNC_DEFAULT_SCHEMA
  return FIELDSYNC_DEFAULT_SCHEMA;
#else
  return "schema/field_sales.json";
#endif
}

Status LoadSchema(const Args& a, Schema* schema) {
  std::string path = a.Get("schema", DefaultSchemaPath());
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot read schema file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  Status st = Schema::ParseText(ss.str(), schema);
  if (!st.ok()) return Status(st.code(), path + ": " + st.message());
  return st;
}

Status OpenReplica(const Args& a, std::unique_ptr<Replica>* r) {
  if (!a.Has("replica")) return Status::InvalidArgument("--replica FILE is required");
  Schema schema;
  Status st = LoadSchema(a, &schema);
  if (!st.ok()) return st;
  return Replica::Open(a.Get("replica"), schema, r);
}

json ParseJsonArg(const std::string& text, Status* st) {
  json j = json::parse(text, nullptr, false);
  *st = j.is_discarded() ? Status::InvalidArgument("not valid JSON: " + text) : Status::OK();
  return j;
}

// ---- commands ----------------------------------------------------------------------

struct Command {
  const char* name;
  const char* usage;
  const char* help;
  int (*run)(const Args&);
};

std::atomic<bool> g_stop{false};

int CmdServer(const Args& a) {
  Schema schema;
  Status st = LoadSchema(a, &schema);
  if (!st.ok()) return Fail(st);
  server::ServerOptions o;
  o.address = a.Get("address", "127.0.0.1");
  o.port = static_cast<uint16_t>(std::stoi(a.Get("port", "8765")));
  o.data_dir = a.Get("data", "data");
  o.threads = std::stoi(a.Get("threads", "2"));
  o.handle_signals = true;
  if (a.Has("auth-key-file") && !(st = server::ReadKeyFile(a.Get("auth-key-file"), &o.auth_key)).ok()) return Fail(st);
  o.tls_cert_file = a.Get("tls-cert", "");
  o.tls_key_file = a.Get("tls-key", "");
  if (a.Has("production") && (o.auth_key.empty() || o.tls_cert_file.empty()))
    return Fail(Status::InvalidArgument("--production needs --auth-key-file, --tls-cert and --tls-key"));
  server::Server srv(o, schema);
  if (!(st = srv.Start()).ok()) return Fail(st);
  std::cout << "fieldsync server listening on " << (o.tls_cert_file.empty() ? "ws://" : "wss://") << o.address << ":" << srv.port() << "/ (data in "
            << o.data_dir << "); Ctrl-C stops it" << std::endl;
  srv.Wait();
  std::cout << "fieldsync server stopped" << std::endl;
  return 0;
}

// Opens the server's store for the admin commands (user, token, revoke, history).
Status OpenServerStore(const Args& a, store::ServerStore* ss) {
  if (!a.Has("server-data")) return Status::InvalidArgument("needs --server-data DIR");
  Schema schema;
  Status st = LoadSchema(a, &schema);
  if (!st.ok()) return st;
  std::error_code ec;
  std::filesystem::create_directories(a.Get("server-data"), ec);
  return ss->Open(a.Get("server-data") + "/server.db", schema);
}

int CmdUser(const Args& a) {
  if (a.pos.size() != 1) return Usage("user takes one USER_ID");
  store::ServerStore ss;
  Status st = OpenServerStore(a, &ss);
  if (!st.ok()) return Fail(st);
  store::User u;
  u.id = a.pos[0];
  if (!store::ParseRole(a.Get("role", "rep"), &u.role)) return Usage("--role is rep, supervisor or admin");
  u.team = a.Get("team", "");
  u.region = a.Get("region", "");
  u.name = a.Get("name", "");
  u.active = !a.Has("inactive");
  if (!(st = ss.PutUser(u)).ok()) return Fail(st);
  std::cout << "user " << u.id << ": " << store::RoleName(u.role) << ", team '" << u.team << "', region '" << u.region
            << "'" << (u.active ? "" : ", inactive") << "\n";
  return 0;
}

int CmdToken(const Args& a) {
  if (!a.Has("auth-key-file") || !a.Has("user") || !a.Has("device"))
    return Usage("token needs --auth-key-file FILE --user ID --device ID");
  std::string key;
  Status st = server::ReadKeyFile(a.Get("auth-key-file"), &key);
  if (!st.ok()) return Fail(st);
  store::ServerStore ss;
  if (!(st = OpenServerStore(a, &ss)).ok()) return Fail(st);
  store::User u;
  bool found = false;
  if (!(st = ss.GetUser(a.Get("user"), &u, &found)).ok()) return Fail(st);
  if (!found || !u.active) return Fail(Status::NotFound("no active user '" + a.Get("user") + "' (add one with `fieldsync user`)"));
  server::TokenClaims c;
  c.user = u.id;
  c.device = a.Get("device");
  c.issued_s = SystemMillis() / 1000;
  c.expires_s = c.issued_s + static_cast<uint64_t>(std::stod(a.Get("ttl-hours", "720")) * 3600);
  std::string token;
  if (!(st = server::IssueToken(key, c, &token)).ok()) return Fail(st);
  std::cout << token << "\n";
  return 0;
}

int CmdRevoke(const Args& a) {
  store::ServerStore ss;
  Status st = OpenServerStore(a, &ss);
  if (!st.ok()) return Fail(st);
  std::string kind = a.Has("device") ? "device" : a.Has("token-id") ? "token" : "";
  if (kind.empty()) return Usage("revoke needs --device ID or --token-id JTI");
  if (!(st = ss.Revoke(kind, a.Get(kind == "device" ? "device" : "token-id"), SystemMillis())).ok()) return Fail(st);
  std::cout << "revoked " << kind << "; its next connection is refused\n";
  return 0;
}

int CmdHistory(const Args& a) {
  if (a.pos.size() != 2) return Usage("history takes TABLE ID");
  store::ServerStore ss;
  Status st = OpenServerStore(a, &ss);
  if (!st.ok()) return Fail(st);
  std::vector<store::ServerStore::AuditEntry> out;
  if (!(st = ss.History(a.pos[0], a.pos[1], std::stoul(a.Get("limit", "1000")), &out)).ok()) return Fail(st);
  for (const auto& e : out) std::cout << store::AuditEntryJson(e).dump() << "\n";
  return 0;
}

int CmdExportOutbox(const Args& a) {
  if (a.pos.size() != 1) return Usage("export-outbox takes one FILE");
  std::unique_ptr<Replica> r;
  Status st = OpenReplica(a, &r);
  if (!st.ok()) return Fail(st);
  int64_t n = 0;
  if (!(st = r->ExportOutbox(a.pos[0], &n)).ok()) return Fail(st);
  std::cout << "exported " << n << " unacknowledged change(s) to " << a.pos[0] << "\n";
  return 0;
}

int CmdImportOutbox(const Args& a) {
  if (a.pos.size() != 1) return Usage("import-outbox takes one FILE");
  store::ServerStore ss;
  Status st = OpenServerStore(a, &ss);
  if (!st.ok()) return Fail(st);
  std::ifstream in(a.pos[0], std::ios::binary);
  if (!in) return Fail(Status::IoError("cannot read " + a.pos[0]));
  std::stringstream text;
  text << in.rdbuf();
  // As the device's user when given (the checks of a push), else unchecked.
  std::optional<store::Actor> actor;
  if (a.Has("user")) {
    actor.emplace();
    bool found = false;
    if (!(st = ss.GetUser(a.Get("user"), &actor->user, &found)).ok()) return Fail(st);
    if (!found) return Fail(Status::NotFound("no user '" + a.Get("user") + "'"));
    actor->device = a.Get("device", "imported");
  }
  HybridClock clock(ss.node());
  Hlc last = 0;
  if (!(st = ss.MaxHlc(&last)).ok()) return Fail(st);
  clock.Restore(last);
  store::ServerStore::ImportReport rep;
  if (!(st = ss.ImportOutbox(text.str(), actor ? &*actor : nullptr, SystemMillis(), &clock, &rep)).ok()) return Fail(st);
  std::cout << "applied " << rep.applied << ", already held " << rep.duplicates << ", refused " << rep.rejected.size()
            << "\n";
  for (const auto& [c, r] : rep.rejected)
    std::cout << "  refused " << c.table << "/" << c.row << (c.column.empty() ? "" : "." + c.column) << ": "
              << CodeName(r.code) << ": " << r.message << "\n";
  return 0;
}

int CmdDeleteReplica(const Args& a) {
  if (!a.Has("replica")) return Usage("delete-replica needs --replica FILE");
  Schema schema;
  Status st = LoadSchema(a, &schema);
  if (!st.ok()) return Fail(st);
  if (!(st = Replica::DeleteFile(a.Get("replica"), schema, a.Has("force"))).ok()) return Fail(st);
  std::cout << "deleted " << a.Get("replica") << "\n";
  return 0;
}

int CmdImport(const Args& a) {
  if (a.pos.size() != 1) return Usage("import takes one FILE (or - for stdin)");
  Schema schema;
  Status st = LoadSchema(a, &schema);
  if (!st.ok()) return Fail(st);
  std::vector<JsonlRecord> records;
  if (a.pos[0] == "-") {
    st = ReadJsonLines(std::cin, schema, &records);
  } else {
    std::ifstream in(a.pos[0]);
    if (!in) return Fail(Status::IoError("cannot read " + a.pos[0]));
    st = ReadJsonLines(in, schema, &records);
  }
  if (!st.ok()) return Fail(Status(st.code(), a.pos[0] + ": " + st.message() + " (nothing imported)"));
  if (a.Has("server-data")) {
    // Central import (reference data, supervisors' files): straight into the
    // server's store as the server's own writes, with the server stopped or
    // running (SQLite serializes the two writers).
    store::ServerStore ss;
    std::error_code ec;
    std::filesystem::create_directories(a.Get("server-data"), ec);
    if (!(st = ss.Open(a.Get("server-data") + "/server.db", schema)).ok()) return Fail(st);
    HybridClock clock(ss.node());
    int64_t last = 0;
    ss.store().GetMetaInt("hlc", 0, &last);
    clock.Restore(static_cast<Hlc>(last));
    std::vector<json> rows;
    for (auto& r : records) rows.push_back(std::move(r.row));
    std::vector<Change> applied;
    st = ss.WriteRows(rows, SystemMillis(), &clock, &applied);
    if (st.ok()) st = ss.store().SetMetaInt("hlc", static_cast<int64_t>(clock.last()));
    if (!st.ok()) return Fail(Status(st.code(), st.message() + " (nothing imported)"));
    std::cout << "imported " << records.size() << " records (" << applied.size() << " field changes) into "
              << a.Get("server-data") << "/server.db\n";
    return 0;
  }
  std::unique_ptr<Replica> r;
  if (!(st = OpenReplica(a, &r)).ok()) return Fail(st);
  WriteBatch b;
  for (const auto& rec : records)
    b.Put(rec.row["table"].get<std::string>(), rec.row["id"].get<std::string>(), FieldsOf(rec.row));
  if (!(st = r->Apply(b)).ok()) return Fail(Status(st.code(), st.message() + " (nothing imported)"));
  std::cout << "imported " << records.size() << " records\n";
  return 0;
}

int CmdPut(const Args& a) {
  if (a.pos.size() != 3) return Usage("put takes TABLE ID JSON");
  Status st;
  json fields = ParseJsonArg(a.pos[2], &st);
  if (!st.ok()) return Fail(st);
  std::unique_ptr<Replica> r;
  if (!(st = OpenReplica(a, &r)).ok()) return Fail(st);
  if (!(st = r->Put(a.pos[0], a.pos[1], fields)).ok()) return Fail(st);
  json row;
  if ((st = r->Get(a.pos[0], a.pos[1], &row)).ok()) std::cout << row.dump() << "\n";
  return 0;
}

int CmdNew(const Args& a) {
  if (a.pos.size() != 2) return Usage("new takes TABLE JSON");
  Status st;
  json fields = ParseJsonArg(a.pos[1], &st);
  if (!st.ok()) return Fail(st);
  std::unique_ptr<Replica> r;
  if (!(st = OpenReplica(a, &r)).ok()) return Fail(st);
  std::string id = Replica::NewId();
  if (!(st = r->Put(a.pos[0], id, fields)).ok()) return Fail(st);
  std::cout << id << "\n";
  return 0;
}

int CmdGet(const Args& a) {
  if (a.pos.size() != 2) return Usage("get takes TABLE ID");
  std::unique_ptr<Replica> r;
  Status st = OpenReplica(a, &r);
  if (!st.ok()) return Fail(st);
  json row;
  if (!(st = r->Get(a.pos[0], a.pos[1], &row)).ok()) return Fail(st);
  std::cout << row.dump() << "\n";
  return 0;
}

int CmdDelete(const Args& a) {
  if (a.pos.size() != 2) return Usage("delete takes TABLE ID");
  std::unique_ptr<Replica> r;
  Status st = OpenReplica(a, &r);
  if (!st.ok()) return Fail(st);
  if (!(st = r->Delete(a.pos[0], a.pos[1])).ok()) return Fail(st);
  return 0;
}

int CmdIncrement(const Args& a) {
  if (a.pos.size() != 4) return Usage("inc takes TABLE ID COLUMN DELTA");
  double delta = 0;
  try {
    delta = std::stod(a.pos[3]);
  } catch (...) {
    return Usage("DELTA must be a number");
  }
  std::unique_ptr<Replica> r;
  Status st = OpenReplica(a, &r);
  if (!st.ok()) return Fail(st);
  if (!(st = r->Increment(a.pos[0], a.pos[1], a.pos[2], delta)).ok()) return Fail(st);
  json row;
  if ((st = r->Get(a.pos[0], a.pos[1], &row)).ok()) std::cout << row.dump() << "\n";
  return 0;
}

int CmdQuery(const Args& a) {
  if (a.pos.size() != 1) return Usage("query takes TABLE");
  store::QueryOptions q;
  Status st;
  if (a.Has("where")) {
    q.where = ParseJsonArg(a.Get("where"), &st);
    if (!st.ok()) return Fail(st);
  }
  q.order_by = a.Get("order-by");
  q.descending = a.Has("desc");
  try {
    q.limit = std::stoll(a.Get("limit", "1000"));
  } catch (...) {
    return Usage("--limit must be a number");
  }
  std::unique_ptr<Replica> r;
  if (!(st = OpenReplica(a, &r)).ok()) return Fail(st);
  std::vector<json> rows;
  if (!(st = r->Query(a.pos[0], q, &rows)).ok()) return Fail(st);
  for (const auto& row : rows) std::cout << row.dump() << "\n";
  return 0;
}

void PrintReport(const SyncReport& rep) {
  std::cout << "pushed " << rep.pushed << ", rejected " << rep.rejected << ", re-stamped " << rep.restamped
            << ", pulled " << rep.pulled << ", snapshot rows " << rep.snapshot_rows << ", evicted " << rep.evicted_rows
            << ", reverted " << rep.reverted_rows << ", bytes out " << rep.bytes_sent << ", bytes in "
            << rep.bytes_received << ", cursor " << rep.cursor << "\n";
}

int CmdSync(const Args& a) {
  std::unique_ptr<Replica> r;
  Status st = OpenReplica(a, &r);
  if (!st.ok()) return Fail(st);
  SyncOptions o;
  o.url = a.Get("url", "ws://127.0.0.1:8765/");
  o.token = a.Get("token", "");
  if (a.Has("token-file")) {
    std::ifstream in(a.Get("token-file"));
    if (!in || !std::getline(in, o.token)) return Fail(Status::IoError("cannot read " + a.Get("token-file")));
  }
  o.tls_ca_file = a.Get("ca", "");
  if (a.Has("live")) {
    int seconds = std::stoi(a.Get("seconds", "0"));
    r->AddObserver([](const std::vector<ChangeEvent>& ev) {
      for (const auto& e : ev)
        if (e.remote) std::cout << (e.deleted ? "deleted " : "changed ") << e.table << "/" << e.id << std::endl;
    });
    if (!(st = r->StartBackgroundSync(o)).ok()) return Fail(st);
    std::signal(SIGINT, [](int) { g_stop = true; });
    std::signal(SIGTERM, [](int) { g_stop = true; });
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    std::string last;
    while (!g_stop && (seconds == 0 || std::chrono::steady_clock::now() < until)) {
      SyncStatus s = r->GetSyncStatus();
      std::string line = std::string(SyncStateName(s.state)) + ": " + s.reason;
      if (line != last) std::cerr << line << std::endl;
      last = line;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    r->StopBackgroundSync();
    return 0;
  }
  SyncReport rep;
  st = r->Sync(o, &rep);
  PrintReport(rep);
  if (!st.ok()) return Fail(st);
  std::vector<store::Rejection> rej;
  if (r->Rejections(&rej).ok() && !rej.empty())
    std::cout << rej.size() << " change(s) refused by the server so far: see `fieldsync rejections`\n";
  return 0;
}

int CmdStatus(const Args& a) {
  std::unique_ptr<Replica> r;
  Status st = OpenReplica(a, &r);
  if (!st.ok()) return Fail(st);
  SyncStatus s = r->GetSyncStatus();
  std::vector<Conflict> conflicts;
  r->Conflicts(false, &conflicts);
  std::vector<store::Rejection> rej;
  r->Rejections(&rej);
  json j = {{"node", ToHex(r->node())},
            {"pending", s.pending},
            {"cursor", s.cursor},
            {"last_sync_ms", s.last_sync_ms},
            {"state", SyncStateName(s.state)},
            {"reason", s.reason},
            {"open_conflicts", conflicts.size()},
            {"rejections", rej.size()}};
  std::cout << j.dump(2) << "\n";
  return 0;
}

int CmdDump(const Args& a) {
  Status st;
  auto emit = [](const json& line) { std::cout << line.dump() << "\n"; };
  if (a.Has("server-data")) {
    Schema schema;
    if (!(st = LoadSchema(a, &schema)).ok()) return Fail(st);
    store::ServerStore ss;
    if (!(st = ss.Open(a.Get("server-data") + "/server.db", schema)).ok()) return Fail(st);
    if (!(st = ss.store().Dump(emit)).ok()) return Fail(st);
    return 0;
  }
  std::unique_ptr<Replica> r;
  if (!(st = OpenReplica(a, &r)).ok()) return Fail(st);
  if (!(st = r->Dump(emit)).ok()) return Fail(st);
  return 0;
}

int CmdConflicts(const Args& a) {
  std::unique_ptr<Replica> r;
  Status st = OpenReplica(a, &r);
  if (!st.ok()) return Fail(st);
  std::vector<Conflict> cs;
  if (!(st = r->Conflicts(a.Has("all"), &cs)).ok()) return Fail(st);
  for (const auto& c : cs) {
    json j = {{"id", c.id},           {"table", c.table},         {"row", c.row},
              {"column", c.column},   {"kind", c.kind},           {"lost_value", c.lost_value},
              {"lost_node", c.lost_node}, {"lost_time_ms", c.lost_time_ms}, {"won_value", c.won_value},
              {"won_node", c.won_node}, {"won_time_ms", c.won_time_ms}, {"resolved", c.resolved}};
    std::cout << j.dump() << "\n";
  }
  return 0;
}

int CmdRestore(const Args& a) {
  if (a.pos.size() != 1) return Usage("restore takes a conflict ID");
  std::unique_ptr<Replica> r;
  Status st = OpenReplica(a, &r);
  if (!st.ok()) return Fail(st);
  std::string new_id;
  if (!(st = r->RestoreConflict(std::stoll(a.pos[0]), &new_id)).ok()) return Fail(st);
  if (!new_id.empty()) std::cout << "restored into new row " << new_id << "\n";
  return 0;
}

int CmdRejections(const Args& a) {
  std::unique_ptr<Replica> r;
  Status st = OpenReplica(a, &r);
  if (!st.ok()) return Fail(st);
  std::vector<store::Rejection> rej;
  if (!(st = r->Rejections(&rej)).ok()) return Fail(st);
  for (const auto& x : rej)
    std::cout << json{{"id", x.id}, {"code", x.code}, {"message", x.message}, {"change", ChangeToJson(x.change)}}.dump()
              << "\n";
  return 0;
}

int CmdNewId(const Args&) {
  std::cout << Replica::NewId() << "\n";
  return 0;
}

int CmdDemo(const Args& a) {
  Schema schema;
  Status st = LoadSchema(a, &schema);
  if (!st.ok()) return Fail(st);
  DemoOptions o;
  o.data_dir = a.Get("data", "data/demo");
  o.reps = std::stoi(a.Get("reps", "3"));
  o.keep = a.Has("keep");
  int rc = RunDemo(schema, o, std::cout);
  return rc ? rc : RunTerritoryDemo(schema, o, std::cout);
}

const Command kCommands[] = {
    {"server",
     "server [--data DIR] [--port N] [--address A] [--threads N] [--auth-key-file F] [--tls-cert F --tls-key F] "
     "[--production]",
     "Runs the sync server on its embedded SQLite store (DIR/server.db, default data/) until SIGINT/SIGTERM.\n"
     "Default port 8765 on 127.0.0.1. --auth-key-file: devices must present a token signed with that key\n"
     "(at least 32 bytes; e.g. openssl rand -hex 32 > key); without it every device reads and writes\n"
     "everything (development mode). --tls-cert/--tls-key (PEM): wss:// only. --production refuses to\n"
     "start without both.",
     CmdServer},
    {"user", "user --server-data DIR USER_ID [--role rep|supervisor|admin] [--team T] [--region R] [--name N] [--inactive]",
     "Adds or replaces a user. A supervisor sees the accounts of every user in the same team; --region picks\n"
     "the region-scoped reference rows (promotions). --inactive refuses the user's tokens from now on.",
     CmdUser},
    {"token", "token --server-data DIR --auth-key-file F --user ID --device ID [--ttl-hours H]",
     "Prints a signed bearer token for the user's device (default 720 hours).", CmdToken},
    {"revoke", "revoke --server-data DIR (--device ID | --token-id JTI)",
     "Refuses every token of a device (a lost tablet), or one token, from its next connection on.", CmdRevoke},
    {"export-outbox", "export-outbox --replica FILE OUT",
     "Writes the replica's unacknowledged changes to OUT (JSON Lines), for import-outbox on the server.",
     CmdExportOutbox},
    {"import-outbox", "import-outbox --server-data DIR [--user ID [--device ID]] FILE",
     "Applies an exported outbox as that device's pushes (with --user, under that user's scope and role);\n"
     "changes the server already holds count as duplicates, so importing twice is harmless.",
     CmdImportOutbox},
    {"delete-replica", "delete-replica --replica FILE [--force]",
     "Deletes a replica file; refused while it holds unacknowledged changes unless --force.", CmdDeleteReplica},
    {"history", "history --server-data DIR TABLE ID [--limit N]",
     "The audit trail of a row: every accepted change still in the log, with user, device, HLC and receive time.",
     CmdHistory},
    {"demo", "demo [--data DIR] [--reps N] [--keep]",
     "Starts a server on a loopback port and N simulated reps (default 3) that edit offline in conflicting\n"
     "ways, reconnect and sync; prints what converged. Exit 0 only if every replica equals the server.\n"
     "The data directory (default data/demo) is wiped first; --keep leaves it for inspection.",
     CmdDemo},
    {"import", "import (--replica FILE | --server-data DIR) JSONL",
     "Imports JSON Lines: {\"table\": ..., \"id\": ..., <column>: <value>, ...} per line (JSONL may be -).\n"
     "Every line is checked first; one bad line imports nothing and names the line and the reason.\n"
     "--server-data writes centrally into DIR/server.db (the only way to load reference tables such as skus).",
     CmdImport},
    {"put", "put --replica FILE TABLE ID JSON", "Sets fields of one row, e.g. put accounts a1 '{\"phone\":\"555\"}'.", CmdPut},
    {"new", "new --replica FILE TABLE JSON", "Creates a row with a fresh UUID and prints the id.", CmdNew},
    {"get", "get --replica FILE TABLE ID", "Prints one row as JSON.", CmdGet},
    {"delete", "delete --replica FILE TABLE ID", "Deletes a row (a tombstone that syncs; deletes are final).", CmdDelete},
    {"inc", "inc --replica FILE TABLE ID COLUMN DELTA", "Adds DELTA (may be negative) to a counter column.",
     CmdIncrement},
    {"query", "query --replica FILE TABLE [--where JSON] [--order-by COL] [--desc] [--limit N]",
     "Prints matching rows, one JSON object per line. --where takes {column: value, ...} (equality, ANDed).",
     CmdQuery},
    {"sync", "sync --replica FILE [--url ws://HOST:PORT/] [--token T | --token-file F] [--ca PEM] [--live [--seconds N]]",
     "Pushes the outbox and pulls every change since the cursor. --live stays connected and prints remote\n"
     "changes as they arrive, until Ctrl-C or N seconds.",
     CmdSync},
    {"status", "status --replica FILE", "Prints node id, pending outbox, cursor, conflicts and refusals.", CmdStatus},
    {"dump", "dump (--replica FILE | --server-data DIR)",
     "Prints every row as JSON Lines sorted by table then id: diff two dumps to compare replicas.", CmdDump},
    {"conflicts", "conflicts --replica FILE [--all]",
     "Lists writes that lost to a concurrent one (open ones; --all includes resolved).", CmdConflicts},
    {"restore", "restore --replica FILE CONFLICT_ID", "Writes a lost value back as a new edit.", CmdRestore},
    {"rejections", "rejections --replica FILE", "Lists changes the server refused, with the reason.", CmdRejections},
    {"new-id", "new-id", "Prints a fresh UUIDv4 (what the SDK uses for new records).", CmdNewId},
};

void PrintHelp() {
  std::cout << "fieldsync " << FIELDSYNC_VERSION << ": offline-first sync for field sales\n\nUsage:\n";
  for (const auto& c : kCommands) std::cout << "  fieldsync " << c.usage << "\n";
  std::cout << "\nCommon options: --schema FILE (default " << DefaultSchemaPath()
            << ").\n`fieldsync COMMAND --help` explains a command.\n";
}

}  // namespace

int Main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "help") {
    PrintHelp();
    return argc < 2 ? 2 : 0;
  }
  if (std::string(argv[1]) == "--version") {
    std::cout << "fieldsync " << FIELDSYNC_VERSION << " (protocol " << kProtocolVersion << ")\n";
    return 0;
  }
  std::string name = argv[1];
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    Args a;
    std::string err;
    if (!Parse(argc, argv, 2, &a, &err)) return Usage(err);
    if (a.Has("help")) {
      std::cout << "Usage: fieldsync " << c.usage << "\n\n" << c.help << "\n";
      return 0;
    }
    try {
      return c.run(a);
    } catch (const std::exception& e) {  // std::stoi and friends on bad numbers
      return Usage(std::string("bad argument: ") + e.what());
    }
  }
  return Usage("unknown command '" + name + "'");
}

}  // namespace fieldsync::cli

int main(int argc, char** argv) { return fieldsync::cli::Main(argc, argv); }
