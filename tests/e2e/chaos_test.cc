// Real processes under SIGKILL: the `fieldsync server` binary and three
// replicas driven by `fieldsync` CLI processes (put, inc, sync), killed at
// random moments (mid-write, mid-sync, the server mid-anything) and
// restarted, for a bounded time. Then everything restarts cleanly, every
// replica syncs twice, and the test checks what must hold whatever the
// timing was:
//   1. every replica's dump equals the server's, byte for byte;
//   2. every committed write is there: a new row exactly as written, a shared
//      field holding the last committed write of one of its writers (the
//      highest stamp wins, last-writer-wins, docs/merge.md), and nothing that
//      was never committed;
//   3. every counter equals the sum of the committed increments (none lost,
//      none applied twice);
//   4. PRAGMA integrity_check says ok on every database file.
// A write is committed when its CLI process exited 0; a write process that
// was killed is resolved by reading the replica right after (a local write
// is one SQLite transaction: it is there entirely or not at all).
//
// Randomness is in the timing and the choice of operations only; the seed is
// printed and can be replayed with FIELDSYNC_CHAOS_SEED (timing still
// varies). FIELDSYNC_CHAOS_SECONDS sets the length of the chaos phase.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

extern char** environ;

namespace fieldsync {
namespace {

using testing::TempDir;
using Clock = std::chrono::steady_clock;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string SchemaPath() {
  const char* p = std::getenv("FIELDSYNC_SCHEMA");
  return p ? p : "";
}

// Every process this test starts, so that none outlives it.
class Children {
 public:
  ~Children() {
    for (pid_t p : live_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
  }
  // Starts FIELDSYNC_CLI with `args`; stdout to out_path (truncated), stderr
  // to err_path (appended, or truncated first with truncate_err).
  pid_t Spawn(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path,
              bool truncate_err = false) {
    std::vector<std::string> all{FIELDSYNC_CLI};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(),
                                     O_WRONLY | O_CREAT | (truncate_err ? O_TRUNC : O_APPEND), 0644);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, FIELDSYNC_CLI, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    live_.insert(pid);
    return pid;
  }
  // waitpid; true once the process has ended (status in *status).
  bool Reap(pid_t pid, int* status, bool block) {
    int r = ::waitpid(pid, status, block ? 0 : WNOHANG);
    if (r == pid) {
      live_.erase(pid);
      return true;
    }
    return false;
  }
  void Kill(pid_t pid) {
    if (live_.count(pid)) ::kill(pid, SIGKILL);
  }

 private:
  std::set<pid_t> live_;
};

struct RunResult {
  int code = -1;  // exit code, or -signal
  std::string out, err;
};

class Chaos : public ::testing::Test {
 protected:
  // ---- processes run to completion ----------------------------------------------------

