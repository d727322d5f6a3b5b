#include "bench/load_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "sync/protocol.h"

namespace fieldsync::bench {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

class Fleet;

// One device's connection: a chain of async steps, each on the fleet's
// single thread (so no strand is needed).
class Device : public std::enable_shared_from_this<Device> {
 public:
  Device(Fleet* fleet, const LoadDevice* spec, DeviceResult* res, net::io_context& ioc)
      : fleet_(fleet), spec_(spec), res_(res), ws_(ioc) {}

  void Connect(const tcp::endpoint& ep, const std::string& fingerprint);
  void Push();
  void Idle();
  void ReadForever();
  void Close() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

 private:
  void Send(const json& m, std::function<void()> next);
  void SendFrame(std::string frame, size_t payload, std::function<void()> next);
  void Read(std::function<void(json&)> next);
  void Pull();
  void Fail(const std::string& what);

  Fleet* fleet_;
  const LoadDevice* spec_;
  DeviceResult* res_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer in_;
  std::string out_;
  Encoding enc_ = Encoding::kJson;
  int64_t cursor_ = 0;
  Clock::time_point t0_;
  bool done_ = false;
};

class Fleet {
 public:
  Fleet(const std::string& host, uint16_t port, std::string fingerprint, std::vector<LoadDevice> devices,
        int parallel, bool idle, double pushes_per_s = 0)
      : ep_(net::ip::make_address(host), port), fingerprint_(std::move(fingerprint)), specs_(std::move(devices)),
        results_(specs_.size()), parallel_(std::max(1, parallel)), idle_(idle), pushes_per_s_(pushes_per_s) {}

  // Starts the first handshakes; the rest follow as those finish.
  void Start() {
    for (size_t i = 0; i < specs_.size(); ++i)
      devices_.push_back(std::make_shared<Device>(this, &specs_[i], &results_[i], ioc_));
    for (int k = 0; k < parallel_; ++k) ConnectNext();
  }

  void OnConnected(bool ok) {
    ++connected_or_failed_;
    if (ok) ++connected_;
    if (connected_or_failed_ == devices_.size()) {
      if (!idle_ && pushes_per_s_ <= 0) {
        // Everyone is in: all push at once.
        for (size_t i = 0; i < devices_.size(); ++i)
          if (results_[i].error.empty()) devices_[i]->Push();
      } else if (!idle_) {
        paced_from_ = Clock::now();
        PushNext();
      }
      all_connected_ = true;
    } else {
      ConnectNext();
    }
  }
  bool idle() const { return idle_; }

  net::io_context& ioc() { return ioc_; }
  Clock::time_point start() const { return start_; }
  std::vector<DeviceResult>& results() { return results_; }
  bool all_connected() const { return all_connected_; }
  size_t connected() const { return connected_; }
  std::vector<std::shared_ptr<Device>>& devices() { return devices_; }

 private:
  void ConnectNext() {
    if (next_ < devices_.size()) devices_[next_++]->Connect(ep_, fingerprint_);
  }

  // Paced arrivals: device k pushes at paced_from_ + k / pushes_per_s_,
  // on a schedule that does not drift with the handlers' own time.
  void PushNext() {
    size_t k = next_push_++;
    if (k >= devices_.size()) return;
    if (results_[k].error.empty()) devices_[k]->Push();
    if (next_push_ >= devices_.size()) return;
    pace_.expires_at(paced_from_ + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(next_push_ / pushes_per_s_)));
    pace_.async_wait([this](beast::error_code ec) {
      if (!ec) PushNext();
    });
  }

  net::io_context ioc_;
  tcp::endpoint ep_;
  std::string fingerprint_;
  std::vector<LoadDevice> specs_;
  std::vector<DeviceResult> results_;
  std::vector<std::shared_ptr<Device>> devices_;
  int parallel_;
  bool idle_;
  double pushes_per_s_;
  net::steady_timer pace_{ioc_};
  Clock::time_point paced_from_;
  size_t next_push_ = 0;
  size_t next_ = 0, connected_or_failed_ = 0;
  std::atomic<size_t> connected_{0};  // read by IdleFleet's caller
  std::atomic<bool> all_connected_{false};
  Clock::time_point start_ = Clock::now();
};

