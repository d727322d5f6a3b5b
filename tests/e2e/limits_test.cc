// Every limit of docs/protocol.md section 9 ("Limits"), crossed end to end:
// the real server on a loopback port with small configured limits, real
// WebSocket frames written byte by byte on a plain TCP socket (so the test
// sees close codes, pings and timing exactly as a peer does). Each test
// checks the documented error or behaviour at and just over the bound, that
// nothing of a refused message was applied, and that the server still serves
// everyone else.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zstd.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace fieldsync {
namespace {

using testing::TempDir;
using testing::TestServer;
using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

uint16_t PortOf(const TestServer& s) {
  const std::string u = s.url();  // ws://127.0.0.1:PORT/
  return static_cast<uint16_t>(std::stoi(u.substr(u.rfind(':') + 1)));
}

// A WebSocket client written against the socket API: RFC 6455 framing by
// hand, masked client frames, no automatic pong (unless asked), and every
// control frame the server sends is visible.
class Wire {
 public:
  enum class Io { kOk, kEof, kTimeout };
  struct Frame {
    uint8_t opcode = 0;
    bool fin = true;
    std::string payload;
  };

  explicit Wire(uint16_t port) : start_(Clock::now()) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) Close();
    int one = 1;
    if (fd_ >= 0) ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Wire() { Close(); }
  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool ok() const { return fd_ >= 0; }
  Clock::time_point start() const { return start_; }

  bool SendRaw(std::string_view b) {
    while (!b.empty()) {
      ssize_t n = ::send(fd_, b.data(), b.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      b.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // The HTTP upgrade; true on "101 Switching Protocols".
  bool Upgrade(int timeout_ms = 3000) {
    if (!SendRaw("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
      return false;
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    size_t end;
    while ((end = in_.find("\r\n\r\n")) == std::string::npos)
      if (Fill(deadline) != Io::kOk) return false;
    bool switched = in_.rfind("HTTP/1.1 101", 0) == 0;
    in_.erase(0, end + 4);
    return switched;
  }

  // One complete (FIN) frame, masked as a client must.
  bool SendFrame(uint8_t opcode, std::string_view payload) {
    std::string f;
    f.push_back(static_cast<char>(0x80 | opcode));
    size_t n = payload.size();
    if (n < 126) {
      f.push_back(static_cast<char>(0x80 | n));
    } else if (n < 65536) {
      f.push_back(static_cast<char>(0x80 | 126));
      f.push_back(static_cast<char>(n >> 8));
      f.push_back(static_cast<char>(n & 0xff));
    } else {
      f.push_back(static_cast<char>(0x80 | 127));
      for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)) & 0xff));
    }
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    f.append(reinterpret_cast<const char*>(mask), 4);
    for (size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
    return SendRaw(f);
  }
  bool SendBinary(std::string_view frame) { return SendFrame(0x2, frame); }
  bool SendText(std::string_view text) { return SendFrame(0x1, text); }
  bool Send(const json& m, Encoding enc = Encoding::kJson) { return SendBinary(EncodeFrame(m, enc)); }

  // Upgrade, hello, welcome.
  bool Hello(uint64_t node, json* welcome = nullptr) {
    if (!Upgrade()) return false;
    if (!Send({{"type", "hello"}, {"protocol", {1}}, {"node", ToHex(node)}, {"encodings", {"json"}}})) return false;
    json w;
    if (!Receive(&w) || w.value("type", "") != "welcome") return false;
    if (welcome) *welcome = w;
    return true;
  }

  // Reads one frame (any opcode).
  Io ReadFrame(Frame* f, Clock::time_point deadline) {
    for (;;) {
      if (in_.size() >= 2) {
        const auto* b = reinterpret_cast<const uint8_t*>(in_.data());
        uint64_t len = b[1] & 0x7f;
        size_t hdr = 2;
        if (len == 126) hdr = 4;
        if (len == 127) hdr = 10;
        if (b[1] & 0x80) hdr += 4;  // a server never masks; tolerate it anyway
        if (in_.size() >= hdr) {
          if (len == 126) len = (uint64_t{b[2]} << 8) | b[3];
          if (len == 127) {
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
          }
          if (in_.size() >= hdr + len) {
            f->fin = (b[0] & 0x80) != 0;
            f->opcode = b[0] & 0x0f;
            f->payload = in_.substr(hdr, len);
            if (b[1] & 0x80)
              for (size_t i = 0; i < len; ++i) f->payload[i] ^= in_[hdr - 4 + i % 4];
            in_.erase(0, hdr + len);
            return Io::kOk;
          }
        }
      }
      Io io = Fill(deadline);
      if (io != Io::kOk) return io;
    }
  }

  // Reads control frames and data frames until one whole message arrives.
  // Pings are counted (and answered only if answer_pings). A close frame is
  // recorded and ends the read (false), as do EOF and the timeout.
  Io ReadMessage(std::string* msg, bool* text, int timeout_ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    std::string acc;
    for (;;) {
      Frame f;
      Io io = ReadFrame(&f, deadline);
      if (io != Io::kOk) {
        if (io == Io::kEof) eof_ms = MsSince(start_);
        return io;
      }
      switch (f.opcode) {
        case 0x9:
          ++pings;
          if (answer_pings) SendFrame(0xA, f.payload);
          continue;
        case 0xA:
          continue;
        case 0x8:
          got_close = true;
          close_ms = MsSince(start_);
          if (f.payload.size() >= 2)
            close_code = (static_cast<uint8_t>(f.payload[0]) << 8) | static_cast<uint8_t>(f.payload[1]);
          close_reason = f.payload.size() > 2 ? f.payload.substr(2) : "";
          return Io::kEof;
        case 0x1:
        case 0x2:
          *text = f.opcode == 0x1;
          [[fallthrough]];
        default:  // continuation
          acc += f.payload;
          if (f.fin) {
            *msg = std::move(acc);
            ++messages;
            return Io::kOk;
          }
      }
    }
  }

  // One protocol message, decoded. False on close, EOF or timeout.
  bool Receive(json* m, int timeout_ms = 5000) {
    std::string frame;
    bool text = false;
    if (ReadMessage(&frame, &text, timeout_ms) != Io::kOk) return false;
    if (text) frame.insert(frame.begin(), '\0');
    Limits big{64u << 20, 256u << 20, 1u << 20, 1u << 20, 64};
    return DecodeFrame(frame, big, m).ok();
  }

  // Reads (and decodes, for the record) everything until the server ends the
  // connection. True if it did within the timeout; the messages read on the
  // way are in *seen.
  bool WaitClosed(int timeout_ms, std::vector<json>* seen = nullptr) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (left <= 0) return false;
      std::string frame;
      bool text = false;
      Io io = ReadMessage(&frame, &text, left);
      if (io == Io::kTimeout) return false;
      if (io == Io::kEof) {
        if (got_close) {
          // Wait for the TCP end after the close frame (the server's side of
          // the closing handshake), answering it as a client does.
          SendFrame(0x8, std::string("\x03\xe8", 2));
          Frame f;
          while (ReadFrame(&f, deadline) == Io::kOk) {
          }
          eof_ms = MsSince(start_);
        }
        return true;
      }
      if (seen) {
        if (text) frame.insert(frame.begin(), '\0');
        json m;
        Limits big{64u << 20, 256u << 20, 1u << 20, 1u << 20, 64};
        if (DecodeFrame(frame, big, &m).ok()) seen->push_back(m);
      }
    }
  }

