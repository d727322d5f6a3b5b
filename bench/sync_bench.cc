// sync_bench: the fixed field-sales workloads against the real server on a
// loopback port and real replicas, beside the machine's own limits for the
// same data (a raw SQLite bulk insert, zstd of the data as JSON Lines).
//
//   build/fieldsync_bench [--scale F] [--dir DIR]
//
// W1 bootstrap: one territory (1,000 SKUs, 500 accounts, 1,500 contacts,
//    2,000 visits, 2,000 store checks, 60,000 store check lines) loaded on
//    the server; a fresh replica syncs all of it.
// W2 a day's work: 8 visits with a store check of 30 lines each, 3 field
//    edits on 8 accounts, made offline; one sync pushes them.
// W3 concurrent edits: two replicas hold 10,000 lines; each changes 3
//    random columns of every line offline; both sync until equal.
// Everything is generated from fixed seeds, so runs are comparable.
#include <sqlite3.h>
#include <sys/resource.h>
#include <zstd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include "fieldsync/replica.h"
#include "server/server.h"

namespace fieldsync::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

long PeakRssKb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

struct Territory {
  std::vector<json> rows;  // {"table": t, "id": id, columns...}
  size_t fields = 0;       // column values, the unit of merge
};

// One rep's territory, deterministic for a given seed and scale.
Territory MakeTerritory(uint64_t seed, double scale) {
  std::mt19937_64 rng(seed);
  auto n = [&](int base) { return std::max(1, static_cast<int>(base * scale)); };
  auto pick = [&](int k) { return static_cast<int>(rng() % static_cast<uint64_t>(k)); };
  static const char* kChannels[] = {"hypermarket", "supermarket", "distributor", "pharmacy"};
  static const char* kStock[] = {"short", "normal", "overstock"};
  Territory t;
  auto add = [&](json row) {
    t.fields += row.size() - 2;
    t.rows.push_back(std::move(row));
  };
  const int skus = n(1000), accounts = n(500), contacts = n(1500), visits = n(2000), lines_per_check = 30;
  for (int i = 0; i < skus; ++i)
    add({{"table", "skus"}, {"id", "sku-" + std::to_string(i)}, {"code", "C" + std::to_string(100000 + i)},
         {"name", "Product " + std::to_string(i) + " 500 ml"}, {"spec", "12 x 500 ml"},
         {"barcode", std::to_string(6900000000000ULL + i)}, {"brand", "Brand " + std::to_string(i % 17)},
         {"category", "Category " + std::to_string(i % 23)}, {"unit", "bottle"},
         {"list_price", 5 + (i % 300) / 10.0}, {"ka_price", 4 + (i % 300) / 10.0}, {"active", true}});
  for (int i = 0; i < accounts; ++i)
    add({{"table", "accounts"}, {"id", "acc-" + std::to_string(i)}, {"name", "Store " + std::to_string(i)},
         {"code", "A" + std::to_string(5000 + i)}, {"channel", kChannels[i % 4]}, {"chain", "Chain " + std::to_string(i % 9)},
         {"account_class", i % 5 == 0 ? "A" : "B"}, {"status", "active"},
         {"address", std::to_string(i) + " Renmin Road, District " + std::to_string(i % 12)}, {"city", "Changsha"},
         {"region", "Hunan"}, {"postcode", std::to_string(410000 + i % 100)}, {"phone", "0731-" + std::to_string(8000000 + i)},
         {"fax", "0731-" + std::to_string(9000000 + i)}, {"email", "store" + std::to_string(i) + "@example.com"},
         {"store_area_m2", 800 + pick(12000)}, {"employees", 10 + pick(300)}, {"bank_name", "Bank of Changsha"},
         {"bank_account", std::to_string(6222000000000000ULL + i)}, {"legal_representative", "Rep " + std::to_string(i)},
         {"payment_terms", "30 days"}, {"file_stage", "approved"}});
  for (int i = 0; i < contacts; ++i)
    add({{"table", "contacts"}, {"id", "ct-" + std::to_string(i)}, {"account_id", "acc-" + std::to_string(i % accounts)},
         {"name", "Contact " + std::to_string(i)}, {"position", i % 3 ? "Section head" : "Store manager"},
         {"phone", "0731-" + std::to_string(7000000 + i)}, {"mobile", "139" + std::to_string(10000000 + i)}});
  for (int i = 0; i < visits; ++i) {
    std::string acc = "acc-" + std::to_string(i % accounts), v = "visit-" + std::to_string(i),
                chk = "chk-" + std::to_string(i);
    add({{"table", "visits"}, {"id", v}, {"account_id", acc}, {"rep", "rep-1"},
         {"planned_date", "2026-11-" + std::to_string(10 + i % 18)}, {"purpose", "store check"}, {"status", "completed"},
         {"summary", "Shelf tidy, promo display in place, " + std::to_string(pick(9)) + " gaps"}});
    add({{"table", "store_checks"}, {"id", chk}, {"account_id", acc}, {"visit_id", v},
         {"checked_at", "2026-11-" + std::to_string(10 + i % 18)}, {"display_to_standard", i % 4 != 0}, {"status", "submitted"}});
    for (int l = 0; l < lines_per_check; ++l)
      add({{"table", "store_check_lines"}, {"id", chk + "-" + std::to_string(l)}, {"store_check_id", chk},
           {"sku_id", "sku-" + std::to_string(pick(skus))}, {"on_shelf", pick(10) != 0}, {"facings", pick(12)},
           {"shelf_price", 5 + pick(300) / 10.0}, {"promo_price", 4 + pick(300) / 10.0}, {"stock_status", kStock[pick(3)]},
           {"stock_qty", pick(200)}, {"pop_present", pick(2) == 0}, {"competitor_note", pick(4) ? "" : "competitor promo -10%"}});
  }
  return t;
}

