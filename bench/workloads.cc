#include "bench/workloads.h"

#include <sqlite3.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>

namespace fieldsync::bench {

Rows MakeTerritory(uint64_t seed, double scale, const std::string& prefix, const std::string& rep, bool with_skus) {
  std::mt19937_64 rng(seed);
  auto n = [&](int base) { return std::max(1, static_cast<int>(base * scale)); };
  auto pick = [&](int k) { return static_cast<int>(rng() % static_cast<uint64_t>(k)); };
  static const char* kChannels[] = {"hypermarket", "supermarket", "distributor", "pharmacy"};
  static const char* kStock[] = {"short", "normal", "overstock"};
  Rows t;
  auto add = [&](json row) {
    t.fields += row.size() - 2;
    t.rows.push_back(std::move(row));
  };
  const int skus = n(1000), accounts = n(500), contacts = n(1500), visits = n(2000), lines_per_check = 30;
  const std::string& p = prefix;
  for (int i = 0; with_skus && i < skus; ++i)
    add({{"table", "skus"}, {"id", "sku-" + std::to_string(i)}, {"code", "C" + std::to_string(100000 + i)},
         {"name", "Product " + std::to_string(i) + " 500 ml"}, {"spec", "12 x 500 ml"},
         {"barcode", std::to_string(6900000000000ULL + i)}, {"brand", "Brand " + std::to_string(i % 17)},
         {"category", "Category " + std::to_string(i % 23)}, {"unit", "bottle"},
         {"list_price", 5 + (i % 300) / 10.0}, {"ka_price", 4 + (i % 300) / 10.0}, {"active", true}});
  for (int i = 0; i < accounts; ++i) {
    json a = {{"table", "accounts"}, {"id", p + "acc-" + std::to_string(i)}, {"name", "Store " + std::to_string(i)},
              {"code", "A" + std::to_string(5000 + i)}, {"channel", kChannels[i % 4]},
              {"chain", "Chain " + std::to_string(i % 9)}, {"account_class", i % 5 == 0 ? "A" : "B"},
              {"status", "active"}, {"address", std::to_string(i) + " Renmin Road, District " + std::to_string(i % 12)},
              {"city", "Changsha"}, {"region", "Hunan"}, {"postcode", std::to_string(410000 + i % 100)},
              {"phone", "0731-" + std::to_string(8000000 + i)}, {"fax", "0731-" + std::to_string(9000000 + i)},
              {"email", "store" + std::to_string(i) + "@example.com"}, {"store_area_m2", 800 + pick(12000)},
              {"employees", 10 + pick(300)}, {"bank_name", "Bank of Changsha"},
              {"bank_account", std::to_string(6222000000000000ULL + i)},
              {"legal_representative", "Rep " + std::to_string(i)}, {"payment_terms", "30 days"},
              {"file_stage", "approved"}};
    if (!rep.empty()) a["assigned_rep"] = rep;
    add(std::move(a));
  }
  for (int i = 0; i < contacts; ++i)
    add({{"table", "contacts"}, {"id", p + "ct-" + std::to_string(i)},
         {"account_id", p + "acc-" + std::to_string(i % accounts)}, {"name", "Contact " + std::to_string(i)},
         {"position", i % 3 ? "Section head" : "Store manager"}, {"phone", "0731-" + std::to_string(7000000 + i)},
         {"mobile", "139" + std::to_string(10000000 + i)}});
  for (int i = 0; i < visits; ++i) {
    std::string acc = p + "acc-" + std::to_string(i % accounts), v = p + "visit-" + std::to_string(i),
                chk = p + "chk-" + std::to_string(i);
    add({{"table", "visits"}, {"id", v}, {"account_id", acc}, {"rep", rep.empty() ? "rep-1" : rep},
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

Rows MakeDayOfWork(const std::string& prefix, const std::vector<std::string>& accounts, size_t edit_from,
                   const std::string& rep) {
  Rows day;
  auto add = [&](json row) {
    day.fields += row.size() - 2;
    day.rows.push_back(std::move(row));
  };
  for (size_t v = 0; v < 8 && v < accounts.size(); ++v) {
    std::string vid = prefix + "w2-visit-" + std::to_string(v), chk = prefix + "w2-chk-" + std::to_string(v);
    add({{"table", "visits"}, {"id", vid}, {"account_id", accounts[v]}, {"rep", rep}, {"status", "completed"},
         {"purpose", "store check"}, {"planned_date", "2026-12-01"}});
    add({{"table", "store_checks"}, {"id", chk}, {"account_id", accounts[v]}, {"visit_id", vid},
         {"checked_at", "2026-12-01"}, {"status", "submitted"}});
    for (int l = 0; l < 30; ++l)
      add({{"table", "store_check_lines"}, {"id", chk + "-" + std::to_string(l)}, {"store_check_id", chk},
           {"sku_id", "sku-" + std::to_string(l)}, {"on_shelf", true}, {"facings", l % 7}, {"shelf_price", 9.9},
           {"stock_status", "normal"}, {"stock_qty", 20 + l}, {"pop_present", l % 2 == 0}});
  }
  for (size_t a = edit_from; a < edit_from + 8 && a < accounts.size(); ++a)
    add({{"table", "accounts"}, {"id", accounts[a]}, {"phone", "0731-1234567"}, {"employees", 42},
         {"payment_terms", "45 days"}});
  return day;
}

WriteBatch ToBatch(const Rows& rows) {
  WriteBatch b;
  for (const json& r : rows.rows) {
    json fields = r;
    fields.erase("table");
    fields.erase("id");
    b.Put(r["table"].get<std::string>(), r["id"].get<std::string>(), fields);
  }
  return b;
}

double RawSqliteInsert(const Schema& schema, const Rows& t, const std::string& path) {
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
  auto start = std::chrono::steady_clock::now();
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
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& [k, s] : ins) sqlite3_finalize(s);
  sqlite3_close(db);
  return secs;
}

size_t ZstdJsonlBytes(const Rows& t, size_t* raw) {
  std::string jsonl;
  for (const auto& r : t.rows) jsonl += r.dump() + "\n";
  *raw = jsonl.size();
  std::string out(ZSTD_compressBound(jsonl.size()), '\0');
  return ZSTD_compress(out.data(), out.size(), jsonl.data(), jsonl.size(), 3);
}

}  // namespace fieldsync::bench