  // Keeps reading for `ms` (answering pings if asked); false if the
  // connection ended meanwhile.
  bool StayFor(int ms) {
    auto until = Clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count());
      if (left <= 0) return true;
      std::string frame;
      bool text;
      Io io = ReadMessage(&frame, &text, left);
      if (io == Io::kEof) return false;
    }
  }

  // Bytes received before EOF (the refused-connection case): reads until EOF.
  Io ReadAll(int timeout_ms, std::string* out) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      Io io = Fill(deadline);
      if (io != Io::kOk) {
        *out = in_;
        if (io == Io::kEof) eof_ms = MsSince(start_);
        return io;
      }
    }
  }

  bool answer_pings = false;
  int pings = 0;
  int messages = 0;
  bool got_close = false;
  int close_code = -1;
  std::string close_reason;
  int64_t close_ms = -1;  // ms after the TCP connect
  int64_t eof_ms = -1;

 private:
  Io Fill(Clock::time_point deadline) {
    if (fd_ < 0) return Io::kEof;
    for (;;) {
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (left < 0) left = 0;
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, left);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) return Io::kTimeout;
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Io::kEof;  // FIN, or a reset
      in_.append(buf, static_cast<size_t>(n));
      return Io::kOk;
    }
  }

  int fd_ = -1;
  Clock::time_point start_;
  std::string in_;
};

std::string Hex(const std::string& b) {
  std::string out;
  char buf[4];
  for (unsigned char c : b) {
    std::snprintf(buf, sizeof buf, "%02x ", c);
    out += buf;
  }
  return out;
}

json Set(const std::string& table, const std::string& row, const std::string& col, const json& v, uint64_t node,
         Hlc hlc) {
  Change c;
  c.table = table;
  c.row = row;
  c.column = col;
  c.value = v;
  c.stamp = {hlc, node};
  return ChangeToJson(c);
}

json Inc(const std::string& table, const std::string& row, const std::string& col, const json& totals,
         uint64_t node, Hlc hlc) {
  Change c;
  c.table = table;
  c.row = row;
  c.column = col;
  c.op = Op::kIncrement;
  c.value = totals;
  c.stamp = {hlc, node};
  return ChangeToJson(c);
}

// `m` with a "pad" member sized so that m.dump() is exactly `bytes` long.
json PadTo(json m, size_t bytes) {
  m["pad"] = "";
  size_t base = m.dump().size();
  EXPECT_GE(bytes, base);
  m["pad"] = std::string(bytes - base, 'p');
  EXPECT_EQ(m.dump().size(), bytes);
  return m;
}

// `levels` arrays nested in one another, the innermost empty. As the value
// of a top-level key it makes the message (levels + 1) deep.
json Nested(int levels) {
  json x = json::array();
  for (int i = 1; i < levels; ++i) x = json::array({x});
  return x;
}

std::string Zstd(const std::string& payload, int level = 3) {
  std::string out(ZSTD_compressBound(payload.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), payload.data(), payload.size(), level);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

class LimitsTest : public ::testing::Test {
 protected:
  void StartServer(server::ServerOptions o) { server_ = std::make_unique<TestServer>(o); }
  TestServer& server() { return *server_; }
  uint16_t port() { return PortOf(*server_); }
  int64_t Head() { return server_->hub().head(); }

  // A well-behaved replica still syncs, and ends equal to the server.
  void ExpectServerStillServes() {
    std::unique_ptr<Replica> r;
    ASSERT_TRUE(Replica::Open(dir_.File("good" + std::to_string(++good_) + ".db"), testing::FieldSalesSchema(), &r).ok());
    std::string id = "still-" + std::to_string(good_);
    ASSERT_TRUE(r->Put("accounts", id, {{"phone", "12345"}}).ok());
    SyncOptions o = server_->sync_options();
    Status st = r->Sync(o);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(r->GetSyncStatus().pending, 0);
    EXPECT_EQ(testing::DumpText(*r), server_->Dump());
  }

  json ExpectError(Wire& w, const std::string& code, bool fatal = false) {
    json m;
    EXPECT_TRUE(w.Receive(&m)) << "no reply";
    EXPECT_EQ(m.value("type", ""), "error") << m.dump();
    EXPECT_EQ(m.value("code", ""), code) << m.dump();
    EXPECT_EQ(m.value("fatal", !fatal), fatal) << m.dump();
    return m;
  }

  json ExpectReply(Wire& w, const std::string& type) {
    json m;
    EXPECT_TRUE(w.Receive(&m)) << "no reply";
    EXPECT_EQ(m.value("type", ""), type) << m.dump();
    return m;
  }

  // The connection is still usable: a pull gets its reply.
  void ExpectAlive(Wire& w) {
    ASSERT_TRUE(w.Send({{"type", "pull"}, {"id", "alive"}, {"cursor", 0}, {"limit", 1}}));
    json m = ExpectReply(w, "changes");
    EXPECT_EQ(m["id"], "alive");
  }

  TempDir dir_;
  std::unique_ptr<TestServer> server_;
  int good_ = 0;
};

constexpr uint64_t kA = 0xa1, kB = 0xb2;

// ---- max_frame_bytes ------------------------------------------------------------------

TEST_F(LimitsTest, MaxFrameBytesExactlyAtTheLimitPassesOneByteOverClosesWith1009) {
  server::ServerOptions o;
  o.limits.max_frame_bytes = 64 * 1024;
  StartServer(o);
  const size_t max = o.limits.max_frame_bytes;
  Wire w(port()), other(port());
  json welcome;
  ASSERT_TRUE(w.Hello(kA, &welcome));
  EXPECT_EQ(welcome["limits"]["max_frame_bytes"], max);
  ASSERT_TRUE(other.Hello(kB));
  uint64_t t = SystemMillis();

  // A binary message of exactly max_frame_bytes (flags byte included) is taken.
  json at = PadTo({{"type", "push"}, {"batch", 1}, {"changes", {Set("accounts", "at", "phone", "1", kA, MakeHlc(t, 1))}}},
                  max - 1);
  std::string frame = EncodeFrame(at, Encoding::kJson, /*compress=*/false);
  ASSERT_EQ(frame.size(), max);
  ASSERT_TRUE(w.SendBinary(frame));
  json ack = ExpectReply(w, "ack");
  EXPECT_EQ(ack["applied"], 1);
  EXPECT_EQ(Head(), 1);

  // A text message of exactly max_frame_bytes: the server prepends a flags
  // byte, so it fails DecodeFrame's size check: limit_exceeded, not fatal.
  json text = PadTo({{"type", "pull"}, {"id", 2}, {"cursor", 0}}, max);
  ASSERT_TRUE(w.SendText(text.dump()));
  ExpectError(w, "limit_exceeded");
  ExpectAlive(w);

  // One byte over: the WebSocket layer closes with 1009 and no error message;
  // the push in it is not applied.
  json over = PadTo({{"type", "push"}, {"batch", 3}, {"changes", {Set("accounts", "over", "phone", "1", kA, MakeHlc(t, 2))}}},
                    max);
  frame = EncodeFrame(over, Encoding::kJson, false);
  ASSERT_EQ(frame.size(), max + 1);
  ASSERT_TRUE(w.SendBinary(frame));
  std::vector<json> seen;
  EXPECT_TRUE(w.WaitClosed(2000, &seen));
  EXPECT_TRUE(w.got_close);
  EXPECT_EQ(w.close_code, 1009);
  EXPECT_TRUE(seen.empty()) << seen[0].dump();
  EXPECT_EQ(Head(), 1);
  EXPECT_EQ(server().Dump().find("\"over\""), std::string::npos);

  // The other connection never noticed.
  ExpectAlive(other);
  ExpectServerStillServes();
}

// The SDK reads welcome.limits.max_frame_bytes and splits a push that would
// not fit: otherwise the server closes it with 1009 unacknowledged and every
// later sync sends the same batch again, and the outbox never drains.
TEST_F(LimitsTest, SdkSplitsPushesToFitTheServersFrameLimit) {
  server::ServerOptions o;
  o.limits.max_frame_bytes = 64 * 1024;
  StartServer(o);
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(dir_.File("big.db"), testing::FieldSalesSchema(), &r).ok());
  std::mt19937 rng(3);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  WriteBatch b;
  for (int i = 0; i < 40; ++i) {
    std::string text(6000, ' ');
    for (char& ch : text) ch = alphabet[rng() % 64];
    b.Put("visits", "big" + std::to_string(i), {{"summary", text}});
  }
  ASSERT_TRUE(r->Apply(b).ok());
  for (int attempt = 0; attempt < 2; ++attempt) {
    Status st = r->Sync(server().sync_options());
    EXPECT_TRUE(st.ok()) << "attempt " << attempt << ": " << st.ToString();
  }
  EXPECT_EQ(r->GetSyncStatus().pending, 0);
  EXPECT_EQ(Head(), 40);
  EXPECT_EQ(testing::DumpText(*r), server().Dump());
}