// The reference: the same rows into plain typed SQLite tables, one
// transaction, prepared statements, WAL.
double RawSqliteInsert(const Schema& schema, const Territory& t, const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  std::map<std::string, sqlite3_stmt*> ins;
  for (const auto& td : schema.tables()) {
    std::string ddl = "CREATE TABLE \"" + td.name + "\"(id TEXT PRIMARY KEY", q = "INSERT INTO \"" + td.name + "\" VALUES(?";
    for (const auto& c : td.columns) {
      ddl += ", \"" + c.name + "\"";
      q += ",?";
    }
    sqlite3_exec(db, (ddl + ")").c_str(), nullptr, nullptr, nullptr);
    sqlite3_prepare_v2(db, (q + ")").c_str(), -1, &ins[td.name], nullptr);
  }
  auto start = Clock::now();
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  for (const auto& row : t.rows) {
    const std::string& table = row["table"].get_ref<const std::string&>();
    const TableDef* td = schema.Find(table);
    sqlite3_stmt* s = ins[table];
    sqlite3_bind_text(s, 1, row["id"].get_ref<const std::string&>().c_str(), -1, SQLITE_TRANSIENT);
    for (const auto& c : td->columns) {
      auto it = row.find(c.name);
      int i = c.index + 2;
      if (it == row.end()) sqlite3_bind_null(s, i);
      else if (it->is_string()) sqlite3_bind_text(s, i, it->get_ref<const std::string&>().c_str(), -1, SQLITE_TRANSIENT);
      else if (it->is_boolean()) sqlite3_bind_int(s, i, it->get<bool>());
      else if (it->is_number_integer()) sqlite3_bind_int64(s, i, it->get<int64_t>());
      else sqlite3_bind_double(s, i, it->get<double>());
    }
    sqlite3_step(s);
    sqlite3_reset(s);
  }
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  double secs = Seconds(start, Clock::now());
  for (auto& [k, s] : ins) sqlite3_finalize(s);
  sqlite3_close(db);
  return secs;
}

size_t ZstdJsonlBytes(const Territory& t, size_t* raw) {
  std::string jsonl;
  for (const auto& r : t.rows) jsonl += r.dump() + "\n";
  *raw = jsonl.size();
  std::string out(ZSTD_compressBound(jsonl.size()), '\0');
  return ZSTD_compress(out.data(), out.size(), jsonl.data(), jsonl.size(), 3);
}

