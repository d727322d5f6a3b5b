// The wire protocol codec: message framing, compression and the JSON form of
// changes. No sockets here; server/ and client-sdk/ move the bytes.
// docs/protocol.md is the normative description; keep the two in step.
//
// A frame is one binary WebSocket message:
//   byte 0   flags: bits 0-1 encoding (0 = JSON text, 1 = MessagePack),
//            bit 4 set = the payload is one zstd frame (with content size)
//   byte 1.. payload: one message object, {"type": "...", ...}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sync/change.h"
#include "sync/merge.h"
#include "sync/status.h"

namespace fieldsync {

using json = nlohmann::json;

constexpr int kProtocolVersion = 1;

enum class Encoding : uint8_t { kJson = 0, kMsgPack = 1 };
const char* EncodingName(Encoding e);  // "json", "msgpack"
bool ParseEncoding(const std::string& s, Encoding* e);

// Limits on everything a peer controls. Defaults are documented in
// docs/protocol.md ("Limits"); the server announces its values in `welcome`.
struct Limits {
  size_t max_frame_bytes = 4u << 20;          // one WebSocket message
  size_t max_decompressed_bytes = 16u << 20;  // a frame's payload after zstd
  size_t max_changes_per_push = 5000;         // changes in one push
  size_t max_changes_per_pull = 5000;         // changes in one `changes` reply
  size_t max_json_depth = 32;                 // nesting depth of a message
  size_t max_scope_keys = 5000;               // keys in one scope diff, snapshot or scope_ack
};

// Payloads smaller than this are sent uncompressed: zstd's frame header
// costs more than it saves on a ping-sized message.
constexpr size_t kCompressThreshold = 256;

// Encodes `msg` into a frame, zstd-compressing when it pays. When
// `payload_bytes` is given it receives the payload's size before
// compression: what a peer weighs against max_decompressed_bytes.
std::string EncodeFrame(const json& msg, Encoding enc, bool compress = true, size_t* payload_bytes = nullptr);

// Decodes a frame. Refuses (nothing decoded) frames over max_frame_bytes,
// zstd frames whose declared size exceeds max_decompressed_bytes (checked
// before inflating: a zstd bomb is never expanded), corrupt data, nesting
// deeper than max_json_depth, and payloads that are not a JSON object with a
// string "type".
Status DecodeFrame(std::string_view frame, const Limits& limits, json* msg);

// The size of a frame's payload before compression, read from its header
// (zstd frames declare it); 0 for an empty or malformed frame. What the
// bytes on the wire would have been without compression.
size_t FramePayloadBytes(std::string_view frame);

// True when JSON text nests no deeper than `max_depth` (the top-level value
// is depth 1), judged by a scan before any parsing: a short text of a
// million brackets would otherwise exhaust the parser. Malformed text may
// pass; the parser refuses it.
bool JsonDepthWithin(std::string_view text, size_t max_depth);

// The JSON form of a change (short keys; see docs/protocol.md "Change").
json ChangeToJson(const Change& c);
// Exactly the bytes of ChangeToJson(c).dump(), written without building the
// tree: the server's log and the device's outbox store a change as this
// text, and building and freeing the tree was a fifth of a push's CPU. Like
// dump(), throws json::type_error on a string that is not valid UTF-8.
std::string ChangeToJsonText(const Change& c);
// Structural decoding only (types and presence of fields); schema checks are
// ValidateChange's job. kProtocolError on failure.
Status ChangeFromJson(const json& j, Change* c);

// Messages that carry a list of changes (`push`, `changes`), written and read
// without a JSON tree per change: building, walking and freeing those trees
// was a third of a push's CPU on the server and most of the allocator's work
// on both sides.
//
// EncodeChangesFrame gives exactly the frame EncodeFrame gives for
// `envelope` with "changes": [ChangeToJson(c), ...] added (any "changes"
// the envelope holds is replaced), byte for byte, in either encoding.
std::string EncodeChangesFrame(const json& envelope, const std::vector<Change>& changes, Encoding enc,
                               bool compress = true, size_t* payload_bytes = nullptr);
// DecodeFrame for a frame that may carry changes. When the payload is
// MessagePack and its `changes` is an array of changes ChangeFromJson would
// take, they come out in *changes, read straight from the bytes, *msg holds
// the rest of the message and *taken is true. Otherwise *taken is false and
// the status and *msg are exactly DecodeFrame's: the caller reads
// (*msg)["changes"] itself, with its own errors.
Status DecodeChangesFrame(std::string_view frame, const Limits& limits, json* msg, std::vector<Change>* changes,
                          bool* taken);

// The JSON form of a row's state in a `snapshot` message (docs/protocol.md
// "Snapshot"). `compact` (what a client asks for with "compact": true) gives
// the row one stamp and each field only its offset from it: per-field hex
// stamps were two thirds of a bootstrap's bytes. RowStateFromJson reads both
// forms and checks structure only, like ChangeFromJson; the receiver checks
// values against its schema. An mv field's single write, which a replica
// keeps as no state (IsSpelledOutSingleWrite in merge.h), goes spelled out
// when `schema` says the column is mv (readers before 2026-12-07 need it);
// the decoder gives it back as no state.
json RowStateToJson(const RowState& r, bool compact = false, const Schema* schema = nullptr);
Status RowStateFromJson(const json& j, RowState* r);

// A snapshot page's rows as column-major blocks (docs/protocol.md 6.6,
// "Column-major blocks"): consecutive rows of one table with the same
// columns share one block, with each column's values and hlc offsets side
// by side, which is what zstd packs best. SnapshotBlocksFromJson gives
// back the same rows in the same order, or kProtocolError (and leaves
// `rows` untouched) when any block breaks the format's rules; like
// RowStateFromJson it checks structure, not the schema. `schema`, as in
// RowStateToJson, lists mv columns whose single writes have no state in `m`.
json SnapshotBlocksToJson(const std::vector<RowState>& rows, const Schema* schema = nullptr);
Status SnapshotBlocksFromJson(const json& blocks, std::vector<RowState>* rows);

// Message types.
namespace msg {
constexpr const char* kHello = "hello";
constexpr const char* kWelcome = "welcome";
constexpr const char* kPush = "push";
constexpr const char* kAck = "ack";
constexpr const char* kPull = "pull";
constexpr const char* kChanges = "changes";
constexpr const char* kSubscribe = "subscribe";
constexpr const char* kSnapshot = "snapshot";
constexpr const char* kScopeAck = "scope_ack";
constexpr const char* kError = "error";
}  // namespace msg

// {"type":"error","code":...,"message":...,"fatal":...}
json ErrorMessage(const Status& st, bool fatal);

}  // namespace fieldsync
