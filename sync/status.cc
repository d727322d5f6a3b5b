#include "sync/status.h"

namespace fieldsync {

namespace {
struct Entry { Code code; const char* name; };
constexpr Entry kNames[] = {
    {Code::kOk, "ok"},
    {Code::kInvalidArgument, "invalid_argument"},
    {Code::kNotFound, "not_found"},
    {Code::kSchemaViolation, "schema_violation"},
    {Code::kCorruption, "corruption"},
    {Code::kIoError, "io_error"},
    {Code::kProtocolError, "protocol_error"},
    {Code::kLimitExceeded, "limit_exceeded"},
    {Code::kClockSkew, "clock_skew"},
    {Code::kUnsupported, "unsupported"},
    {Code::kBusy, "busy"},
    {Code::kClosed, "closed"},
    {Code::kPermissionDenied, "permission_denied"},
    {Code::kDeleted, "deleted"},
    {Code::kUnauthenticated, "unauthenticated"},
    {Code::kFrozen, "frozen"},
};
}  // namespace

const char* CodeName(Code c) {
  for (const auto& e : kNames)
    if (e.code == c) return e.name;
  return "unknown";
}

Code CodeFromName(std::string_view name) {
  for (const auto& e : kNames)
    if (name == e.name) return e.code;
  return Code::kProtocolError;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + msg_;
}

}  // namespace fieldsync
