// store/database: the RAII layer over SQLite. Transactions roll back unless
// committed, commits are durable across close/reopen, bad SQL is an error
// value, and every connection runs in WAL mode with synchronous=FULL.
#include "store/database.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace fieldsync::store {
namespace {

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fieldsync_db_test_XXXXXX";
    char* dir = mkdtemp(tmpl);
    ASSERT_NE(dir, nullptr) << "mkdtemp failed";
    dir_ = dir;
    path_ = dir_ + "/test.db";
  }

  void TearDown() override {
    db_.Close();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // Opens db_ on path_ and creates the table t(k, v) if missing.
  void OpenWithTable(const OpenOptions& opts = {}) {
    Status st = db_.Open(path_, opts);
    ASSERT_TRUE(st.ok()) << st.ToString();
    st = db_.Exec("CREATE TABLE IF NOT EXISTS t(k TEXT PRIMARY KEY, v INTEGER NOT NULL)");
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  static Status Insert(Database& db, const std::string& k, int64_t v) {
    Status st;
    Statement& s = db.Prepare("INSERT INTO t(k, v) VALUES(?, ?)", &st);
    if (!st.ok()) return st;
    s.Bind(1, k).Bind(2, v);
    return s.Run();
  }

  // Rows in t, or -1 on error.
  static int64_t Count(Database& db) {
    Status st;
    Statement& s = db.Prepare("SELECT count(*) FROM t", &st);
    if (!st.ok()) return -1;
    int64_t n = s.Step() ? s.Int(0) : -1;
    if (!s.status().ok()) n = -1;
    s.Reset();
    return n;
  }

  // The value stored under k, or -1 when absent.
  static int64_t ValueOf(Database& db, const std::string& k) {
    Status st;
    Statement& s = db.Prepare("SELECT v FROM t WHERE k=?", &st);
    if (!st.ok()) return -1;
    s.Bind(1, k);
    int64_t v = s.Step() ? s.Int(0) : -1;
    s.Reset();
    return v;
  }

  static std::string PragmaText(Database& db, const std::string& pragma) {
    Status st;
    Statement& s = db.Prepare("PRAGMA " + pragma, &st);
    if (!st.ok()) return "<prepare failed: " + st.ToString() + ">";
    std::string out = s.Step() ? s.Text(0) : "<no row>";
    s.Reset();
    return out;
  }

  static int64_t PragmaInt(Database& db, const std::string& pragma) {
    Status st;
    Statement& s = db.Prepare("PRAGMA " + pragma, &st);
    if (!st.ok()) return -1;
    int64_t out = s.Step() ? s.Int(0) : -1;
    s.Reset();
    return out;
  }

  std::string dir_;
  std::string path_;
  Database db_;
};

TEST_F(DatabaseTest, TransactionRollsBackOnDestructionWithoutCommit) {
  OpenWithTable();
  ASSERT_TRUE(Insert(db_, "kept", 1).ok());
  {
    Transaction tx(&db_);
    ASSERT_TRUE(tx.status().ok()) << tx.status().ToString();
    ASSERT_TRUE(Insert(db_, "dropped", 2).ok());
    // Visible inside the transaction...
    EXPECT_EQ(Count(db_), 2);
    EXPECT_EQ(ValueOf(db_, "dropped"), 2);
  }
  // ...and gone once it is destroyed uncommitted.
  EXPECT_EQ(Count(db_), 1);
  EXPECT_EQ(ValueOf(db_, "dropped"), -1);
  EXPECT_EQ(ValueOf(db_, "kept"), 1);

  // Not resurrected by a reopen either.
  db_.Close();
  Database again;
  ASSERT_TRUE(again.Open(path_).ok());
  EXPECT_EQ(Count(again), 1);
  EXPECT_EQ(ValueOf(again, "dropped"), -1);

  // And the connection is usable for a new transaction afterwards.
  Transaction tx(&again);
  ASSERT_TRUE(tx.status().ok()) << tx.status().ToString();
  ASSERT_TRUE(Insert(again, "later", 3).ok());
  ASSERT_TRUE(tx.Commit().ok());
  EXPECT_EQ(Count(again), 2);
}

TEST_F(DatabaseTest, CommitPersistsAcrossCloseAndReopen) {
  OpenWithTable();
  {
    Transaction tx(&db_);
    ASSERT_TRUE(tx.status().ok()) << tx.status().ToString();
    ASSERT_TRUE(Insert(db_, "a", 10).ok());
    ASSERT_TRUE(Insert(db_, "b", 20).ok());
    Status st = tx.Commit();
    ASSERT_TRUE(st.ok()) << st.ToString();
    // A second Commit is refused, not a second COMMIT statement.
    Status again = tx.Commit();
    EXPECT_FALSE(again.ok());
    EXPECT_EQ(again.code(), Code::kClosed) << again.ToString();
  }  // destructor after Commit must not roll anything back
  EXPECT_EQ(Count(db_), 2);
  db_.Close();
  EXPECT_FALSE(db_.is_open());

  Database reopened;
  Status st = reopened.Open(path_);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Count(reopened), 2);
  EXPECT_EQ(ValueOf(reopened, "a"), 10);
  EXPECT_EQ(ValueOf(reopened, "b"), 20);
}