void Device::Fail(const std::string& what) {
  if (done_) return;
  done_ = true;
  res_->error = what;
  Close();
}

void Device::Send(const json& m, std::function<void()> next) {
  size_t payload = 0;
  std::string frame = EncodeFrame(m, enc_, true, &payload);
  SendFrame(std::move(frame), payload, std::move(next));
}

void Device::SendFrame(std::string frame, size_t payload, std::function<void()> next) {
  out_ = std::move(frame);
  res_->bytes_up += static_cast<int64_t>(out_.size());
  res_->payload_up += static_cast<int64_t>(payload);
  ws_.async_write(net::buffer(out_), [self = shared_from_this(), next](beast::error_code ec, size_t) {
    if (ec) return self->Fail("write: " + ec.message());
    next();
  });
}

void Device::Read(std::function<void(json&)> next) {
  in_.clear();
  ws_.async_read(in_, [self = shared_from_this(), next](beast::error_code ec, size_t n) {
    if (ec) return self->Fail("read: " + ec.message());
    std::string_view frame(static_cast<const char*>(self->in_.cdata().data()), n);
    self->res_->bytes_down += static_cast<int64_t>(n);
    self->res_->payload_down += static_cast<int64_t>(FramePayloadBytes(frame));
    json m;
    Status st = DecodeFrame(frame, Limits{}, &m);
    if (!st.ok()) return self->Fail("decode: " + st.ToString());
    if (m["type"] == msg::kError) return self->Fail("server error: " + m.value("message", std::string()));
    next(m);
  });
}

void Device::Connect(const tcp::endpoint& ep, const std::string& fingerprint) {
  t0_ = Clock::now();
  auto self = shared_from_this();
  beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(60));
  beast::get_lowest_layer(ws_).async_connect(ep, [self, ep, fingerprint](beast::error_code ec) {
    if (ec) {
      self->Fail("connect: " + ec.message());
      return self->fleet_->OnConnected(false);
    }
    beast::get_lowest_layer(self->ws_).expires_never();
    self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    std::string auth = "Bearer " + self->spec_->token;
    self->ws_.set_option(websocket::stream_base::decorator(
        [auth](websocket::request_type& req) { req.set(beast::http::field::authorization, auth); }));
    self->ws_.binary(true);
    self->ws_.async_handshake("127.0.0.1:" + std::to_string(ep.port()), "/", [self, fingerprint](beast::error_code ec) {
      if (ec) {
        self->Fail("handshake: " + ec.message());
        return self->fleet_->OnConnected(false);
      }
      json hello = {{"type", msg::kHello}, {"protocol", json::array({kProtocolVersion})},
                    {"node", ToHex(self->spec_->node)}, {"client", "fieldsync-load/1"},
                    {"schema", fingerprint}, {"cursor", self->spec_->pull_from},
                    {"encodings", json::array({"msgpack", "json"})}, {"pending", self->spec_->push_changes}};
      self->Send(hello, [self] {
        self->Read([self](json& welcome) {
          if (welcome["type"] != msg::kWelcome) {
            self->Fail("expected welcome");
            return self->fleet_->OnConnected(false);
          }
          Encoding enc;
          if (ParseEncoding(welcome.value("encoding", "json"), &enc)) self->enc_ = enc;
          if (self->enc_ != Encoding::kMsgPack) {
            self->Fail("the server did not pick MessagePack; the push frames are encoded in it");
            return self->fleet_->OnConnected(false);
          }
          self->res_->connect_ms = Ms(self->t0_, Clock::now());
          self->fleet_->OnConnected(true);
          if (self->fleet_->idle()) self->Idle();
        });
      });
    });
  });
}

