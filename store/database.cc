#include "store/database.h"

#include <cstring>

#include <sqlite3.h>

namespace fieldsync::store {

Statement& Statement::Bind(int i, int64_t v) {
  dirty_ = true;
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Statement& Statement::Bind(int i, double v) {
  dirty_ = true;
  sqlite3_bind_double(stmt_, i, v);
  return *this;
}
Statement& Statement::Bind(int i, std::string_view v) {
  dirty_ = true;
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindRef(int i, std::string_view v) {
  dirty_ = true;
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  return *this;
}
Statement& Statement::BindBlobRef(int i, std::string_view v) {
  dirty_ = true;
  sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  return *this;
}
Statement& Statement::BindNull(int i) {
  dirty_ = true;
  sqlite3_bind_null(stmt_, i);
  return *this;
}

bool Statement::Step() {
  if (!stmt_) {
    status_ = Status::IoError("sqlite: statement failed to prepare");
    return false;
  }
  dirty_ = true;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE)
    status_ = Status::IoError(std::string("sqlite: ") + sqlite3_errmsg(sqlite3_db_handle(stmt_)));
  return false;
}

Status Statement::Run() {
  while (Step()) {
  }
  Status st = status_;
  Reset();
  return st;
}

void Statement::Reset() {
  if (stmt_) {
    // Run() resets, and Prepare() resets again: the second has nothing to
    // clear (clear_bindings walks every parameter).
    if (dirty_) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
      dirty_ = false;
    }
    status_ = Status::OK();
  }
}

int64_t Statement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::Real(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Statement::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
}
std::string_view Statement::Bytes(int col) const {
  // sqlite3_column_blob first, then _bytes: the order SQLite documents.
  const void* p = sqlite3_column_blob(stmt_, col);
  if (!p) return {};
  return std::string_view(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
}
bool Statement::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
int Statement::Type(int col) const { return sqlite3_column_type(stmt_, col); }

Database::~Database() { Close(); }

Status Database::Open(const std::string& path, const OpenOptions& opts) {
  // SQLite's allocation statistics take a global mutex on every malloc and
  // free, 4% of a push's instructions; nothing here reads them. Only
  // possible before SQLite initializes: if the embedding app got there
  // first, the call is refused and changes nothing.
  static const bool no_memstatus = [] { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK; }();
  (void)no_memstatus;
  Close();
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (opts.create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    Close();
    return Status::IoError("cannot open " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  sqlite3_extended_result_codes(db_, 1);
  Status st = Exec("PRAGMA journal_mode=WAL");
  if (st.ok()) st = Exec(opts.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  if (st.ok()) st = Exec("PRAGMA foreign_keys=OFF");
  // SQLite's default page cache is 2 MB; a replica's b-trees outgrow it
  // within the first thousand rows of a bootstrap (measured when fs_fields
  // held one entry per field), after which every insert re-reads pages
  // from the OS.
  // 16 MB keeps a territory's working set cached (docs/performance.md).
  if (st.ok()) st = Exec("PRAGMA cache_size=-16384");
  if (!st.ok()) Close();
  return st;
}

void Database::Close() {
  for (auto& [sql, s] : cache_) sqlite3_finalize(s->stmt_);
  cache_.clear();
  by_address_.clear();
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
}

Status Database::Exec(const std::string& sql) {
  if (!db_) return Status(Code::kClosed, "database is closed");
  if (fault_ && sql != "ROLLBACK") {
    Status f = fault_(sql);
    if (!f.ok()) return f;
  }
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Status::IoError("sqlite: " + msg);
  }
  return Status::OK();
}

Statement& Database::Prepare(const char* sql, Status* st) {
  auto it = by_address_.find(sql);
  if (it != by_address_.end() && std::strcmp(sqlite3_sql(it->second->stmt_), sql) == 0) {
    if (fault_) {
      *st = fault_(sql);
      if (!st->ok()) {
        dead_.status_ = *st;
        return dead_;
      }
    }
    it->second->Reset();
    *st = Status::OK();
    return *it->second;
  }
  Statement& s = Prepare(std::string(sql), st);
  if (st->ok() && &s != &dead_) by_address_[sql] = &s;
  return s;
}

Statement& Database::Prepare(const std::string& sql, Status* st) {
  if (fault_) {
    *st = fault_(sql);
    if (!st->ok()) {
      dead_.status_ = *st;
      return dead_;
    }
  }
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    it->second->Reset();
    *st = Status::OK();
    return *it->second;
  }
  sqlite3_stmt* raw = nullptr;
  int rc = db_ ? sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr)
               : SQLITE_MISUSE;
  if (rc != SQLITE_OK) {
    *st = Status::IoError("sqlite prepare: " + LastError() + " in: " + sql);
    dead_.status_ = Status::OK();  // stepping it fails with an error; it never crashes
    return dead_;
  }
  auto s = std::make_unique<Statement>(raw);
  Statement& ref = *s;
  cache_.emplace(sql, std::move(s));
  *st = Status::OK();
  return ref;
}

int64_t Database::Changes() const { return sqlite3_changes64(db_); }
int64_t Database::LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
std::string Database::LastError() const { return db_ ? sqlite3_errmsg(db_) : "database is closed"; }

Transaction::Transaction(Database* db) : db_(db) { status_ = db_->Exec("BEGIN IMMEDIATE"); done_ = !status_.ok(); }

Transaction::~Transaction() {
  if (!done_) db_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  if (done_) return status_.ok() ? Status(Code::kClosed, "transaction already finished") : status_;
  done_ = true;
  Status st = db_->Exec("COMMIT");
  if (!st.ok()) db_->Exec("ROLLBACK");
  return st;
}

ReadTransaction::ReadTransaction(Database* db) : db_(db) {
  if (!db_->is_open() || !sqlite3_get_autocommit(db_->raw())) return;
  status_ = db_->Exec("BEGIN");
  own_ = status_.ok();
}

ReadTransaction::~ReadTransaction() {
  // Nothing was written: ending it either way releases the read lock.
  if (own_ && !db_->Exec("COMMIT").ok()) db_->Exec("ROLLBACK");
}

}  // namespace fieldsync::store