// A change whose push alone cannot fit the server's frame is refused by the
// SDK as the server would refuse it (limit_exceeded, listed with the
// rejections) and holds back nothing behind it.
TEST_F(LimitsTest, AChangeTooBigForAnyPushIsRefusedAndTheRestOfTheOutboxDrains) {
  server::ServerOptions o;
  o.limits.max_frame_bytes = 4096;
  StartServer(o);
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(dir_.File("huge.db"), testing::FieldSalesSchema(), &r).ok());
  std::mt19937 rng(5);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string text(6000, ' ');
  for (char& ch : text) ch = alphabet[rng() % 64];
  // One change before it, so the huge one comes up while that push is
  // still in flight (it waits for the ack before the outbox drops it), and
  // one after it.
  ASSERT_TRUE(r->Put("accounts", "before", {{"phone", "021-0"}}).ok());
  ASSERT_TRUE(r->Put("visits", "huge", {{"summary", text}}).ok());
  ASSERT_TRUE(r->Put("accounts", "small", {{"phone", "021-1"}}).ok());
  SyncReport rep;
  Status st = r->Sync(server().sync_options(), &rep);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(rep.rejected, 1);
  EXPECT_EQ(rep.pushed, 2);
  EXPECT_EQ(r->GetSyncStatus().pending, 0);
  std::vector<store::Rejection> rejected;
  ASSERT_TRUE(r->Rejections(&rejected).ok());
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].code, "limit_exceeded");
  EXPECT_EQ(rejected[0].change.row, "huge");
  EXPECT_EQ(Head(), 2);
  json row;
  EXPECT_TRUE(r->Get("accounts", "before", &row).ok());
  EXPECT_EQ(server().Dump().find("huge"), std::string::npos);
  ExpectServerStillServes();
}

// A push sent before the previous one's ack names it in `after`: it is
// applied only if that one was acknowledged, so a batch never enters the
// log ahead of an earlier one that failed (protocol.md 6.1).
TEST_F(LimitsTest, APipelinedPushIsAppliedOnlyAfterThePushItFollows) {
  StartServer({});
  Wire w(port());
  ASSERT_TRUE(w.Hello(kA));
  uint64_t t = SystemMillis();
  json good1 = {{"type", "push"}, {"batch", 1}, {"changes", {Set("accounts", "p1", "phone", "1", kA, MakeHlc(t, 1))}}};
  json bad2 = {{"type", "push"}, {"batch", 2}, {"after", 1}, {"changes", {{{"table", 5}}}}};
  json next3 = {{"type", "push"}, {"batch", 3}, {"after", 2}, {"changes", {Set("accounts", "p3", "phone", "3", kA, MakeHlc(t, 3))}}};
  json next4 = {{"type", "push"}, {"batch", 4}, {"after", 3}, {"changes", {Set("accounts", "p4", "phone", "4", kA, MakeHlc(t, 4))}}};
  // All four sent at once, as a pipelining client would.
  ASSERT_TRUE(w.Send(good1) && w.Send(bad2) && w.Send(next3) && w.Send(next4));
  EXPECT_EQ(ExpectReply(w, "ack")["applied"], 1);
  EXPECT_EQ(ExpectError(w, "protocol_error")["in_reply_to"], 2);
  json e3 = ExpectError(w, "closed");
  EXPECT_EQ(e3["in_reply_to"], 3);
  EXPECT_NE(e3["message"].get<std::string>().find("follows push 2"), std::string::npos) << e3.dump();
  EXPECT_EQ(ExpectError(w, "closed")["in_reply_to"], 4);  // it follows 3, which was refused
  EXPECT_EQ(Head(), 1);
  // A push without `after` is judged on its own; one that follows an
  // acknowledged push goes through; `after` naming any other push does not.
  ASSERT_TRUE(w.Send({{"type", "push"}, {"batch", 5}, {"changes", next3["changes"]}}));
  EXPECT_EQ(ExpectReply(w, "ack")["applied"], 1);
  ASSERT_TRUE(w.Send({{"type", "push"}, {"batch", 6}, {"after", 5}, {"changes", next4["changes"]}}));
  EXPECT_EQ(ExpectReply(w, "ack")["applied"], 1);
  ASSERT_TRUE(w.Send({{"type", "push"}, {"batch", 7}, {"after", 5},
                      {"changes", {Set("accounts", "p7", "phone", "7", kA, MakeHlc(t, 7))}}}));
  ExpectError(w, "closed");
  EXPECT_EQ(Head(), 3);
  ExpectAlive(w);
  ExpectServerStillServes();
}

