#include "bench/server_process.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/workloads.h"
#include "server/auth_token.h"
#include "server/server.h"

namespace fieldsync::bench {

std::string RepId(int k) { return "rep-" + std::to_string(k); }
std::string DeviceId(int rep, int device) { return "tab-" + std::to_string(rep) + "-" + std::to_string(device); }
uint64_t DeviceNode(int rep, int device) { return 0x5000000000ULL + static_cast<uint64_t>(rep) * 64 + device; }
std::string ForceAccount(int rep, int k) { return "f" + std::to_string(rep) + "-acc-" + std::to_string(k); }

Status RepToken(const std::string& auth_key, int rep, int device, std::string* token) {
  server::TokenClaims c;
  c.user = RepId(rep);
  c.device = DeviceId(rep, device);
  c.issued_s = static_cast<uint64_t>(std::time(nullptr)) - 60;
  c.expires_s = c.issued_s + 86400;
  return server::IssueToken(auth_key, c, token);
}

long ProcStatusKb(pid_t pid, const char* field) {
  std::ifstream in(pid ? "/proc/" + std::to_string(pid) + "/status" : std::string("/proc/self/status"));
  std::string line;
  size_t n = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::atol(line.c_str() + n + 1);
  return -1;
}

double ProcCpuSeconds(pid_t pid) {
  std::ifstream in(pid ? "/proc/" + std::to_string(pid) + "/stat" : std::string("/proc/self/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) : utime is the
  // 14th field of the line, stime the 15th.
  size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream ss(text.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && ss >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void ResetPeakRss(pid_t pid) {
  std::ofstream out(pid ? "/proc/" + std::to_string(pid) + "/clear_refs" : std::string("/proc/self/clear_refs"));
  out << "5";
}

Status ServerProcess::Start(const std::string& exe, const ServeSpec& spec) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) return Status::IoError("pipe failed");
  std::vector<std::string> args = {exe, "--serve", spec.mode, "--count", std::to_string(spec.count),
                                   "--scale", std::to_string(spec.scale), "--dir", spec.dir,
                                   "--auth-key", spec.auth_key};
  pid_ = fork();
  if (pid_ < 0) return Status::IoError("fork failed");
  if (pid_ == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  to_child_ = in[1];
  FILE* from = fdopen(out[0], "r");
  char line[4096];
  while (fgets(line, sizeof line, from)) {
    std::string l(line);
    if (l.rfind("ready ", 0) != 0) continue;
    std::istringstream ss(l.substr(6));
    std::string kv;
    while (ss >> kv) {
      auto eq = kv.find('=');
      if (eq != std::string::npos) ready_[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    port_ = static_cast<uint16_t>(std::stoi(ready_["port"]));
    fclose(from);  // the child writes nothing more
    return Status::OK();
  }
  fclose(from);
  Stop();
  return Status::IoError("the server process exited before it was ready");
}

long ServerProcess::RssKb() const { return ProcStatusKb(pid_, "VmRSS"); }
long ServerProcess::PeakKb() const { return ProcStatusKb(pid_, "VmHWM"); }
void ServerProcess::ResetPeak() const { ResetPeakRss(pid_); }
double ServerProcess::CpuSeconds() const { return ProcCpuSeconds(pid_); }

void ServerProcess::Stop() {
  if (to_child_ >= 0) close(to_child_);
  to_child_ = -1;
  if (pid_ > 0) {
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  pid_ = -1;
}

namespace {

Status LoadRows(server::Hub& hub, Rows* rows, size_t* changes) {
  // Pages of a few thousand rows: one transaction each, bounded memory.
  const size_t kPage = 5000;
  for (size_t i = 0; i < rows->rows.size(); i += kPage) {
    std::vector<json> page(std::make_move_iterator(rows->rows.begin() + i),
                           std::make_move_iterator(rows->rows.begin() + std::min(rows->rows.size(), i + kPage)));
    std::vector<Change> applied;
    Status st = hub.WriteRows(page, &applied);
    if (!st.ok()) return st;
    *changes += applied.size();
  }
  rows->rows.clear();
  return Status::OK();
}

}  // namespace

int ServeMain(int argc, char** argv) {
  ServeSpec spec;
  spec.mode = argc > 0 ? argv[0] : "";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--count") spec.count = std::stoi(argv[i + 1]);
    else if (a == "--scale") spec.scale = std::stod(argv[i + 1]);
    else if (a == "--dir") spec.dir = argv[i + 1];
    else if (a == "--auth-key") spec.auth_key = argv[i + 1];
  }
  // 10,000 idle devices need as many descriptors.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  std::ifstream in(FIELDSYNC_DEFAULT_SCHEMA);
  std::stringstream text;
  text << in.rdbuf();
  Schema schema;
  Status st = Schema::ParseText(text.str(), &schema);
  server::ServerOptions so;
  so.data_dir = spec.dir;
  so.log = false;
  so.auth_key = spec.auth_key;
  so.compact_interval_ms = 0;
  so.idle_timeout_ms = 600000;
  so.handshake_timeout_ms = 60000;
  server::Server srv(so, schema);
  if (st.ok()) st = srv.Start();
  server::Hub& hub = srv.hub();
  if (st.ok()) st = hub.PutUser({"sup-1", store::Role::kSupervisor, "team-1", "Hunan", "Supervisor", true});
  for (int k = 0; st.ok() && k < spec.count; ++k)
    st = hub.PutUser({RepId(k), store::Role::kRep, "team-1", "Hunan", "Rep " + std::to_string(k), true});
  auto t0 = std::chrono::steady_clock::now();
  size_t records = 0, changes = 0;
  int64_t pull_from = 0;
  if (st.ok() && spec.mode == "territories") {
    for (int k = 0; st.ok() && k < spec.count; ++k) {
      Rows t = MakeTerritory(42 + k, spec.scale, "t" + std::to_string(k) + "-", RepId(k), k == 0);
      records += t.rows.size();
      st = LoadRows(hub, &t, &changes);
    }
  } else if (st.ok() && spec.mode == "force") {
    Rows rows;
    for (int i = 0; i < 30; ++i)
      rows.rows.push_back({{"table", "skus"}, {"id", "sku-" + std::to_string(i)}, {"name", "Product " + std::to_string(i)},
                           {"list_price", 5 + i / 10.0}, {"active", true}});
    for (int k = 0; k < spec.count; ++k)
      for (int a = 0; a < 8; ++a)
        rows.rows.push_back({{"table", "accounts"}, {"id", ForceAccount(k, a)}, {"name", "Store " + std::to_string(a)},
                             {"assigned_rep", RepId(k)}, {"region", "Hunan"}, {"channel", "supermarket"},
                             {"status", "active"}, {"payment_terms", "30 days"}});
    records = rows.rows.size();
    st = LoadRows(hub, &rows, &changes);
    pull_from = hub.head();
    // What each rep has to receive: one central edit of its first account.
    for (int k = 0; st.ok() && k < spec.count; ++k)
      rows.rows.push_back({{"table", "accounts"}, {"id", ForceAccount(k, 0)}, {"payment_terms", "60 days"}});
    if (st.ok()) st = LoadRows(hub, &rows, &changes);
  } else if (st.ok()) {
    st = Status::InvalidArgument("unknown --serve mode '" + spec.mode + "'");
  }
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!st.ok()) {
    std::cerr << "bench server: " << st.ToString() << "\n";
    srv.Stop();
    return 1;
  }
  long load_peak = ProcStatusKb(0, "VmHWM");
  malloc_trim(0);
  ResetPeakRss(0);
  std::printf("ready port=%u head=%lld pull_from=%lld load_s=%.3f records=%zu changes=%zu load_peak_kb=%ld\n",
              srv.port(), static_cast<long long>(hub.head()), static_cast<long long>(pull_from), load_s, records,
              changes, load_peak);
  std::fflush(stdout);
  char buf[256];
  while (fgets(buf, sizeof buf, stdin)) {
  }
  srv.Stop();
  return 0;
}

}  // namespace fieldsync::bench