  RunResult Run(const std::vector<std::string>& args, int timeout_ms = 20000) {
    RunResult r;
    std::string out = dir_.File("run.out"), err = dir_.File("run.err");
    ::truncate(err.c_str(), 0);
    pid_t pid = kids_.Spawn(args, out, err);
    if (pid < 0) return r;
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    int status = 0;
    while (!kids_.Reap(pid, &status, false)) {
      if (Clock::now() > deadline) {
        kids_.Kill(pid);
        kids_.Reap(pid, &status, true);
        r.err = "timed out: " + Join(args);
        return r;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    r.out = ReadFile(out);
    r.err = ReadFile(err);
    return r;
  }
  static std::string Join(const std::vector<std::string>& a) {
    std::string s;
    for (const auto& x : a) s += x + " ";
    return s;
  }
  std::vector<std::string> Cmd(int c, std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--replica", ReplicaPath(c), "--schema", SchemaPath()});
    return args;
  }
  std::string ReplicaPath(int c) { return dir_.File("c" + std::to_string(c) + ".db"); }
  std::string ServerData() { return dir_.File("server"); }

  // ---- the server process ----------------------------------------------------------------

  // Starts the server on port_ (0 the first time) and waits for its URL.
  bool StartServer() {
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::string out = dir_.File("server.out");
      server_pid_ = kids_.Spawn({"server", "--data", ServerData(), "--port", std::to_string(port_), "--schema",
                                 SchemaPath()},
                                out, dir_.File("server.log"));
      auto deadline = Clock::now() + std::chrono::seconds(5);
      std::smatch m;
      while (Clock::now() < deadline) {
        std::string text = ReadFile(out);
        if (std::regex_search(text, m, std::regex("ws://127\\.0\\.0\\.1:(\\d+)/"))) {
          port_ = std::stoi(m[1]);
          url_ = m[0];
          ++server_starts_;
          return true;
        }
        int status;
        if (kids_.Reap(server_pid_, &status, false)) break;  // e.g. the old port is taken: try another
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      kids_.Kill(server_pid_);
      int status;
      kids_.Reap(server_pid_, &status, true);
      server_pid_ = -1;
      port_ = 0;
    }
    return false;
  }
  // SIGTERM: the clean way; true if it exited 0.
  bool StopServer() {
    if (server_pid_ < 0) return true;
    ::kill(server_pid_, SIGTERM);
    int status = 0;
    kids_.Reap(server_pid_, &status, true);
    server_pid_ = -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

  TempDir dir_;
  Children kids_;
  pid_t server_pid_ = -1;
  int port_ = 0;
  std::string url_;
  int server_starts_ = 0;
};

// What a client process was doing.
struct Op {
  enum Kind { kNewVisit, kSetField, kInc, kSync } kind = kSync;
  std::string table, row, field, value;  // kNewVisit: value = purpose; kSetField: the field's new value
  json fields;                            // kNewVisit: every field written
  int delta = 0;                          // kInc
  int64_t before = 0;                     // kInc: the counter on this replica before
};

struct Client {
  pid_t pid = -1;
  Op op;
  Clock::time_point start;
  Clock::time_point next_at;
  int n = 0;  // operations started
};

// The committed writes, by the order each client made them.
struct Ledger {
  std::map<std::string, json> visits;                                // row id -> fields
  std::map<std::tuple<std::string, std::string, std::string>,         // (table, row, field)
           std::map<int, std::vector<std::string>>> fields;           // client -> committed values in order
  std::set<std::string> never_committed;                              // values whose write did not commit
  std::map<std::string, int64_t> counters;                            // goods_loans row -> sum of deltas
};

int64_t CounterIn(const std::string& row_json) {
  json j = json::parse(row_json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("returned_qty")) return 0;
  return j["returned_qty"].get<int64_t>();
}

std::string IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    std::string e = db ? sqlite3_errmsg(db) : "cannot open";
    sqlite3_close(db);
    return e;
  }
  std::string result;
  char* err = nullptr;
  int rc = sqlite3_exec(
      db, "PRAGMA integrity_check",
      [](void* out, int n, char** vals, char**) {
        auto* s = static_cast<std::string*>(out);
        for (int i = 0; i < n; ++i) *s += (s->empty() ? "" : "; ") + std::string(vals[i] ? vals[i] : "NULL");
        return 0;
      },
      &result, &err);
  if (rc != SQLITE_OK) result = "error: " + std::string(err ? err : "?");
  sqlite3_free(err);
  sqlite3_close(db);
  return result;
}

TEST_F(Chaos, KilledClientsAndServerLoseNoCommittedWriteAndConverge) {
  ASSERT_FALSE(SchemaPath().empty()) << "FIELDSYNC_SCHEMA is not set (ctest sets it)";
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("FIELDSYNC_CHAOS_SEED")) seed = std::stoull(s);
  int seconds = 18;
  if (const char* s = std::getenv("FIELDSYNC_CHAOS_SECONDS")) seconds = std::stoi(s);
  std::printf("chaos seed %llu (replay: FIELDSYNC_CHAOS_SEED=%llu), %d s\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed), seconds);
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  constexpr int kClients = 3;
  const char* kAccounts[] = {"acc0", "acc1", "acc2"};
  const char* kFields[] = {"phone", "city"};
  const char* kLoans[] = {"gl0", "gl1"};
  const int kDeltas[] = {-2, -1, 1, 2, 3, 4, 5};

  ASSERT_TRUE(StartServer()) << ReadFile(dir_.File("server.log"));
  std::vector<Client> clients(kClients);
  Ledger ledger;
  struct Stats {
    int ops = 0, syncs_ok = 0, syncs_failed = 0, committed = 0;
    int killed_sync = 0, killed_write = 0, killed_write_committed = 0, killed_server = 0;
    int killed_server_mid_sync = 0;   // some client was syncing at that moment
    int64_t sync_kill_ms_max = 0;     // how far into its sync a killed process was, at most
  } stats;

  int64_t usual_sync_us = 15000, usual_write_us = 10000;  // running averages of completed runs
  std::map<std::string, int> sync_errors;  // how failed syncs failed

  // Resolves a write whose process was killed: read the replica now (no other
  // process touches it until the next operation of this client).
  auto resolve = [&](int c, const Op& op) -> std::optional<bool> {
    RunResult g = Run(Cmd(c, {"get", op.table, op.row}));
    if (g.code != 0 && g.code != 1) {
      ADD_FAILURE() << "get after a kill: " << g.code << " " << g.err;
      return std::nullopt;
    }
    json row = g.code == 0 ? json::parse(g.out, nullptr, false) : json::object();
    switch (op.kind) {
      case Op::kNewVisit: {
        if (g.code == 1) return false;
        for (const auto& [k, v] : op.fields.items())
          if (row.value(k, json()) != v) {
            ADD_FAILURE() << "half-written visit " << op.row << ": " << g.out;
            return std::nullopt;
          }
        return true;
      }
      case Op::kSetField:
        return g.code == 0 && row.value(op.field, json()) == op.value;
      case Op::kInc: {
        int64_t now = g.code == 0 ? CounterIn(g.out) : 0;
        if (now == op.before + op.delta) return true;
        if (now == op.before) return false;
        ADD_FAILURE() << "counter " << op.row << " is " << now << ", neither " << op.before << " nor "
                      << op.before + op.delta;
        return std::nullopt;
      }
      case Op::kSync: break;
    }
    return std::nullopt;
  };

  auto record = [&](int c, const Op& op, bool committed) {
    switch (op.kind) {
      case Op::kNewVisit:
        if (committed) ledger.visits[op.row] = op.fields;
        break;
      case Op::kSetField:
        if (committed) ledger.fields[{op.table, op.row, op.field}][c].push_back(op.value);
        else ledger.never_committed.insert(op.value);
        break;
      case Op::kInc:
        if (committed) ledger.counters[op.row] += op.delta;
        break;
      case Op::kSync: break;
    }
    if (committed) ++stats.committed;
  };

  // Chooses and starts client c's next operation.
  auto start_op = [&](int c) {
    Client& cl = clients[c];
    Op op;
    int pick = uniform(0, 99);
    std::string tag = "c" + std::to_string(c) + "-" + std::to_string(cl.n++);
    std::vector<std::string> args;
    if (pick < 30) {
      op.kind = Op::kNewVisit;
      op.table = "visits";
      op.row = "v" + tag;
      op.value = tag;
      op.fields = {{"account_id", kAccounts[uniform(0, 2)]}, {"purpose", tag}, {"rep", "c" + std::to_string(c)}};
      args = Cmd(c, {"put", op.table, op.row, op.fields.dump()});
    } else if (pick < 55) {
      op.kind = Op::kSetField;
      op.table = "accounts";
      op.row = kAccounts[uniform(0, 2)];
      op.field = kFields[uniform(0, 1)];
      op.value = tag;
      args = Cmd(c, {"put", op.table, op.row, json{{op.field, op.value}}.dump()});
    } else if (pick < 72) {
      op.kind = Op::kInc;
      op.table = "goods_loans";
      op.row = kLoans[uniform(0, 1)];
      op.delta = kDeltas[uniform(0, 6)];
      RunResult g = Run(Cmd(c, {"get", op.table, op.row}));
      ASSERT_TRUE(g.code == 0 || g.code == 1) << g.err;
      op.before = g.code == 0 ? CounterIn(g.out) : 0;
      args = Cmd(c, {"inc", op.table, op.row, "returned_qty", std::to_string(op.delta)});
    } else {
      op.kind = Op::kSync;
      args = Cmd(c, {"sync", "--url", url_.empty() ? "ws://127.0.0.1:1/" : url_});
    }
    cl.op = op;
    cl.start = Clock::now();
    cl.pid = kids_.Spawn(args, dir_.File("c" + std::to_string(c) + ".out"), dir_.File("c" + std::to_string(c) + ".err"),
                         /*truncate_err=*/true);
    ASSERT_GT(cl.pid, 0);
    ++stats.ops;
  };

  // Handles the end of client c's process.
  auto finish_op = [&](int c, int status) {
    Client& cl = clients[c];
    const Op op = cl.op;
    cl.pid = -1;
    bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 0) {
      int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - cl.start).count();
      int64_t& usual = op.kind == Op::kSync ? usual_sync_us : usual_write_us;
      usual = (usual * 7 + us) / 8;
    }
    if (op.kind == Op::kSync) {
      if (killed) {
        ++stats.killed_sync;
        stats.sync_kill_ms_max = std::max<int64_t>(
            stats.sync_kill_ms_max, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - cl.start).count());
      }
      else if (code == 0) ++stats.syncs_ok;
      else if (code == 1) {
        // The only acceptable failure: the server is down or was killed
        // (refused, reset or cut-off connection), never a protocol error.
        std::string err = ReadFile(dir_.File("c" + std::to_string(c) + ".err"));
        EXPECT_EQ(err.rfind("fieldsync: io_error: ", 0), 0u) << "sync of client " << c << ": " << err;
        ++stats.syncs_failed;
        sync_errors[err.substr(0, err.find(':', 21))]++;
      } else {
        ADD_FAILURE() << "sync of client " << c << " ended with status " << status;
      }
      return;
    }
    if (killed) {
      ++stats.killed_write;
      std::optional<bool> committed = resolve(c, op);
      if (!committed) return;
      if (*committed) ++stats.killed_write_committed;
      record(c, op, *committed);
      return;
    }
    if (code != 0) {
      ADD_FAILURE() << "write of client " << c << " failed (" << code
                    << "): " << ReadFile(dir_.File("c" + std::to_string(c) + ".err"));
      return;
    }
    if (op.kind == Op::kInc) {
      int64_t after = CounterIn(ReadFile(dir_.File("c" + std::to_string(c) + ".out")));
      EXPECT_EQ(after, op.before + op.delta) << "inc on " << op.row << " of client " << c;
    }
    record(c, op, true);
  };