// The server keeps the last `batch` for the connection's life and quotes
// ids in errors: they are small scalars, or the push is refused whole.
TEST_F(LimitsTest, PushIdsMustBeSmallScalars) {
  StartServer({});
  Wire w(port());
  json welcome;
  ASSERT_TRUE(w.Hello(kA, &welcome));
  EXPECT_EQ(welcome["features"], json::array({"push_after", "pull_applied", "snapshot_columns"}));
  uint64_t t = SystemMillis();
  json one = {Set("accounts", "q1", "phone", "1", kA, MakeHlc(t, 1))};
  ASSERT_TRUE(w.Send({{"type", "push"}, {"batch", {{"big", std::string(1000, 'x')}}}, {"changes", one}}));
  json e = ExpectError(w, "protocol_error");
  EXPECT_FALSE(e.contains("in_reply_to")) << e.dump();
  ASSERT_TRUE(w.Send({{"type", "push"}, {"batch", std::string(65, 'b')}, {"changes", one}}));
  ExpectError(w, "protocol_error");
  ASSERT_TRUE(w.Send({{"type", "push"}, {"batch", "b1"}, {"after", json::array({1, 2})}, {"changes", one}}));
  EXPECT_EQ(ExpectError(w, "protocol_error")["in_reply_to"], "b1");
  EXPECT_EQ(Head(), 0);
  // The longest id still passes, and so do integers and null.
  ASSERT_TRUE(w.Send({{"type", "push"}, {"batch", std::string(64, 'b')}, {"changes", one}}));
  EXPECT_EQ(ExpectReply(w, "ack")["applied"], 1);
  ASSERT_TRUE(w.Send({{"type", "push"}, {"batch", 9}, {"after", std::string(64, 'b')},
                      {"changes", {Set("accounts", "q2", "phone", "2", kA, MakeHlc(t, 2))}}}));
  EXPECT_EQ(ExpectReply(w, "ack")["applied"], 1);
  EXPECT_EQ(Head(), 2);
  ExpectAlive(w);
  ExpectServerStillServes();
}

// Against a server that does not advertise `push_after` (one from before
// it, which ignores the field) the SDK waits for each ack: a later batch
// never commits while an earlier one failed.
TEST_F(LimitsTest, TheSdkPipelinesOnlyWithAServerThatSaysItHonoursAfter) {
  for (bool advertised : {true, false}) {
    SCOPED_TRACE(advertised ? "advertised" : "an older server");
    server::ServerOptions o;
    o.feature_push_after = advertised;
    o.feature_pull_applied = advertised;
    int log_inserts = 0;
    o.fault_hook = [&](std::string_view sql) -> Status {
      // The first push fails inside the server (a full disk, say).
      if (sql.find("INSERT INTO fs_log") != std::string_view::npos && ++log_inserts == 1)
        return Status::IoError("test: disk full");
      return Status::OK();
    };
    StartServer(o);
    TempDir d;
    std::unique_ptr<Replica> r;
    ASSERT_TRUE(Replica::Open(d.File("p.db"), testing::FieldSalesSchema(), &r).ok());
    for (int i = 0; i < 10; ++i)
      ASSERT_TRUE(r->Put("accounts", "pp" + std::to_string(i), {{"phone", std::to_string(i)}}).ok());
    SyncOptions so = server().sync_options();
    so.push_batch = 5;  // two pushes
    EXPECT_FALSE(r->Sync(so).ok());
    // Whether the second push was sent ahead (and refused for following a
    // failed one) or held back, nothing of it is in the log, and all ten
    // changes are still waiting.
    EXPECT_EQ(Head(), 0);
    EXPECT_EQ(r->GetSyncStatus().pending, 10);
    SyncReport rep;
    Status st = r->Sync(so, &rep);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(rep.pushed, 10);
    EXPECT_EQ(r->GetSyncStatus().pending, 0);
    EXPECT_EQ(testing::DumpText(*r), server().Dump());
  }
}

// A new device bootstraps the same territory from a server with column-major
// snapshot pages and from one without (which ignores `columns` and sends
// rows): the same replica either way, and fewer bytes with blocks.
TEST_F(LimitsTest, TheSdkBootstrapsFromBlocksAndFromRows) {
  int64_t bytes[2] = {0, 0};
  for (bool blocks : {true, false}) {
    SCOPED_TRACE(blocks ? "blocks" : "an older server");
    server::ServerOptions o;
    o.feature_snapshot_columns = blocks;
    StartServer(o);
    TempDir d;
    {
      std::unique_ptr<Replica> w;
      ASSERT_TRUE(Replica::Open(d.File("w.db"), testing::FieldSalesSchema(), &w).ok());
      for (int i = 0; i < 300; ++i) {
        std::string id = "acc-" + std::to_string(1000 + i);
        ASSERT_TRUE(w->Put("accounts", id, {{"phone", "021-" + std::to_string(i)}, {"name", "Store " + std::to_string(i % 7)},
                                            {"city", i % 2 ? "Wuhan" : "Changsha"}}).ok());
        if (i % 50 == 0) {
          ASSERT_TRUE(w->Delete("accounts", id).ok());
        }
      }
      ASSERT_TRUE(w->Sync(server().sync_options()).ok());
    }
    std::unique_ptr<Replica> r;
    ASSERT_TRUE(Replica::Open(d.File("new.db"), testing::FieldSalesSchema(), &r).ok());
    SyncReport rep;
    Status st = r->Sync(server().sync_options(), &rep);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(rep.snapshot_rows, 300);
    EXPECT_EQ(testing::DumpText(*r), server().Dump());
    bytes[blocks] = rep.bytes_received;
  }
  EXPECT_LT(bytes[1], bytes[0]) << "blocks " << bytes[1] << " vs rows " << bytes[0];
}

// ---- max_decompressed_bytes ------------------------------------------------------------