TEST_F(DatabaseTest, NestedTransactionFailsWithoutDisturbingTheOuterOne) {
  OpenWithTable();
  Transaction outer(&db_);
  ASSERT_TRUE(outer.status().ok());
  ASSERT_TRUE(Insert(db_, "outer", 1).ok());
  {
    Transaction inner(&db_);  // BEGIN inside a transaction: an error value
    EXPECT_FALSE(inner.status().ok());
    EXPECT_FALSE(inner.Commit().ok());
  }  // must not ROLLBACK the outer transaction
  EXPECT_EQ(ValueOf(db_, "outer"), 1);
  ASSERT_TRUE(outer.Commit().ok());
  db_.Close();
  Database reopened;
  ASSERT_TRUE(reopened.Open(path_).ok());
  EXPECT_EQ(ValueOf(reopened, "outer"), 1);
}

// A read transaction sees one state of the file for all its reads, and
// inside a write transaction it is nothing: it neither fails nor ends it.
TEST_F(DatabaseTest, ReadTransactionReadsOneStateAndLeavesAnOuterTransactionAlone) {
  OpenWithTable();
  ASSERT_TRUE(Insert(db_, "a", 1).ok());
  Database other;
  ASSERT_TRUE(other.Open(path_).ok());
  {
    ReadTransaction rt(&db_);
    ASSERT_TRUE(rt.status().ok()) << rt.status().ToString();
    EXPECT_EQ(Count(db_), 1);
    ASSERT_TRUE(Insert(other, "b", 2).ok());  // committed by another connection
    EXPECT_EQ(Count(db_), 1);                 // not seen inside the read transaction
  }
  EXPECT_EQ(Count(db_), 2);  // seen once it has ended
  other.Close();

  Transaction tx(&db_);
  ASSERT_TRUE(tx.status().ok());
  ASSERT_TRUE(Insert(db_, "c", 3).ok());
  {
    ReadTransaction rt(&db_);
    EXPECT_TRUE(rt.status().ok());
    EXPECT_EQ(Count(db_), 3);
  }
  ASSERT_TRUE(tx.Commit().ok());  // the outer transaction was still open
  EXPECT_EQ(ValueOf(db_, "c"), 3);
}

TEST_F(DatabaseTest, PrepareOfBadSqlReturnsAnErrorStatus) {
  OpenWithTable();
  Status st;
  Statement& bad = db_.Prepare("SELEC nonsense FROM", &st);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kIoError) << st.ToString();
  EXPECT_NE(st.message().find("SELEC nonsense FROM"), std::string::npos) << st.message();
  // Stepping the statement handed back is an error, not a row.
  EXPECT_FALSE(bad.Step());
  EXPECT_FALSE(bad.status().ok());

  Status missing;
  db_.Prepare("SELECT * FROM no_such_table", &missing);
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("no_such_table"), std::string::npos) << missing.message();

  // The connection is still fine afterwards, and good SQL prepares OK.
  ASSERT_TRUE(Insert(db_, "x", 7).ok());
  EXPECT_EQ(ValueOf(db_, "x"), 7);
  Status good;
  db_.Prepare("SELECT v FROM t", &good);
  EXPECT_TRUE(good.ok()) << good.ToString();
}

// Database::Prepare documents its failure result as "stepping it is a no-op
// error". Run() steps and then resets; it must report the error too, not
// crash. Checked in a child process so that a crash fails only this test.
using DatabaseDeathTest = DatabaseTest;

TEST_F(DatabaseDeathTest, RunningTheStatementOfAFailedPrepareIsAnError) {
  OpenWithTable();
  db_.Close();
  const std::string path = path_;
  EXPECT_EXIT(
      {
        Database db;
        if (!db.Open(path).ok()) std::_Exit(2);
        Status st;
        Statement& bad = db.Prepare("INSERT INTO no_such_table VALUES(1)", &st);
        Status run = bad.Run();
        std::_Exit(!st.ok() && !run.ok() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(DatabaseTest, PrepareOnAClosedDatabaseIsAnError) {
  Database closed;
  Status st;
  closed.Prepare("SELECT 1", &st);
  EXPECT_FALSE(st.ok());
  Status ex = closed.Exec("SELECT 1");
  EXPECT_EQ(ex.code(), Code::kClosed) << ex.ToString();
}

TEST_F(DatabaseTest, OpenSetsWalAndSynchronousFull) {
  Status st = db_.Open(path_);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(PragmaText(db_, "journal_mode"), "wal");
  EXPECT_EQ(PragmaInt(db_, "synchronous"), 2);  // FULL
  EXPECT_EQ(PragmaInt(db_, "foreign_keys"), 0);

  // Same after a reopen of the existing file.
  db_.Close();
  ASSERT_TRUE(db_.Open(path_).ok());
  EXPECT_EQ(PragmaText(db_, "journal_mode"), "wal");
  EXPECT_EQ(PragmaInt(db_, "synchronous"), 2);

  // The option is honoured when a caller asks for NORMAL.
  db_.Close();
  OpenOptions normal;
  normal.synchronous_full = false;
  ASSERT_TRUE(db_.Open(path_, normal).ok());
  EXPECT_EQ(PragmaInt(db_, "synchronous"), 1);  // NORMAL
}

TEST_F(DatabaseTest, OpenFailsCleanlyWhereTheFileCannotBeCreated) {
  Database db;
  Status st = db.Open(dir_ + "/no/such/dir/x.db");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kIoError) << st.ToString();
  EXPECT_FALSE(db.is_open());

  OpenOptions no_create;
  no_create.create = false;
  st = db.Open(dir_ + "/missing.db", no_create);
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(db.is_open());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/missing.db"));
}

}  // namespace
}  // namespace fieldsync::store
