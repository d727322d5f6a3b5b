// Bearer tokens: JSON Web Tokens signed with HMAC-SHA256 (RFC 7519, "HS256").
// The server issues them (CLI `fieldsync token issue`, the admin API) with a
// key from its configuration and checks them at every WebSocket handshake
// (docs/security.md). Pure functions over OpenSSL; no I/O.
#pragma once

#include <cstdint>
#include <string>

#include "sync/status.h"

namespace fieldsync::server {

// Keys shorter than this are refused: HS256 wants at least the hash size.
constexpr size_t kMinTokenKeyBytes = 32;
constexpr size_t kMaxTokenBytes = 4096;

struct TokenClaims {
  std::string user;    // "sub": a user id (fs_users)
  std::string device;  // "dev": the device the token was issued for
  std::string id;      // "jti": the token's own id, for revocation
  uint64_t issued_s = 0;   // "iat", seconds since the epoch
  uint64_t expires_s = 0;  // "exp"
};

// Signs `claims` with `key`. An empty claims.id gets a random one.
// kInvalidArgument for a short key, an empty user or device, or exp <= iat.
Status IssueToken(const std::string& key, TokenClaims claims, std::string* token);

// Checks the signature (constant-time), the algorithm, the shape and the
// expiry against `now_s`. Errors are kUnauthenticated with a message that
// says which check failed ("expired", "bad signature", ...); `out` is set
// only on success.
Status VerifyToken(const std::string& key, const std::string& token, uint64_t now_s, TokenClaims* out);

// Reads a key file: its bytes, trailing newlines removed. Too short a key
// is an error, so no server runs with a guessable one.
Status ReadKeyFile(const std::string& path, std::string* key);

}  // namespace fieldsync::server