TEST_F(LimitsTest, MaxDecompressedBytesRefusesAnOrdinaryCompressedPushWholeAndKeepsTheConnection) {
  server::ServerOptions o;
  o.limits.max_decompressed_bytes = 32 * 1024;
  StartServer(o);
  const size_t max = o.limits.max_decompressed_bytes;
  Wire w(port());
  json welcome;
  ASSERT_TRUE(w.Hello(kA, &welcome));
  EXPECT_EQ(welcome["limits"]["max_decompressed_bytes"], max);

  // Not a bomb: 80 address edits of varied text, compressing a few times.
  std::mt19937 rng(7);
  const char* words[] = {"Road", "No.", "Building", "Floor", "Jiefang", "Zhongshan", "Renmin", "East", "West",
                         "Gate", "Market", "Plaza", "Block", "Unit", "Lane", "Hankou", "Wuchang", "Changsha"};
  uint64_t t = SystemMillis();
  json changes = json::array();
  for (int i = 0; i < 80; ++i) {
    std::string addr;
    while (addr.size() < 420) addr += std::string(words[rng() % 18]) + " " + std::to_string(rng() % 997) + " ";
    changes.push_back(Set("accounts", "d" + std::to_string(i), "address", addr, kA, MakeHlc(t, i + 1)));
  }
  json push = {{"type", "push"}, {"batch", 1}, {"changes", changes}};
  std::string payload = push.dump();
  std::string frame = EncodeFrame(push, Encoding::kJson);
  ASSERT_GT(payload.size(), max);
  ASSERT_EQ(static_cast<uint8_t>(frame[0]), 0x10) << "expected a compressed frame";
  ASSERT_LT(frame.size(), max);                  // the frame itself is small ...
  ASSERT_GT(frame.size() * 10, payload.size());  // ... but no bomb: under 10x
  ASSERT_TRUE(w.SendBinary(frame));
  json e = ExpectError(w, "limit_exceeded");
  EXPECT_NE(e["message"].get<std::string>().find("max_decompressed_bytes"), std::string::npos) << e.dump();
  EXPECT_EQ(Head(), 0);  // nothing of the batch
  EXPECT_EQ(server().Dump(), "");

  // Exactly at the limit is taken, one byte more is refused.
  json at = PadTo({{"type", "push"}, {"batch", 2}, {"changes", {changes[0]}}}, max);
  ASSERT_TRUE(w.SendBinary(std::string(1, '\x10') + Zstd(at.dump())));
  EXPECT_EQ(ExpectReply(w, "ack")["applied"], 1);
  json over = PadTo({{"type", "push"}, {"batch", 3}, {"changes", {changes[1]}}}, max + 1);
  ASSERT_TRUE(w.SendBinary(std::string(1, '\x10') + Zstd(over.dump())));
  ExpectError(w, "limit_exceeded");
  EXPECT_EQ(Head(), 1);

  // The same connection then sends the batch in halves that fit.
  for (int half = 0; half < 2; ++half) {
    json part = json::array();
    for (int i = half * 40; i < half * 40 + 40; ++i) part.push_back(changes[i]);
    json p = {{"type", "push"}, {"batch", 10 + half}, {"changes", part}};
    ASSERT_LT(p.dump().size(), max);
    ASSERT_TRUE(w.Send(p));
    json ack = ExpectReply(w, "ack");
    EXPECT_EQ(ack["applied"].get<int>() + ack["duplicates"].get<int>(), 40) << ack.dump();
  }
  EXPECT_EQ(Head(), 80);
  ExpectServerStillServes();
}

// ---- max_changes_per_push ---------------------------------------------------------------

TEST_F(LimitsTest, MaxChangesPerPushAtTheLimitAppliesOneMoreIsRefusedWholeAndTheSdkBatchesBelowIt) {
  server::ServerOptions o;
  o.limits.max_changes_per_push = 10;
  StartServer(o);
  Wire w(port());
  json welcome;
  ASSERT_TRUE(w.Hello(kA, &welcome));
  EXPECT_EQ(welcome["limits"]["max_changes_per_push"], 10);
  uint64_t t = SystemMillis();
  auto batch = [&](int n, int first) {
    json a = json::array();
    for (int i = 0; i < n; ++i)
      a.push_back(Set("store_check_lines", "p" + std::to_string(first + i), "facings", i, kA, MakeHlc(t, first + i + 1)));
    return a;
  };
  ASSERT_TRUE(w.Send({{"type", "push"}, {"batch", 1}, {"changes", batch(10, 0)}}));
  EXPECT_EQ(ExpectReply(w, "ack")["applied"], 10);
  ASSERT_TRUE(w.Send({{"type", "push"}, {"batch", 2}, {"changes", batch(11, 100)}}));
  json e = ExpectError(w, "limit_exceeded");
  EXPECT_EQ(e["in_reply_to"], 2);
  EXPECT_EQ(Head(), 10);
  EXPECT_EQ(server().Dump().find("\"p100\""), std::string::npos);
  ExpectAlive(w);

  // The reference client reads the limit from welcome: 35 pending changes
  // with push_batch 1000 go up in batches the server accepts.
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(dir_.File("sdk.db"), testing::FieldSalesSchema(), &r).ok());
  WriteBatch b;
  for (int i = 0; i < 35; ++i) b.Put("store_check_lines", "s" + std::to_string(i), {{"facings", i}});
  ASSERT_TRUE(r->Apply(b).ok());
  SyncOptions so = server().sync_options();
  so.push_batch = 1000;
  SyncReport rep;
  Status st = r->Sync(so, &rep);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(rep.pushed, 35);
  EXPECT_EQ(Head(), 45);
  ExpectServerStillServes();
}

// ---- max_changes_per_pull ---------------------------------------------------------------