  // ---- the chaos phase ------------------------------------------------------------------
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::seconds(seconds);
  auto next_kill = t0 + std::chrono::milliseconds(uniform(100, 400));
  Clock::time_point server_back;  // when a killed server restarts
  enum class Target { kServer, kSync, kWrite } target = Target::kSync;
  bool target_chosen = false;
  pid_t armed = -1;  // a client process to kill at armed_at
  Clock::time_point armed_at;
  for (int c = 0; c < kClients; ++c) clients[c].next_at = t0;

  while (Clock::now() < end && !HasFatalFailure()) {
    auto now = Clock::now();
    // Reap and restart clients.
    for (int c = 0; c < kClients; ++c) {
      Client& cl = clients[c];
      int status;
      if (cl.pid > 0 && kids_.Reap(cl.pid, &status, false)) {
        finish_op(c, status);
        cl.next_at = Clock::now() + std::chrono::milliseconds(uniform(0, 5));
      }
      if (cl.pid < 0 && Clock::now() >= cl.next_at) {
        start_op(c);
        if (HasFatalFailure()) break;
        // A pending kill of this kind of process fires at a random moment of
        // this one: mid-start, mid-transaction, mid-push, mid-pull...
        bool is_sync = cl.op.kind == Op::kSync;
        // The moment is drawn from the later part of the process's usual
        // run time (the first part is exec and opening files), so that kills
        // land mid-conversation and around the commit, not only at start-up.
        if (target_chosen && armed < 0 && target != Target::kServer && is_sync == (target == Target::kSync)) {
          int64_t usual = is_sync ? usual_sync_us : usual_write_us;
          armed = cl.pid;
          armed_at = Clock::now() + std::chrono::microseconds(uniform(static_cast<int>(usual / 3),
                                                                      static_cast<int>(usual * 11 / 10)));
        }
      }
    }
    // The server: it must not die of its own accord.
    if (server_pid_ > 0) {
      int status;
      if (kids_.Reap(server_pid_, &status, false)) {
        ADD_FAILURE() << "the server exited by itself (status " << status << "): "
                      << ReadFile(dir_.File("server.log")).substr(0, 4000);
        server_pid_ = -1;
        break;
      }
    } else if (now >= server_back) {
      ASSERT_TRUE(StartServer()) << ReadFile(dir_.File("server.log"));
    }
    // The killer.
    if (now >= next_kill && !target_chosen) {
      int k = uniform(0, 99);
      target = k < 25 ? Target::kServer : k < 75 ? Target::kSync : Target::kWrite;
      target_chosen = true;
    }
    if (target_chosen) {
      bool done = false;
      if (target == Target::kServer) {
        if (server_pid_ > 0) {
          for (const Client& cl : clients)
            if (cl.pid > 0 && cl.op.kind == Op::kSync) {
              ++stats.killed_server_mid_sync;
              break;
            }
          kids_.Kill(server_pid_);
          int status;
          kids_.Reap(server_pid_, &status, true);
          server_pid_ = -1;
          ++stats.killed_server;
          server_back = Clock::now() + std::chrono::milliseconds(uniform(30, 300));
        }
        done = true;
      } else {
        if (armed > 0 && Clock::now() >= armed_at) {
          kids_.Kill(armed);  // if it already ended, nothing happens
          done = true;
        } else if (armed < 0 && now - next_kill > std::chrono::milliseconds(300)) {
          done = true;  // no such process came along: skip this one
        }
      }
      if (done) {
        target_chosen = false;
        armed = -1;
        next_kill = Clock::now() + std::chrono::milliseconds(uniform(100, 400));
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
  // Let the last operations end on their own.
  for (int c = 0; c < kClients; ++c) {
    if (clients[c].pid < 0) continue;
    int status = 0;
    auto deadline = Clock::now() + std::chrono::seconds(20);
    bool ended = false;
    while (!(ended = kids_.Reap(clients[c].pid, &status, false)) && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_TRUE(ended) << "client " << c << " hung";
    finish_op(c, status);
  }
  ASSERT_FALSE(HasFailure());

  // ---- clean restart and the final syncs ------------------------------------------------
  if (server_pid_ > 0) {
    EXPECT_TRUE(StopServer()) << "SIGTERM did not stop the server cleanly";
  }
  ASSERT_TRUE(StartServer()) << ReadFile(dir_.File("server.log"));
  for (int round = 0; round < 2; ++round)
    for (int c = 0; c < kClients; ++c) {
      RunResult r = Run(Cmd(c, {"sync", "--url", url_}));
      ASSERT_EQ(r.code, 0) << "final sync of client " << c << ": " << r.out << r.err;
    }
  for (int c = 0; c < kClients; ++c) {
    RunResult r = Run(Cmd(c, {"status"}));
    ASSERT_EQ(r.code, 0) << r.err;
    json s = json::parse(r.out, nullptr, false);
    EXPECT_EQ(s.value("pending", -1), 0) << "client " << c << ": " << r.out;
    EXPECT_EQ(s.value("rejections", -1), 0) << "client " << c << ": " << r.out;
  }
  EXPECT_TRUE(StopServer()) << "SIGTERM did not stop the server cleanly";

  std::printf(
      "chaos: %d operations, %d writes committed, syncs %d ok / %d failed (server down) / %d killed (up to %lld ms "
      "in); "
      "killed %d writes (%d had committed), the server %d times (%d of them while a client synced; %d starts)\n",
      stats.ops, stats.committed, stats.syncs_ok, stats.syncs_failed, stats.killed_sync,
      static_cast<long long>(stats.sync_kill_ms_max), stats.killed_write,
      stats.killed_write_committed, stats.killed_server, stats.killed_server_mid_sync, server_starts_);
  // Sessions the server saw end without a closing handshake: clients killed
  // in the middle of their conversation with it.
  std::string log = ReadFile(dir_.File("server.log"));
  int cut_off = 0;
  for (size_t at = 0; (at = log.find(": connection ended: ", at)) != std::string::npos; ++at) ++cut_off;
  // Pushes the server had already committed when their client died or
  // lost the server, sent again: acknowledged as duplicates, applied once.
  int resent = 0;
  std::regex dup_re("applied, [1-9][0-9]* duplicate");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), dup_re); it != std::sregex_iterator(); ++it) ++resent;
  for (const auto& [e, n] : sync_errors) std::printf("chaos: %d failed syncs: %s\n", n, e.c_str());
  std::printf("chaos: the server saw %d sessions cut off mid-conversation and %d pushes with duplicates\n", cut_off,
              resent);
  EXPECT_GE(stats.killed_server, 1);
  EXPECT_GE(stats.killed_sync + stats.killed_server, 2);
  EXPECT_GE(stats.syncs_ok, 10);

  // ---- 1. every replica equals the server ------------------------------------------------
  RunResult server_dump = Run({"dump", "--server-data", ServerData(), "--schema", SchemaPath()});
  ASSERT_EQ(server_dump.code, 0) << server_dump.err;
  ASSERT_FALSE(server_dump.out.empty());
  for (int c = 0; c < kClients; ++c) {
    RunResult d = Run(Cmd(c, {"dump"}));
    ASSERT_EQ(d.code, 0) << d.err;
    EXPECT_EQ(d.out, server_dump.out) << "client " << c << " differs from the server";
  }

  // ---- 2. and 3. the committed writes, judged on the server's rows ------------------------
  std::map<std::pair<std::string, std::string>, json> rows;
  std::istringstream lines(server_dump.out);
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    rows[{j.value("table", ""), j.value("id", "")}] = j;
  }
  auto row = [&](const std::string& t, const std::string& id) -> const json* {
    auto it = rows.find({t, id});
    return it == rows.end() ? nullptr : &it->second;
  };
  // New rows: each committed one exactly as written, and no other.
  size_t visit_rows = 0;
  for (const auto& [key, j] : rows) {
    if (key.first != "visits") continue;
    ++visit_rows;
    EXPECT_TRUE(ledger.visits.count(key.second)) << "a visit nobody committed: " << j.dump();
  }
  EXPECT_EQ(visit_rows, ledger.visits.size());
  for (const auto& [id, fields] : ledger.visits) {
    const json* r = row("visits", id);
    if (!r) {
      ADD_FAILURE() << "committed visit " << id << " is missing";
      continue;
    }
    for (const auto& [k, v] : fields.items()) EXPECT_EQ(r->value(k, json()), v) << id << "." << k;
  }
  // Shared fields: last-writer-wins by stamp. A client's stamps only grow, so
  // the winner is the last committed write of one of the writers.
  for (const auto& [key, by_client] : ledger.fields) {
    const auto& [table, id, field] = key;
    const json* r = row(table, id);
    if (!r || !r->contains(field)) {
      ADD_FAILURE() << table << "/" << id << "." << field << " is missing";
      continue;
    }
    std::string have = (*r)[field].get<std::string>();
    std::set<std::string> lasts;
    for (const auto& [c, values] : by_client) lasts.insert(values.back());
    EXPECT_TRUE(lasts.count(have)) << table << "/" << id << "." << field << " = " << have
                                   << ", not the last committed write of any client";
    EXPECT_FALSE(ledger.never_committed.count(have)) << have << " was never committed";
  }
  // Counters: exactly the committed increments.
  for (const char* id : kLoans) {
    const json* r = row("goods_loans", id);
    int64_t have = r ? r->value("returned_qty", int64_t{0}) : 0;
    EXPECT_EQ(have, ledger.counters[id]) << "goods_loans/" << id;
  }

  // ---- 4. every database file is sound ---------------------------------------------------
  EXPECT_EQ(IntegrityCheck(ServerData() + "/server.db"), "ok");
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(IntegrityCheck(ReplicaPath(c)), "ok") << "client " << c;
}

}  // namespace
}  // namespace fieldsync
