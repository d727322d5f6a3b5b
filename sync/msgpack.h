// MessagePack building blocks of the protocol codec (sync/protocol.h): a
// bounded scan of untrusted bytes, a cursor that reads values exactly as
// nlohmann's from_msgpack types them, and writers that produce exactly the
// bytes nlohmann's to_msgpack writes. They let the codec read and write a
// list of changes without building a JSON tree per change, and the codec's
// tests hold them to nlohmann's bytes and values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace fieldsync::msgpack {

using json = nlohmann::json;

// nlohmann's MessagePack reader recurses once per nesting level, so a
// hostile frame of a million nested arrays would overflow the stack before
// any check on the parsed value. Within() reads only the headers, with an
// explicit stack, and says whether `b` is exactly one complete value that
// nests no deeper than `max_depth` (the top-level value is depth 1, as for
// JSON text). Everything below assumes input that passed it.
enum class Scan { kOk, kMalformed, kTooDeep };
Scan Within(std::string_view b, size_t max_depth);

// True when `s` is valid UTF-8 (no overlong forms, no surrogates).
// MessagePack strings are not checked by the reader; JSON text is. A bad
// string would make every later dump() throw.
bool ValidUtf8(std::string_view s);

// False when `j` holds what JSON cannot carry and MessagePack can: invalid
// UTF-8 (in a string or a key), binary values, NaN or infinities (JSON
// writes them as null, so two peers would disagree).
bool JsonCarries(const json& j);

// A cursor over bytes that passed Within(). Each read either consumes one
// whole value and returns true, or returns false and consumes nothing.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}

  bool AtEnd() const { return i_ == b_.size(); }
  size_t pos() const { return i_; }

  bool MapHeader(size_t* n);
  bool ArrayHeader(size_t* n);
  // A string value (not binary); the view points into the input.
  bool String(std::string_view* s);
  // Any one value, typed as from_msgpack types it (a positive fixint or
  // uint is number_unsigned, an int8-int64 number_integer even when not
  // negative, float32 widened to double); false when JsonCarries() would
  // refuse it.
  bool Value(json* j);
  // Steps over one value, whatever it is.
  bool Skip();

 private:
  std::string_view b_;
  size_t i_ = 0;
};

// Writers: each appends exactly what json::to_msgpack writes for the same
// value (shortest header, a non-negative signed integer in unsigned form, a
// double as float32 when that keeps it exactly).
void AppendMapHeader(size_t n, std::string* out);
void AppendArrayHeader(size_t n, std::string* out);
void AppendString(std::string_view s, std::string* out);
void AppendUnsigned(uint64_t v, std::string* out);
void AppendInteger(int64_t v, std::string* out);
void AppendValue(const json& j, std::string* out);

}  // namespace fieldsync::msgpack