TEST_F(LimitsTest, MaxChangesPerPullBoundsEveryPageAndAClientCatchesUpInBatches) {
  server::ServerOptions o;
  o.limits.max_changes_per_pull = 7;
  StartServer(o);
  Wire writer(port()), reader(port()), live(port());
  json welcome;
  ASSERT_TRUE(writer.Hello(kA, &welcome));
  EXPECT_EQ(welcome["limits"]["max_changes_per_pull"], 7);
  ASSERT_TRUE(reader.Hello(kB));
  ASSERT_TRUE(live.Hello(0xc3));
  uint64_t t = SystemMillis();
  json changes = json::array();
  for (int i = 0; i < 30; ++i)
    changes.push_back(Set("store_check_lines", "l" + std::to_string(i), "facings", i, kA, MakeHlc(t, i + 1)));
  ASSERT_TRUE(writer.Send({{"type", "push"}, {"batch", 1}, {"changes", changes}}));
  ASSERT_EQ(ExpectReply(writer, "ack")["applied"], 30);

  // Pages of at most 7, more=true until the last, seqs contiguous.
  int64_t cursor = 0;
  std::vector<int64_t> seqs;
  std::vector<size_t> pages;
  for (int round = 0; round < 20; ++round) {
    ASSERT_TRUE(reader.Send({{"type", "pull"}, {"id", round}, {"cursor", cursor}}));
    json m = ExpectReply(reader, "changes");
    ASSERT_EQ(m["id"], round);
    ASSERT_LE(m["changes"].size(), 7u);
    pages.push_back(m["changes"].size());
    for (const auto& c : m["changes"]) seqs.push_back(c["s"].get<int64_t>());
    EXPECT_EQ(m["head"], 30);
    cursor = m["cursor"].get<int64_t>();
    EXPECT_EQ(m["more"].get<bool>(), cursor < 30);
    if (!m["more"].get<bool>()) break;
  }
  EXPECT_EQ(pages, (std::vector<size_t>{7, 7, 7, 7, 2}));
  ASSERT_EQ(seqs.size(), 30u);
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], static_cast<int64_t>(i + 1));

  // pull.limit: smaller is honoured, larger, zero or negative is capped.
  for (auto [limit, want] : std::vector<std::pair<json, size_t>>{{3, 3}, {1000, 7}, {0, 7}, {-4, 7}, {"x", 7}}) {
    ASSERT_TRUE(reader.Send({{"type", "pull"}, {"id", "lim"}, {"cursor", 0}, {"limit", limit}}));
    json m = ExpectReply(reader, "changes");
    EXPECT_EQ(m["changes"].size(), want) << "limit " << limit.dump();
    EXPECT_TRUE(m["more"].get<bool>());
  }

  // The author's own entries count towards the scan: an empty page with a
  // larger cursor and more=true.
  ASSERT_TRUE(writer.Send({{"type", "pull"}, {"id", 1}, {"cursor", 0}}));
  json own = ExpectReply(writer, "changes");
  EXPECT_TRUE(own["changes"].empty());
  EXPECT_EQ(own["cursor"], 7);
  EXPECT_TRUE(own["more"].get<bool>());

  // Live mode pages the same way: every message at most 7.
  ASSERT_TRUE(live.Send({{"type", "subscribe"}, {"cursor", 0}}));
  size_t got = 0;
  for (int i = 0; i < 20 && got < 30; ++i) {
    json m = ExpectReply(live, "changes");
    EXPECT_TRUE(m.value("live", false));
    EXPECT_LE(m["changes"].size(), 7u);
    got += m["changes"].size();
  }
  EXPECT_EQ(got, 30u);

  // The reference client catches up through all pages (a replica with a
  // row of its own reads the log, not a snapshot).
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(dir_.File("catchup.db"), testing::FieldSalesSchema(), &r).ok());
  ASSERT_TRUE(r->Put("accounts", "own", {{"phone", "1"}}).ok());
  SyncReport rep;
  ASSERT_TRUE(r->Sync(server().sync_options(), &rep).ok());
  EXPECT_EQ(rep.pulled, 30);
  EXPECT_EQ(rep.cursor, 31);
  EXPECT_EQ(testing::DumpText(*r), server().Dump());
  ExpectServerStillServes();
}

// ---- max_json_depth ----------------------------------------------------------------------

TEST_F(LimitsTest, MaxJsonDepthBoundaryForJsonAndMessagePackAndNothingOfADeepPushApplies) {
  server::ServerOptions o;
  o.limits.max_json_depth = 8;
  StartServer(o);
  Wire w(port());
  json welcome;
  ASSERT_TRUE(w.Hello(kA, &welcome));
  EXPECT_EQ(welcome["limits"]["max_json_depth"], 8);
  for (Encoding enc : {Encoding::kJson, Encoding::kMsgPack}) {
    SCOPED_TRACE(EncodingName(enc));
    // Depth 8 (object 1, pad array 2, ... innermost array 8) is accepted.
    ASSERT_TRUE(w.SendBinary(EncodeFrame({{"type", "pull"}, {"id", 1}, {"cursor", 0}, {"pad", Nested(7)}}, enc, false)));
    EXPECT_EQ(ExpectReply(w, "changes")["id"], 1);
    // Depth 9 is refused, the connection stays.
    ASSERT_TRUE(w.SendBinary(EncodeFrame({{"type", "pull"}, {"id", 2}, {"cursor", 0}, {"pad", Nested(8)}}, enc, false)));
    ExpectError(w, "limit_exceeded");
    // Compressed the same.
    json deep = {{"type", "pull"}, {"id", 3}, {"cursor", 0}, {"pad", Nested(8)}, {"filler", std::string(400, 'f')}};
    std::string z = EncodeFrame(deep, enc, true);
    ASSERT_TRUE(static_cast<uint8_t>(z[0]) & 0x10);
    ASSERT_TRUE(w.SendBinary(z));
    ExpectError(w, "limit_exceeded");
  }
  // A push whose one change nests too deep: the message is refused, so the
  // valid change beside it is not applied either.
  uint64_t t = SystemMillis();
  json deep_change = Set("accounts", "deep", "phone", Nested(6), kA, MakeHlc(t, 2));  // v at depth 4: 4 + 5 = 9
  json push = {{"type", "push"}, {"batch", 4}, {"changes", {Set("accounts", "ok", "phone", "1", kA, MakeHlc(t, 1)), deep_change}}};
  ASSERT_TRUE(w.Send(push));
  ExpectError(w, "limit_exceeded");
  EXPECT_EQ(Head(), 0);
  ExpectAlive(w);
  // Before the hello a decoding failure is fatal: error, then close 1008
  // with the code's name as reason.
  Wire fresh(port());
  ASSERT_TRUE(fresh.Upgrade());
  ASSERT_TRUE(fresh.Send({{"type", "hello"}, {"protocol", {1}}, {"node", ToHex(kB)}, {"pad", Nested(8)}}));
  ExpectError(fresh, "limit_exceeded", /*fatal=*/true);
  EXPECT_TRUE(fresh.WaitClosed(2000));
  EXPECT_EQ(fresh.close_code, 1008);
  EXPECT_EQ(fresh.close_reason, "limit_exceeded");
  ExpectServerStillServes();
}

// JSON depth is measured on the text before parsing: 530 bytes of zstd that
// inflate to 16 MB of '[' are refused for their depth (limit_exceeded), not
// parsed into 16 million nested arrays first (which would end in
// `corruption`, since the arrays are never closed).
TEST_F(LimitsTest, DeepJsonIsRefusedWithoutBuildingIt) {
  server::ServerOptions o;
  StartServer(o);
  Wire w(port());
  ASSERT_TRUE(w.Hello(kA));
  std::string payload = "{\"type\":\"pull\",\"cursor\":0,\"x\":" + std::string(16'000'000, '[');
  ASSERT_TRUE(w.SendBinary(std::string(1, '\x10') + Zstd(payload)));
  json m;
  ASSERT_TRUE(w.Receive(&m, 10000));
  EXPECT_EQ(m.value("code", ""), "limit_exceeded") << m.dump();
  ExpectAlive(w);
}

// ---- max_connections ---------------------------------------------------------------------

