// The benchmark's server runs in a child process of its own (the bench
// binary re-executed with --serve), so that its memory is measured apart
// from the clients' and the two never share an allocator or a lock.
//
// The child builds its data set from the same seeds as the parent, loads
// it, starts a real Server on a loopback port, prints one "ready" line and
// serves until its stdin closes. The parent reads the child's memory from
// /proc/<pid>/status.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sync/status.h"

namespace fieldsync::bench {

// The data sets a server child can hold.
//   territories: `count` W1 territories ("t<k>-" ids, account owner rep-<k>),
//                the SKU catalog once; users rep-0..rep-<count-1>.
//   force:       `count` reps with 8 accounts each and a 30-SKU catalog (W4,
//                W5); then one central edit per rep's first account, so
//                that each rep has exactly one change to receive.
struct ServeSpec {
  std::string mode = "territories";
  int count = 1;
  double scale = 1.0;
  std::string dir;
  std::string auth_key;
};

// Identities both sides derive from the spec, so no secret crosses the pipe.
std::string RepId(int k);
std::string DeviceId(int rep, int device);
uint64_t DeviceNode(int rep, int device);  // W4/W5 load devices
std::string ForceAccount(int rep, int k);   // k < 8
// A token for rep `k`'s device `d`, valid for a day.
Status RepToken(const std::string& auth_key, int rep, int device, std::string* token);

class ServerProcess {
 public:
  ~ServerProcess() { Stop(); }
  // Starts `exe --serve ...` and waits for its ready line. `ready` gets the
  // child's key=value figures (port, head, load_s, records, changes).
  Status Start(const std::string& exe, const ServeSpec& spec);
  uint16_t port() const { return port_; }
  const std::map<std::string, std::string>& ready() const { return ready_; }
  // The child's resident memory now and its peak since the last ResetPeak
  // (or since it was ready), in KiB.
  long RssKb() const;
  long PeakKb() const;
  void ResetPeak() const;
  double CpuSeconds() const;
  // Closes the child's stdin and waits for it to exit.
  void Stop();

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  uint16_t port_ = 0;
  std::map<std::string, std::string> ready_;
};

// The child's side: runs the server described by argv (after --serve) until
// stdin closes. Returns the process exit code.
int ServeMain(int argc, char** argv);

// Reads a "VmRSS"/"VmHWM" figure (KiB) of a process; pid 0 is this one.
long ProcStatusKb(pid_t pid, const char* field);
// CPU seconds (user + system) a process has used; pid 0 is this one.
double ProcCpuSeconds(pid_t pid);
// Resets a process's peak RSS to its current RSS (Linux clear_refs 5).
void ResetPeakRss(pid_t pid);

}  // namespace fieldsync::bench
