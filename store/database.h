// A thin RAII layer over SQLite: one connection, prepared statements only,
// and scoped transactions. Every SQL string in FieldSync lives in store/.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sync/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace fieldsync::store {

class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* s) : stmt_(s) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binding is 1-based, as in SQLite.
  Statement& Bind(int i, int64_t v);
  Statement& Bind(int i, uint64_t v) { return Bind(i, static_cast<int64_t>(v)); }
  Statement& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Statement& Bind(int i, double v);
  Statement& Bind(int i, std::string_view v);
  Statement& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Statement& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Statement& BindNull(int i);
  // Binds text SQLite reads in place instead of copying: `v` must stay
  // valid and unchanged until the last Step() of this use (Run() included).
  // For the hot write paths, where the copy was a malloc per bound string.
  Statement& BindRef(int i, std::string_view v);
  // A BLOB, read in place under the same rule as BindRef.
  Statement& BindBlobRef(int i, std::string_view v);

  // Steps once: true while a row is available; errors land in status().
  bool Step();
  // Steps to completion (for writes). Returns the error, if any.
  Status Run();
  // Resets and clears bindings; called automatically by Database::Prepare.
  void Reset();

  int64_t Int(int col) const;
  double Real(int col) const;
  std::string Text(int col) const;
  // The column's bytes (a BLOB, or text), valid until the next Step or
  // Reset of this statement.
  std::string_view Bytes(int col) const;
  bool IsNull(int col) const;
  int Type(int col) const;  // SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, ...

  const Status& status() const { return status_; }

 private:
  friend class Database;
  sqlite3_stmt* stmt_ = nullptr;
  Status status_;
  bool dirty_ = false;  // bound or stepped since the last Reset: Reset has work to do
};

struct OpenOptions {
  bool create = true;
  // FULL: a committed transaction survives power loss, not only a process
  // crash. The SDK and the server both promise that, so it is the default.
  bool synchronous_full = true;
};

// Fault injection, in the spirit of LevelDB's fault-injecting Env: called
// before every statement (Prepare and Exec, except ROLLBACK). A non-OK
// status fails that statement as if the process had died there; the hook
// should keep failing from then on, so nothing after the "crash" commits.
// Only the simulator and crash tests set one.
using FaultHook = std::function<Status(std::string_view sql)>;

class Database {
 public:
  Database() = default;
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status Open(const std::string& path, const OpenOptions& opts = {});
  void Close();
  bool is_open() const { return db_ != nullptr; }

  // Runs SQL with no parameters (DDL, PRAGMA, BEGIN/COMMIT).
  Status Exec(const std::string& sql);

  // Returns a cached prepared statement, reset and unbound. The reference is
  // valid until Close(). Preparation errors come back through `st`.
  Statement& Prepare(const std::string& sql, Status* st);
  // The same for SQL in a string literal (or any text that outlives this
  // Database): found by its address, then checked against the statement's
  // text, without building and hashing a std::string on every call.
  Statement& Prepare(const char* sql, Status* st);

  void SetFaultHook(FaultHook hook) { fault_ = std::move(hook); }

  int64_t Changes() const;  // rows changed by the last statement
  int64_t LastInsertRowid() const;
  std::string LastError() const;
  sqlite3* raw() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
  std::unordered_map<const char*, Statement*> by_address_;  // Prepare(const char*)
  Statement dead_;  // what a failed Prepare returns (per connection: no shared state)
  FaultHook fault_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit().
class Transaction {
 public:
  explicit Transaction(Database* db);
  ~Transaction();
  const Status& status() const { return status_; }
  Status Commit();

 private:
  Database* db_;
  bool done_ = false;
  Status status_;
};

// A read transaction (BEGIN DEFERRED) for many reads, ended on destruction;
// nothing when the connection is already inside a transaction. Outside one,
// every statement takes and drops the WAL read lock itself (fcntl calls on
// the -shm file: a sixth of a snapshot page's CPU), and two statements may
// see two different states of the file.
class ReadTransaction {
 public:
  explicit ReadTransaction(Database* db);
  ~ReadTransaction();
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;
  const Status& status() const { return status_; }

 private:
  Database* db_;
  bool own_ = false;
  Status status_;
};

}  // namespace fieldsync::store