TEST_F(LimitsTest, MaxConnectionsRefusesTheNextBeforeTheUpgradeAndFreesASlotWhenOneCloses) {
  server::ServerOptions o;
  o.max_connections = 3;
  StartServer(o);
  // Two sessions and one bare TCP connection that never upgrades: a slot is
  // held from the TCP accept on.
  std::vector<std::unique_ptr<Wire>> open;
  for (int i = 0; i < 2; ++i) {
    open.push_back(std::make_unique<Wire>(port()));
    ASSERT_TRUE(open.back()->Hello(0x100 + i)) << i;
  }
  auto bare = std::make_unique<Wire>(port());
  ASSERT_TRUE(bare->ok());
  // Over the bound: the TCP connection is accepted and closed at once,
  // without an upgrade response or any message.
  auto refused = [&] {
    Wire extra(port());
    if (!extra.ok()) return true;
    extra.Upgrade(2000);  // may fail to send: the server may have closed already
    std::string bytes;
    Wire::Io io = extra.ReadAll(2000, &bytes);
    return io == Wire::Io::kEof && bytes.empty();
  };
  // Waits (bounded) until a new session is admitted.
  auto admit = [&](uint64_t node) {
    auto t0 = Clock::now();
    while (MsSince(t0) < 2000) {
      auto w = std::make_unique<Wire>(port());
      if (w->Hello(node)) {
        open.push_back(std::move(w));
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  EXPECT_TRUE(refused());
  EXPECT_TRUE(refused());
  for (auto& w : open) ExpectAlive(*w);  // the admitted ones are unaffected

  // The bare connection closes: its slot frees, and only that one.
  bare.reset();
  ASSERT_TRUE(admit(0x200)) << "no slot freed within 2 s of a close";
  EXPECT_TRUE(refused());
  // A session closes: the same.
  open.erase(open.begin());
  ASSERT_TRUE(admit(0x201)) << "no slot freed within 2 s of a close";
  EXPECT_TRUE(refused());
  for (auto& w : open) ExpectAlive(*w);

  // Refused attempts leaked nothing: with everyone gone, 3 fit again.
  open.clear();
  auto t0 = Clock::now();
  while (open.size() < 3 && MsSince(t0) < 2000) {
    auto w = std::make_unique<Wire>(port());
    if (w->Hello(0x300 + open.size())) open.push_back(std::move(w));
    else std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(open.size(), 3u);
  EXPECT_TRUE(refused());
  open.clear();
  // A replica syncs once the server has seen those closes (bounded wait).
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(dir_.File("after.db"), testing::FieldSalesSchema(), &r).ok());
  ASSERT_TRUE(r->Put("accounts", "after", {{"phone", "1"}}).ok());
  Status st;
  t0 = Clock::now();
  while (!(st = r->Sync(server().sync_options())).ok() && MsSince(t0) < 2000)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(testing::DumpText(*r), server().Dump());
}

// ---- handshake_timeout_ms -----------------------------------------------------------------

TEST_F(LimitsTest, HandshakeTimeoutDropsSilentAndSlowPeersCountedFromTheTcpAccept) {
  server::ServerOptions o;
  o.handshake_timeout_ms = 300;
  StartServer(o);
  Wire silent(port());      // connects, sends nothing
  Wire slowloris(port());   // half an HTTP request
  Wire no_hello(port());    // upgrades, never says hello
  Wire late_hello(port());  // upgrades at once, hello after the deadline
  Wire prompt(port());      // upgrade and hello in time
  ASSERT_TRUE(slowloris.SendRaw("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"));
  ASSERT_TRUE(no_hello.Upgrade());
  ASSERT_TRUE(late_hello.Upgrade());
  ASSERT_TRUE(prompt.Hello(kA));

  // Never upgraded: dropped at the deadline, and never upgraded.
  for (Wire* w : {&silent, &slowloris}) {
    std::string bytes;
    EXPECT_EQ(w->ReadAll(3000, &bytes), Wire::Io::kEof);
    EXPECT_EQ(bytes.find("HTTP/1.1 101"), std::string::npos) << Hex(bytes);
    EXPECT_GE(w->eof_ms, 250);
    EXPECT_LT(w->eof_ms, 2000);
  }

  // Upgraded but silent: close frame 1008 "hello timeout", no error message.
  std::vector<json> seen;
  EXPECT_TRUE(no_hello.WaitClosed(3000, &seen));
  EXPECT_TRUE(seen.empty());
  EXPECT_TRUE(no_hello.got_close);
  EXPECT_EQ(no_hello.close_code, 1008);
  EXPECT_EQ(no_hello.close_reason, "hello timeout");
  EXPECT_GE(no_hello.close_ms, 250);
  EXPECT_LT(no_hello.close_ms, 2000);

  // The deadline runs from the TCP accept, not from the upgrade.
  std::this_thread::sleep_for(std::chrono::milliseconds(900) - (Clock::now() - late_hello.start()));
  late_hello.Send({{"type", "hello"}, {"protocol", {1}}, {"node", ToHex(kB)}});
  json m;
  EXPECT_FALSE(late_hello.Receive(&m, 2000) && m.value("type", "") == "welcome") << m.dump();

  // The prompt peer outlived every deadline and still works.
  ExpectAlive(prompt);
  ExpectServerStillServes();
}

// When the handshake deadline passes before the WebSocket upgrade completes,
// the peer never got "101 Switching Protocols", so it must see the
// connection end and nothing else: no WebSocket close frame on a plain HTTP
// connection. (Which timer fires first, Beast's handshake timeout or the
// session's hello timer, is a race; five attempts make the bad order likely.)
TEST_F(LimitsTest, PeerThatNeverUpgradedGetsNoWebSocketFrame) {
  server::ServerOptions o;
  o.handshake_timeout_ms = 200;
  StartServer(o);
  for (int attempt = 0; attempt < 5; ++attempt) {
    Wire silent(port());
    std::string bytes;
    EXPECT_EQ(silent.ReadAll(3000, &bytes), Wire::Io::kEof);
    EXPECT_TRUE(bytes.empty()) << Hex(bytes);
  }
}

// ---- idle_timeout_ms ------------------------------------------------------------------------

TEST_F(LimitsTest, IdleTimeoutDropsAPeerThatNeverAnswersPingsAndKeepsOnesThatDo) {
  server::ServerOptions o;
  o.idle_timeout_ms = 400;  // a ping every 200 ms
  StartServer(o);
  Wire deaf(port()), ponger(port()), chatty(port());
  ASSERT_TRUE(deaf.Hello(kA));
  ponger.answer_pings = true;
  ASSERT_TRUE(ponger.Hello(kB));
  ASSERT_TRUE(chatty.Hello(0xc3));
  // The deaf peer gets something applied first: it must stay applied.
  ASSERT_TRUE(deaf.Send({{"type", "push"}, {"batch", 1},
                         {"changes", {Set("accounts", "deaf", "phone", "1", kA, MakeHlc(SystemMillis(), 1))}}}));
  ASSERT_EQ(ExpectReply(deaf, "ack")["applied"], 1);
  auto last_sent = Clock::now();

  // It now reads (TCP keeps flowing) but never answers a ping and sends
  // nothing: pinged, then dropped without a close frame within the timeout.
  bool deaf_dropped = false, ponger_alive = false;
  std::thread deaf_reader([&] { deaf_dropped = deaf.WaitClosed(3000); });
  // Meanwhile one peer only answers pings, another only sends requests.
  std::thread ponger_reader([&] { ponger_alive = ponger.StayFor(1200); });
  bool chatty_alive = true;
  for (int i = 0; i < 12 && chatty_alive; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    chatty_alive = chatty.Send({{"type", "pull"}, {"id", i}, {"cursor", 0}, {"limit", 1}});
    json m;
    chatty_alive = chatty_alive && chatty.Receive(&m, 1000) && m.value("type", "") == "changes";
  }
  deaf_reader.join();
  ponger_reader.join();
  EXPECT_TRUE(deaf_dropped);
  int64_t dropped_after = deaf.eof_ms - std::chrono::duration_cast<std::chrono::milliseconds>(last_sent - deaf.start()).count();
  EXPECT_GE(deaf.pings, 1);
  EXPECT_FALSE(deaf.got_close);
  EXPECT_GE(dropped_after, 200 - 20);  // not before half the idle time
  EXPECT_LE(dropped_after, 400 + 600);  // within the idle time (plus scheduling slack)

  EXPECT_TRUE(ponger_alive);
  EXPECT_GE(ponger.pings, 3);
  ExpectAlive(ponger);
  EXPECT_TRUE(chatty_alive);
  ExpectAlive(chatty);
  EXPECT_EQ(Head(), 1);
  EXPECT_NE(server().Dump().find("\"deaf\""), std::string::npos);
  ExpectServerStillServes();
}

// ---- max_errors_per_session -----------------------------------------------------------------

TEST_F(LimitsTest, ErrorBudgetClosesTheConnectionAtTheConfiguredCountAndRejectionsDoNotCount) {
  server::ServerOptions o;
  o.max_errors_per_session = 3;
  StartServer(o);
  uint64_t t = SystemMillis();
  for (int connection = 0; connection < 2; ++connection) {  // the budget is per connection
    SCOPED_TRACE(connection);
    Wire w(port());
    ASSERT_TRUE(w.Hello(kA));
    ASSERT_TRUE(w.Send({{"type", "nonsense"}}));
    ExpectError(w, "protocol_error");
    // Per-change rejections are not errors.
    json push = {{"type", "push"}, {"batch", 1},
                 {"changes", {Set("accounts", "e" + std::to_string(connection), "phone", "1", kA, MakeHlc(t, 2 * connection + 1)),
                              Set("accounts", "e", "channel", "kiosk", kA, MakeHlc(t, 2 * connection + 2))}}};
    ASSERT_TRUE(w.Send(push));
    json ack = ExpectReply(w, "ack");
    EXPECT_EQ(ack["applied"], 1);
    EXPECT_EQ(ack["rejected"].size(), 1u);
    ASSERT_TRUE(w.SendBinary(std::string("\x00{\"type\":", 9)));  // undecodable
    ExpectError(w, "corruption");
    ExpectAlive(w);
    ASSERT_TRUE(w.Send({{"type", "pull"}, {"id", 5}, {"cursor", -1}}));
    EXPECT_EQ(ExpectError(w, "protocol_error")["in_reply_to"], 5);
    // The 4th counted error is sent as fatal, then close 1008.
    ASSERT_TRUE(w.Send({{"type", "nonsense"}}));
    ExpectError(w, "protocol_error", /*fatal=*/true);
    EXPECT_TRUE(w.WaitClosed(2000));
    EXPECT_EQ(w.close_code, 1008);
    EXPECT_EQ(w.close_reason, "too many errors");
  }
  EXPECT_EQ(Head(), 2);  // the accepted changes stay; nothing else landed
  ExpectServerStillServes();
}

// ---- per-change limits (schema, clock) ------------------------------------------------------

TEST_F(LimitsTest, PerChangeLimitsRejectOnlyTheChangeOverTheBound) {
  StartServer({});
  Wire w(port());
  ASSERT_TRUE(w.Hello(kA));
  uint64_t t = SystemMillis();
  const std::string id64(64, 'r');
  const int64_t two53 = int64_t{1} << 53;
  json changes = {
      Set("accounts", "len", "postcode", std::string(16, '1'), kA, MakeHlc(t, 1)),   // max_length 16: fits
      Set("accounts", "len", "city", std::string(129, 'c'), kA, MakeHlc(t, 2)),      // max_length 128: over
      Set("accounts", id64, "phone", "1", kA, MakeHlc(t, 3)),                        // 64-char row id
      Set("accounts", id64 + "r", "phone", "1", kA, MakeHlc(t, 4)),                  // 65
      Inc("goods_loans", "g", "returned_qty", {two53, 0}, kA, MakeHlc(t, 5)),        // 2^53: fits
      Inc("goods_loans", "g", "returned_qty", {two53 + 2, 0}, kA, MakeHlc(t, 6)),    // over
      Set("accounts", "skew", "phone", "ok", kA, MakeHlc(t + 290'000, 0)),           // 4 min 50 s ahead
      Set("accounts", "skew", "city", "late", kA, MakeHlc(t + 310'000, 0)),          // 5 min 10 s ahead
      Set("accounts", "len", "notes", std::string(8193, 'n'), kA, MakeHlc(t, 7)),    // max_length 8192: over
  };
  ASSERT_TRUE(w.Send({{"type", "push"}, {"batch", 1}, {"changes", changes}}));
  json ack = ExpectReply(w, "ack");
  EXPECT_EQ(ack["applied"], 4);
  std::map<int, std::string> codes;
  for (const auto& r : ack["rejected"]) codes[r["i"].get<int>()] = r["code"].get<std::string>();
  EXPECT_EQ(codes, (std::map<int, std::string>{
                       {1, "schema_violation"}, {3, "invalid_argument"}, {5, "schema_violation"},
                       {7, "clock_skew"}, {8, "schema_violation"}}));
  std::string dump = server().Dump();
  EXPECT_NE(dump.find(std::string(16, '1')), std::string::npos);
  EXPECT_NE(dump.find(id64), std::string::npos);
  EXPECT_NE(dump.find("\"returned_qty\":" + std::to_string(two53)), std::string::npos) << dump;
  EXPECT_EQ(dump.find("late"), std::string::npos);
  EXPECT_EQ(dump.find("ccccc"), std::string::npos);

  // A set value written as a whole on a device holds at most 256 members:
  // the SDK refuses 257 and writes nothing; 256 sync.
  std::unique_ptr<Replica> r;
  ASSERT_TRUE(Replica::Open(dir_.File("tags.db"), testing::FieldSalesSchema(), &r).ok());
  json tags = json::array();
  for (int i = 0; i < 257; ++i) tags.push_back("t" + std::to_string(i));
  EXPECT_EQ(r->Put("accounts", "tagged", {{"tags", tags}}).code(), Code::kSchemaViolation);
  EXPECT_EQ(r->GetSyncStatus().pending, 0);
  tags.erase(tags.size() - 1);
  ASSERT_TRUE(r->Put("accounts", "tagged", {{"tags", tags}}).ok());
  ASSERT_TRUE(r->Sync(server().sync_options()).ok());
  EXPECT_EQ(testing::DumpText(*r), server().Dump());
  ExpectServerStillServes();
}

}  // namespace
}  // namespace fieldsync