void Device::Push() {
  auto self = shared_from_this();
  t0_ = Clock::now();
  res_->push_sent_at_ms = Ms(fleet_->start(), t0_);
  SendFrame(spec_->push_frame, spec_->push_payload, [self] {
    self->Read([self](json& ack) {
      if (ack["type"] != msg::kAck) return self->Fail("expected ack, got " + ack["type"].get<std::string>());
      auto now = Clock::now();
      self->res_->push_rtt_ms = Ms(self->t0_, now);
      self->res_->acked_at_ms = Ms(self->fleet_->start(), now);
      self->res_->applied = ack.value("applied", 0);
      if (!ack["rejected"].empty()) return self->Fail("rejected: " + ack["rejected"][0].dump());
      self->cursor_ = self->spec_->pull_from;
      self->Pull();
    });
  });
}

void Device::Pull() {
  auto self = shared_from_this();
  Send({{"type", msg::kPull}, {"id", 1}, {"cursor", cursor_}}, [self] {
    self->Read([self](json& reply) {
      if (reply["type"] != msg::kChanges) return self->Fail("expected changes");
      for (const auto& c : reply["changes"]) {
        ++self->res_->received;
        self->res_->received_rows.push_back(c.value("t", std::string()) + "/" + c.value("r", std::string()));
      }
      self->cursor_ = reply.value("cursor", self->cursor_);
      if (reply.value("more", false)) return self->Pull();
      self->res_->sync_ms = Ms(self->t0_, Clock::now());
      self->done_ = true;
      self->Close();
    });
  });
}

void Device::Idle() {
  auto self = shared_from_this();
  Send({{"type", msg::kSubscribe}, {"cursor", spec_->pull_from}}, [self] { self->ReadForever(); });
}

void Device::ReadForever() {
  // Live mode: a read stays pending (it also answers the server's pings).
  auto self = shared_from_this();
  Read([self](json&) { self->ReadForever(); });
}

}  // namespace

std::string EncodePush(const std::vector<Change>& changes, size_t* payload_bytes) {
  json arr = json::array();
  for (const Change& c : changes) arr.push_back(ChangeToJson(c));
  return EncodeFrame({{"type", msg::kPush}, {"batch", 1}, {"changes", std::move(arr)}}, Encoding::kMsgPack, true,
                     payload_bytes);
}

Status RunSalesForce(const std::string& host, uint16_t port, const std::string& schema_fingerprint,
                     std::vector<LoadDevice> devices, int parallel_connects, double pushes_per_s,
                     std::vector<DeviceResult>* results) {
  Fleet fleet(host, port, schema_fingerprint, std::move(devices), parallel_connects, false, pushes_per_s);
  fleet.Start();
  fleet.ioc().run();
  *results = std::move(fleet.results());
  return Status::OK();
}

struct IdleFleet::Impl {
  std::unique_ptr<Fleet> fleet;
  std::thread thread;
  std::unique_ptr<net::executor_work_guard<net::io_context::executor_type>> work;
};

IdleFleet::IdleFleet(const std::string& host, uint16_t port, const std::string& schema_fingerprint,
                     std::vector<LoadDevice> devices, int parallel_connects)
    : impl_(std::make_unique<Impl>()) {
  impl_->fleet = std::make_unique<Fleet>(host, port, schema_fingerprint, std::move(devices), parallel_connects, true);
  impl_->work = std::make_unique<net::executor_work_guard<net::io_context::executor_type>>(
      impl_->fleet->ioc().get_executor());
  impl_->fleet->Start();
  impl_->thread = std::thread([this] { impl_->fleet->ioc().run(); });
}

IdleFleet::~IdleFleet() {
  net::post(impl_->fleet->ioc(), [this] {
    for (auto& d : impl_->fleet->devices()) d->Close();
  });
  impl_->work.reset();
  impl_->thread.join();
}

size_t IdleFleet::Connected(std::string* first_error) {
  while (!impl_->fleet->all_connected()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (const auto& r : impl_->fleet->results())
    if (!r.error.empty()) {
      *first_error = r.error;
      break;
    }
  return impl_->fleet->connected();
}

}  // namespace fieldsync::bench
