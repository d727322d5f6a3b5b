// The command-line tool as a person uses it: real processes, a real server
// process on a loopback port, replicas made and edited with the CLI.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace fieldsync {
namespace {

using testing::TempDir;

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

Result Cli(const std::vector<std::string>& args) {
  std::string cmd = Quote(FIELDSYNC_CLI);
  for (const auto& a : args) cmd += " " + Quote(a);
  cmd += " 2>&1";
  Result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `fieldsync server` as a child process; stopped with SIGTERM.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& data, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {FIELDSYNC_CLI, "server", "--data", data, "--port", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::execv(FIELDSYNC_CLI, argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
    char line[512];
    if (out_ && std::fgets(line, sizeof line, out_)) {
      std::smatch m;
      std::string s = line;
      if (std::regex_search(s, m, std::regex("ws://127\\.0\\.0\\.1:(\\d+)/"))) url_ = m[0];
    }
  }
  ~ServerProcess() { Stop(); }
  const std::string& url() const { return url_; }
  int Stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    if (out_) ::fclose(out_);
    out_ = nullptr;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::string url_;
};

TEST(Cli, EveryCommandHasHelp) {
  Result top = Cli({"--help"});
  EXPECT_EQ(top.code, 0);
  for (const char* c : {"server", "demo", "import", "put", "new", "get", "delete", "inc", "query", "sync", "status",
                        "dump", "conflicts", "restore", "rejections", "new-id", "user", "token", "revoke", "history",
                        "export-outbox", "import-outbox", "delete-replica"}) {
    EXPECT_NE(top.out.find(std::string("fieldsync ") + c), std::string::npos) << c;
    Result r = Cli({c, "--help"});
    EXPECT_EQ(r.code, 0) << c;
    EXPECT_NE(r.out.find("Usage: fieldsync " + std::string(c)), std::string::npos) << r.out;
  }
  EXPECT_EQ(Cli({"frobnicate"}).code, 2);
}

TEST(Cli, UsersTokensAuditAndTheWayOut) {
  TempDir dir;
  std::string data = dir.File("srv"), key = dir.File("auth.key"), a = dir.File("li.db");
  std::ofstream(key) << "0123456789abcdef0123456789abcdef0123456789abcdef\n";
  std::ofstream(dir.File("short.key")) << "tooshort\n";
  EXPECT_EQ(Cli({"user", "--server-data", data, "li", "--role", "rep", "--team", "north"}).code, 0);
  EXPECT_EQ(Cli({"user", "--server-data", data, "zhao", "--role", "rep", "--team", "south"}).code, 0);
  EXPECT_EQ(Cli({"user", "--server-data", data, "x", "--role", "boss"}).code, 2);
  std::ofstream(dir.File("acc.jsonl")) << R"({"table":"accounts","id":"hm1","name":"HM","assigned_rep":"li"})" << "\n";
  ASSERT_EQ(Cli({"import", "--server-data", data, dir.File("acc.jsonl")}).code, 0);
  Result tok = Cli({"token", "--server-data", data, "--auth-key-file", key, "--user", "li", "--device", "tab-li"});
  ASSERT_EQ(tok.code, 0) << tok.out;
  std::ofstream(dir.File("li.token")) << tok.out;
  EXPECT_EQ(Cli({"token", "--server-data", data, "--auth-key-file", key, "--user", "ghost", "--device", "t"}).code, 1);
  EXPECT_NE(Cli({"token", "--server-data", data, "--auth-key-file", dir.File("short.key"), "--user", "li", "--device",
                 "t"}).out.find("at least 32"),
            std::string::npos);
  EXPECT_NE(Cli({"server", "--data", data, "--production"}).code, 0);  // no key, no TLS: refused

  ServerProcess srv(data, {"--auth-key-file", key});
  ASSERT_FALSE(srv.url().empty());
  Result no_token = Cli({"sync", "--replica", a, "--url", srv.url()});
  EXPECT_EQ(no_token.code, 1);
  EXPECT_NE(no_token.out.find("unauthenticated"), std::string::npos) << no_token.out;
  Result ok = Cli({"sync", "--replica", a, "--url", srv.url(), "--token-file", dir.File("li.token")});
  ASSERT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("snapshot rows 1"), std::string::npos) << ok.out;
  ASSERT_EQ(Cli({"put", "--replica", a, "accounts", "hm1", R"({"phone":"021-1"})"}).code, 0);
  ASSERT_EQ(Cli({"sync", "--replica", a, "--url", srv.url(), "--token-file", dir.File("li.token")}).code, 0);
  Result hist = Cli({"history", "--server-data", data, "accounts", "hm1"});
  ASSERT_EQ(hist.code, 0);
  EXPECT_NE(hist.out.find(R"("column":"phone")"), std::string::npos) << hist.out;
  EXPECT_NE(hist.out.find(R"("device":"tab-li")"), std::string::npos) << hist.out;
  EXPECT_NE(hist.out.find(R"("user":"li")"), std::string::npos) << hist.out;

  // Offline work, then the tablet is handed back: export, refuse to delete, import.
  ASSERT_EQ(Cli({"put", "--replica", a, "accounts", "hm1", R"({"fax":"021-2"})"}).code, 0);
  Result del = Cli({"delete-replica", "--replica", a});
  EXPECT_EQ(del.code, 1);
  EXPECT_NE(del.out.find("not yet acknowledged"), std::string::npos) << del.out;
  Result exp = Cli({"export-outbox", "--replica", a, dir.File("out.jsonl")});
  EXPECT_NE(exp.out.find("exported 1"), std::string::npos) << exp.out;
  EXPECT_EQ(Cli({"delete-replica", "--replica", a, "--force"}).code, 0);
  Result imp_c = Cli({"import-outbox", "--server-data", data, "--user", "zhao", dir.File("out.jsonl")});
  EXPECT_NE(imp_c.out.find("refused 1"), std::string::npos) << imp_c.out;
  Result imp = Cli({"import-outbox", "--server-data", data, "--user", "li", dir.File("out.jsonl")});
  EXPECT_NE(imp.out.find("applied 1"), std::string::npos) << imp.out;
  EXPECT_NE(Cli({"dump", "--server-data", data}).out.find("021-2"), std::string::npos);
  EXPECT_EQ(Cli({"revoke", "--server-data", data, "--device", "tab-li"}).code, 0);
  Result revoked = Cli({"sync", "--replica", dir.File("new.db"), "--url", srv.url(), "--token-file", dir.File("li.token")});
  EXPECT_NE(revoked.out.find("revoked"), std::string::npos) << revoked.out;
}

TEST(Cli, TwoReplicasEditedOfflineInConflictDumpIdentically) {
  TempDir dir;
  ServerProcess server(dir.File("server"));
  ASSERT_FALSE(server.url().empty()) << "server did not print its URL";
  std::string a = dir.File("a.db"), b = dir.File("b.db");
  {
    std::ofstream f(dir.File("seed.jsonl"));
    f << R"({"table":"accounts","id":"acc1","name":"Carrefour Wuhan","phone":"027-1","city":"Wuhan"})" << "\n"
      << R"({"table":"store_check_lines","id":"l1","facings":3,"stock_status":"normal"})" << "\n";
  }
  ASSERT_EQ(Cli({"import", "--replica", a, dir.File("seed.jsonl")}).code, 0);
  ASSERT_EQ(Cli({"sync", "--replica", a, "--url", server.url()}).code, 0);
  ASSERT_EQ(Cli({"sync", "--replica", b, "--url", server.url()}).code, 0);
  // Offline, in conflict: same field, different fields, delete vs update.
  ASSERT_EQ(Cli({"put", "--replica", a, "accounts", "acc1", R"({"phone":"027-A","city":"Hankou"})"}).code, 0);
  ASSERT_EQ(Cli({"put", "--replica", b, "accounts", "acc1", R"({"phone":"027-B","postcode":"430000"})"}).code, 0);
  ASSERT_EQ(Cli({"put", "--replica", a, "store_check_lines", "l1", R"({"facings":5})"}).code, 0);
  ASSERT_EQ(Cli({"delete", "--replica", b, "store_check_lines", "l1"}).code, 0);
  for (const auto& r : {a, b, a}) ASSERT_EQ(Cli({"sync", "--replica", r, "--url", server.url()}).code, 0);
  Result da = Cli({"dump", "--replica", a});
  Result db = Cli({"dump", "--replica", b});
  ASSERT_EQ(da.code, 0);
  EXPECT_EQ(da.out, db.out);
  EXPECT_NE(da.out.find("\"phone\":\"027-B\""), std::string::npos) << da.out;
  EXPECT_NE(da.out.find("\"city\":\"Hankou\""), std::string::npos);
  EXPECT_NE(da.out.find("\"postcode\":\"430000\""), std::string::npos);
  EXPECT_EQ(da.out.find("store_check_lines"), std::string::npos);
  Result conflicts = Cli({"conflicts", "--replica", a});
  EXPECT_NE(conflicts.out.find("027-A"), std::string::npos) << conflicts.out;
  EXPECT_NE(conflicts.out.find("\"kind\":\"deleted\""), std::string::npos) << conflicts.out;
  Result status = Cli({"status", "--replica", a});
  EXPECT_NE(status.out.find("\"pending\": 0"), std::string::npos) << status.out;
  EXPECT_EQ(server.Stop(), 0);  // SIGTERM: clean shutdown
  Result ds = Cli({"dump", "--server-data", dir.File("server")});
  EXPECT_EQ(ds.out, da.out);
}

TEST(Cli, BadJsonLinesImportNothingAndNameTheLine) {
  TempDir dir;
  std::string rep = dir.File("r.db");
  struct Case {
    std::string line;
    std::string reason;
  } cases[] = {
      {R"({"table":"accounts","id":"x","phone":)", "not valid JSON"},
      {R"({"table":"warehouses","id":"x"})", "unknown table"},
      {R"({"table":"accounts","id":"x","colour":"red"})", "unknown column"},
      {R"({"table":"accounts","id":"x","employees":"many"})", "expected an integer"},
      {R"({"table":"accounts","phone":"1"})", "\"id\""},
  };
  for (const auto& c : cases) {
    std::ofstream f(dir.File("in.jsonl"));
    f << R"({"table":"accounts","id":"fine","phone":"1"})" << "\n\n" << c.line << "\n";
    f.close();
    Result r = Cli({"import", "--replica", rep, dir.File("in.jsonl")});
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("line 3"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(c.reason), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("nothing imported"), std::string::npos) << r.out;
  }
  EXPECT_EQ(Cli({"dump", "--replica", rep}).out, "");
  // Reference data cannot be imported into a tablet, only centrally.
  {
    std::ofstream f(dir.File("skus.jsonl"));
    f << R"({"table":"skus","id":"s1","name":"Soy 500ml","list_price":12.5})" << "\n";
  }
  Result r = Cli({"import", "--replica", rep, dir.File("skus.jsonl")});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("permission_denied"), std::string::npos) << r.out;
  EXPECT_EQ(Cli({"import", "--server-data", dir.File("srv"), dir.File("skus.jsonl")}).code, 0);
  EXPECT_NE(Cli({"dump", "--server-data", dir.File("srv")}).out.find("Soy 500ml"), std::string::npos);
}

TEST(Cli, DemoConverges) {
  TempDir dir;
  Result r = Cli({"demo", "--data", dir.File("demo")});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("converged: all replicas and the server are identical"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FAILED"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace fieldsync
