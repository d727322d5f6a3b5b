// The server's half of the protocol (docs/protocol.md) for one connection,
// without sockets: frames in, frames out. A Session (session.h) carries the
// frames over a Beast WebSocket; the deterministic simulator (tests/sim)
// carries them over a simulated network, so both run the same logic.
//
// Not thread-safe: the owner calls it from one strand (or one thread).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "server/hub.h"

namespace fieldsync::server {

// WebSocket close codes the conversation asks for (RFC 6455 section 7.4.1).
constexpr uint16_t kClosePolicy = 1008;

class Conversation {
 public:
  // What the connection does for the conversation.
  class Link {
   public:
    virtual ~Link() = default;
    // Queues one frame; `text` = send as a WebSocket text message (the
    // peer spoke plain JSON text, section 5.3).
    virtual void SendFrame(std::string frame, bool text) = 0;
    // Closes the connection once the frames already queued are out.
    virtual void CloseLink(uint16_t code, const std::string& reason) = 0;
    // True while a frame is still waiting to go out.
    virtual bool SendPending() const = 0;
    // Registers for Hub pokes; a poke must end in a call to Pump().
    virtual void SubscribeLive() = 0;
    // The subscriber SubscribeLive registers, not poked for our own pushes.
    virtual Subscriber* subscriber() { return nullptr; }
  };

  Conversation(Hub& hub, Link* link, uint64_t id) : hub_(hub), link_(link), id_(id) {}

  // One frame from the peer (`text`: it came as a text message, no flags
  // byte). Every error becomes an `error` message; nothing escapes.
  void OnFrame(const std::string& frame, bool text);
  // Sends the next batch of live changes, if subscribed and the link is idle.
  void Pump();
  // The authenticated user and device (from the handshake's token); none
  // on a server without authentication. Set before the first frame.
  void SetActor(store::Actor actor) { actor_ = std::move(actor); }
  // The connection is going away: send nothing more.
  void Stop() { closing_ = true; }

  bool hello_done() const { return hello_done_; }
  std::string Tag() const;

 private:
  // `changes`: the message's changes when the decoder read them straight
  // from the frame (DecodeChangesFrame); null when they are in `m`.
  void Dispatch(const json& m, std::vector<Change>* changes);
  void OnHello(const json& m);
  json Features() const;  // welcome.features: what this server honours
  void OnPush(const json& m, std::vector<Change>* changes);
  void OnPull(const json& m);
  void OnSubscribe(const json& m);
  void OnSnapshot(const json& m);
  void OnScopeAck(const json& m);
  // What this device may read now; `all` without authentication.
  Status CurrentScope(store::Scope* scope);
  // Re-reads the user: kUnauthenticated once they are deactivated.
  Status RefreshActor();
  // How the device's scope moved since it last confirmed one (scope_ack):
  // keys to load and keys to drop, each at most max_scope_keys.
  Status ScopeDiff(const store::Scope& now, json* diff);
  // The log no longer holds everything after `cursor`: answers a `changes`
  // message with `resync: true` (the reply to pull `id`, or live) and
  // returns true. Only a snapshot can bring the device up to date.
  bool ResyncIfCompacted(int64_t cursor, const json& id, bool live);
  // Send() of `envelope` with "changes" added, without a JSON tree per change.
  void SendChanges(const json& envelope, const std::vector<Change>& changes);
  void Send(const json& m);
  void SendError(const Status& st, bool fatal, const json& in_reply_to = nullptr);
  void Close(const std::string& reason);

  Hub& hub_;
  Link* link_;
  uint64_t id_;
  bool text_mode_ = false;  // peer speaks plain JSON text frames
  bool hello_done_ = false;
  // The last push handled (its batch id) and whether it was acknowledged; a
  // pipelined push names the one it follows (OnPush).
  json last_push_batch_;
  bool last_push_ok_ = false;
  bool closing_ = false;
  NodeId node_ = 0;
  std::optional<store::Actor> actor_;
  Encoding encoding_ = Encoding::kJson;
  bool live_ = false;
  int64_t live_cursor_ = 0;
  size_t errors_ = 0;
};

}  // namespace fieldsync::server