void Check(const Status& st, const char* what) {
  if (!st.ok()) {
    std::cerr << "sync_bench: " << what << ": " << st.ToString() << "\n";
    std::exit(1);
  }
}

int Run(int argc, char** argv) {
  double scale = 1.0;
  std::string dir = "data/bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--scale") scale = std::stod(argv[i + 1]);
    else if (a == "--dir") dir = argv[i + 1];
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  std::ifstream in(FIELDSYNC_DEFAULT_SCHEMA);
  std::stringstream ss;
  ss << in.rdbuf();
  Schema schema;
  Check(Schema::ParseText(ss.str(), &schema), "schema");

  Territory w1 = MakeTerritory(42, scale);
  std::printf("W1 territory: %zu records, %zu field values (scale %.2f)\n", w1.rows.size(), w1.fields, scale);

  double raw_secs = RawSqliteInsert(schema, w1, dir + "/raw.db");
  size_t jsonl_bytes = 0;
  size_t zstd_bytes = ZstdJsonlBytes(w1, &jsonl_bytes);

  server::ServerOptions so;
  so.data_dir = dir + "/server";
  so.log = false;
  server::Server srv(so, schema);
  Check(srv.Start(), "server start");
  SyncOptions sync;
  sync.url = "ws://127.0.0.1:" + std::to_string(srv.port()) + "/";
  sync.request_timeout_ms = 600000;

  auto t0 = Clock::now();
  std::vector<Change> applied;
  Check(srv.hub().WriteRows(w1.rows, &applied), "server load");
  double load_secs = Seconds(t0, Clock::now());

  std::unique_ptr<Replica> rep;
  Check(Replica::Open(dir + "/w1.db", schema, &rep), "open replica");
  long rss_before = PeakRssKb();
  SyncReport r1;
  t0 = Clock::now();
  Check(rep->Sync(sync, &r1), "W1 sync");
  double w1_secs = Seconds(t0, Clock::now());

  std::printf("\n%-44s %14s %14s %8s\n", "figure", "FieldSync", "limit", "ratio");
  auto row = [](const char* what, double ours, double limit, const char* unit) {
    std::printf("%-44s %11.3f %-2s %11.3f %-2s %7.2f\n", what, ours, unit, limit, unit, limit > 0 ? ours / limit : 0);
  };
  row("W1 server load (central import), s", load_secs, raw_secs, "s");
  row("W1 bootstrap of a fresh replica, s", w1_secs, raw_secs, "s");
  row("W1 bootstrap records/s (k)", w1.rows.size() / w1_secs / 1000, w1.rows.size() / raw_secs / 1000, "k");
  row("W1 bytes received (MB) vs zstd JSONL", r1.bytes_received / 1e6, zstd_bytes / 1e6, "MB");
  std::printf("%-44s %11lld rows from a snapshot, %lld field changes from the log; raw JSONL %.1f MB\n",
              "W1 received", static_cast<long long>(r1.snapshot_rows), static_cast<long long>(r1.pulled),
              jsonl_bytes / 1e6);
  std::printf("%-44s %11.1f MB (before bootstrap %.1f MB)\n", "process peak RSS after W1 (server+client)",
              PeakRssKb() / 1024.0, rss_before / 1024.0);

  // W2: a day's work offline, then one push.
  WriteBatch day;
  for (int v = 0; v < 8; ++v) {
    std::string vid = "w2-visit-" + std::to_string(v), chk = "w2-chk-" + std::to_string(v);
    day.Put("visits", vid, {{"account_id", "acc-" + std::to_string(v)}, {"status", "completed"}, {"purpose", "store check"}});
    day.Put("store_checks", chk, {{"account_id", "acc-" + std::to_string(v)}, {"visit_id", vid}, {"status", "submitted"}});
    for (int l = 0; l < 30; ++l)
      day.Put("store_check_lines", chk + "-" + std::to_string(l),
              {{"store_check_id", chk}, {"sku_id", "sku-" + std::to_string(l)}, {"on_shelf", true}, {"facings", l % 7},
               {"shelf_price", 9.9}, {"stock_status", "normal"}, {"stock_qty", 20 + l}, {"pop_present", l % 2 == 0}});
  }
  for (int a = 0; a < 8; ++a)
    day.Put("accounts", "acc-" + std::to_string(100 + a), {{"phone", "0731-1234567"}, {"employees", 42}, {"payment_terms", "45 days"}});
  Check(rep->Apply(day), "W2 edits");
  SyncReport r2;
  t0 = Clock::now();
  Check(rep->Sync(sync, &r2), "W2 sync");
  double w2_secs = Seconds(t0, Clock::now());
  std::printf("%-44s %11.1f ms, %lld changes, %.0f B out (%.0f B per 30-line check)\n", "W2 push of a day's work",
              w2_secs * 1000, static_cast<long long>(r2.pushed), static_cast<double>(r2.bytes_sent),
              r2.bytes_sent / 8.0);

  // W3: two replicas, the same 10,000 lines, 3 random columns each.
  const int lines = std::max(1, static_cast<int>(10000 * scale));
  std::unique_ptr<Replica> x, y;
  Check(Replica::Open(dir + "/w3x.db", schema, &x), "open x");
  Check(Replica::Open(dir + "/w3y.db", schema, &y), "open y");
  WriteBatch seed;
  for (int l = 0; l < lines; ++l)
    seed.Put("store_check_lines", "w3-" + std::to_string(l), {{"facings", 1}, {"stock_qty", 1}, {"shelf_price", 1.0},
                                                              {"promo_price", 1.0}, {"on_shelf", true}, {"stock_status", "normal"}});
  Check(x->Apply(seed), "W3 seed");
  Check(x->Sync(sync), "W3 seed push");
  Check(y->Sync(sync), "W3 seed pull");
  static const char* kCols[] = {"facings", "stock_qty", "shelf_price", "promo_price", "on_shelf", "stock_status"};
  std::mt19937_64 rng(7);
  auto edits = [&](int who) {
    WriteBatch b;
    for (int l = 0; l < lines; ++l) {
      json f = json::object();
      int first = static_cast<int>(rng() % 6);
      for (int k = 0; k < 3; ++k) {
        std::string c = kCols[(first + k * (1 + rng() % 2)) % 6];
        if (c == "on_shelf") f[c] = who == 0;
        else if (c == "stock_status") f[c] = who == 0 ? "short" : "overstock";
        else if (c == "shelf_price" || c == "promo_price") f[c] = 2.0 + who;
        else f[c] = 2 + who;
      }
      b.Put("store_check_lines", "w3-" + std::to_string(l), f);
    }
    return b;
  };
  Check(x->Apply(edits(0)), "W3 x edits");
  Check(y->Apply(edits(1)), "W3 y edits");
  t0 = Clock::now();
  SyncReport rx, ry, rx2;
  Check(x->Sync(sync, &rx), "W3 x sync");
  Check(y->Sync(sync, &ry), "W3 y sync");
  Check(x->Sync(sync, &rx2), "W3 x sync 2");
  double w3_secs = Seconds(t0, Clock::now());
  std::ostringstream dx, dy;
  x->Dump([&](const json& l) { dx << l.dump() << "\n"; });
  y->Dump([&](const json& l) { dy << l.dump() << "\n"; });
  std::vector<Conflict> cx, cy;
  x->Conflicts(false, &cx);
  y->Conflicts(false, &cy);
  std::printf("%-44s %11.1f ms, converged: %s, conflict records %zu + %zu\n", "W3 concurrent edits, both synced",
              w3_secs * 1000, dx.str() == dy.str() ? "yes" : "NO", cx.size(), cy.size());
  srv.Stop();
  return dx.str() == dy.str() ? 0 : 1;
}

}  // namespace
}  // namespace fieldsync::bench

int main(int argc, char** argv) { return fieldsync::bench::Run(argc, argv); }
