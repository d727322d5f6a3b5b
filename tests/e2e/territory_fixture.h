// The fixture of the territory and workflow tests: an authenticated server
// on a loopback port with three reps in two teams, two supervisors and an
// admin, their accounts and the rows that hang off them, and an oracle that
// filters the server's dump by a user's scope from the rows alone.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace fieldsync {
namespace {

using testing::DumpText;
using testing::RawPeer;
using testing::TempDir;
using testing::TestServer;

const std::string kKey = "test-signing-key-0123456789abcdef-0123456789";

server::ServerOptions AuthOptions() {
  server::ServerOptions o;
  o.auth_key = kKey;
  o.compact_interval_ms = 0;
  o.snapshot_rows_per_page = 7;  // several pages per bootstrap
  return o;
}

struct Person {
  std::string id;
  store::Role role;
  std::string team, region;
};

const std::vector<Person> kPeople = {
    {"sup_n", store::Role::kSupervisor, "north", "east"}, {"sup_s", store::Role::kSupervisor, "south", "west"},
    {"rep_a", store::Role::kRep, "north", "east"},        {"rep_b", store::Role::kRep, "north", "east"},
    {"rep_c", store::Role::kRep, "south", "west"},        {"admin1", store::Role::kAdmin, "", ""},
};

// Every dump line, as a set (the order is the dump's own).
std::set<std::string> Lines(const std::string& text) {
  std::set<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    out.insert(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

class Territory : public ::testing::Test {
 protected:
  void SetUp() override {
    schema_ = testing::FieldSalesSchema();
    for (const auto& p : kPeople) {
      store::User u;
      u.id = p.id;
      u.role = p.role;
      u.team = p.team;
      u.region = p.region;
      ASSERT_TRUE(server_.hub().PutUser(u).ok());
    }
    std::vector<json> rows = {
        {{"table", "skus"}, {"id", "sku1"}, {"name", "Cola 330ml"}},
        {{"table", "skus"}, {"id", "sku2"}, {"name", "Tea 500ml"}},
        {{"table", "promotions"}, {"id", "pe1"}, {"region", "east"}, {"name", "east promo"}},
        {{"table", "promotions"}, {"id", "pw1"}, {"region", "west"}, {"name", "west promo"}},
    };
    for (const auto& [acc, rep] : std::vector<std::pair<std::string, std::string>>{
             {"acc_a1", "rep_a"}, {"acc_a2", "rep_a"}, {"acc_b1", "rep_b"}, {"acc_c1", "rep_c"}}) {
      rows.push_back({{"table", "accounts"}, {"id", acc}, {"name", "Store " + acc}, {"assigned_rep", rep}});
      rows.push_back({{"table", "contacts"}, {"id", "ct_" + acc}, {"account_id", acc}, {"name", "buyer"}});
      rows.push_back({{"table", "visits"}, {"id", "v_" + acc}, {"account_id", acc}, {"purpose", "store check"}});
      rows.push_back({{"table", "store_checks"}, {"id", "sc_" + acc}, {"account_id", acc}});
      for (int i = 0; i < 2; ++i)
        rows.push_back({{"table", "store_check_lines"}, {"id", "l" + std::to_string(i) + "_" + acc},
                        {"store_check_id", "sc_" + acc}, {"sku_id", "sku1"}, {"facings", i + 1}});
      rows.push_back({{"table", "orders"}, {"id", "o_" + acc}, {"account_id", acc}});
      rows.push_back({{"table", "order_lines"}, {"id", "ol_" + acc}, {"order_id", "o_" + acc}, {"quantity", 3}});
    }
    std::vector<Change> applied;
    Status st = server_.hub().WriteRows(rows, &applied);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  std::string Token(const std::string& user, const std::string& device) {
    std::string t;
    Status st = server_.hub().IssueToken(user, device, 3600, &t);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return t;
  }

  SyncOptions Options(const std::string& user) {
    SyncOptions o = server_.sync_options();
    o.token = Token(user, "tablet-" + user);
    return o;
  }

  std::unique_ptr<Replica> Open(const std::string& name) {
    std::unique_ptr<Replica> r;
    EXPECT_TRUE(Replica::Open(dir_.File(name + ".db"), schema_, &r).ok());
    return r;
  }

  // The oracle: the server's rows a user may read, from the dump alone.
  std::set<std::string> Expected(const std::string& user) {
    const Person* me = nullptr;
    for (const auto& p : kPeople)
      if (p.id == user) me = &p;
    std::set<std::string> users{user}, regions{me->region};
    for (const auto& p : kPeople)
      if (me->role == store::Role::kSupervisor && p.team == me->team) {
        users.insert(p.id);
        regions.insert(p.region);
      }
    std::map<std::pair<std::string, std::string>, json> rows;
    std::set<std::string> all = Lines(server_.Dump());
    for (const auto& line : all) {
      json j = json::parse(line);
      rows[{j["table"].get<std::string>(), j["id"].get<std::string>()}] = j;
    }
    std::set<std::string> out;
    for (const auto& line : all) {
      if (me->role == store::Role::kAdmin) {
        out.insert(line);
        continue;
      }
      json j = json::parse(line);
      // Up the parent chain to the row that decides.
      for (int hops = 0; hops < 10; ++hops) {
        const TableDef* t = schema_.Find(j["table"].get<std::string>());
        if (t->scope == ScopeRule::kEveryone) {
          out.insert(line);
        } else if (t->scope == ScopeRule::kRegion) {
          if (j.contains(t->scope_column) && regions.count(j[t->scope_column].get<std::string>())) out.insert(line);
        } else if (t->scope == ScopeRule::kAssignee) {
          if (j.contains(t->scope_column) && j[t->scope_column].is_string() &&
              users.count(j[t->scope_column].get<std::string>()))
            out.insert(line);
        } else {
          auto parent = rows.find({t->parent_table, j.value(t->parent_column, std::string())});
          if (parent == rows.end()) break;
          j = parent->second;
          continue;
        }
        break;
      }
    }
    return out;
  }

  void ExpectHoldsItsScope(Replica& r, const std::string& user) {
    std::set<std::string> want = Expected(user), have = Lines(DumpText(r));
    EXPECT_EQ(have, want) << user << " holds " << have.size() << " rows, its scope has " << want.size();
  }

  TempDir dir_;
  TestServer server_{AuthOptions()};
  Schema schema_;
};

}  // namespace
}  // namespace fieldsync
