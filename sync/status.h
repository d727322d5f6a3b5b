// Status: the error-as-value type used across FieldSync (after LevelDB's).
// A Status is either OK or carries a code and a human-readable message.
// Codes are stable: they travel on the wire (docs/protocol.md, "Error codes")
// and through the C API, so never renumber them.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace fieldsync {

enum class Code : int {
  kOk = 0,
  kInvalidArgument = 1,   // caller passed something malformed
  kNotFound = 2,          // table/row/column does not exist
  kSchemaViolation = 3,   // value does not fit the schema (type, enum, policy)
  kCorruption = 4,        // stored or received bytes cannot be decoded
  kIoError = 5,           // SQLite / filesystem / socket failure
  kProtocolError = 6,     // peer broke the wire protocol
  kLimitExceeded = 7,     // a size or count limit was crossed
  kClockSkew = 8,         // a peer clock is beyond the documented bound
  kUnsupported = 9,       // e.g. protocol version the peer does not speak
  kBusy = 10,             // resource in use (e.g. sync already running)
  kClosed = 11,           // handle or connection already closed
  kPermissionDenied = 12, // authenticated, but not allowed (scope, role, reference table)
  kDeleted = 13,          // row has a tombstone
  kUnauthenticated = 14,  // no valid credentials: missing, expired, forged or revoked token
  kFrozen = 15,           // the record was submitted: it changes only as a new revision
};

// Stable lower_snake names for codes; used on the wire and in logs.
const char* CodeName(Code c);
// Inverse of CodeName; unknown names map to kProtocolError.
Code CodeFromName(std::string_view name);

class Status {
 public:
  Status() = default;
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}

  static Status OK() { return {}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Schema(std::string m) { return {Code::kSchemaViolation, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status Protocol(std::string m) { return {Code::kProtocolError, std::move(m)}; }
  static Status Limit(std::string m) { return {Code::kLimitExceeded, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  // "code_name: message", or "ok".
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string msg_;
};

}  // namespace fieldsync
