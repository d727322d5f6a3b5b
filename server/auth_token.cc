#include "server/auth_token.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace fieldsync::server {

using json = nlohmann::json;

namespace {

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string B64UrlEncode(const std::string& in) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kB64[(v >> k) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
  }
  return out;  // unpadded, as JWS wants
}

bool B64UrlDecode(const std::string& in, std::string* out) {
  out->clear();
  if (in.size() % 4 == 1) return false;
  uint32_t v = 0;
  int bits = 0;
  for (char ch : in) {
    const char* p = std::strchr(kB64, ch);
    if (!p || ch == '\0') return false;
    v = (v << 6) | static_cast<uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((v >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero: one token has one spelling.
  return (v & ((1u << bits) - 1)) == 0;
}

std::string Hmac(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

Status Denied(const std::string& why) { return Status(Code::kUnauthenticated, "token " + why); }

}  // namespace

Status IssueToken(const std::string& key, TokenClaims claims, std::string* token) {
  if (key.size() < kMinTokenKeyBytes)
    return Status::InvalidArgument("the signing key must be at least " + std::to_string(kMinTokenKeyBytes) + " bytes");
  if (claims.user.empty() || claims.device.empty()) return Status::InvalidArgument("a token needs a user and a device");
  if (claims.expires_s <= claims.issued_s) return Status::InvalidArgument("a token must expire after it is issued");
  if (claims.id.empty()) {
    unsigned char r[12];
    if (RAND_bytes(r, sizeof r) != 1) return Status::IoError("no randomness for a token id");
    static const char* hex = "0123456789abcdef";
    for (unsigned char b : r) {
      claims.id += hex[b >> 4];
      claims.id += hex[b & 15];
    }
  }
  json header = {{"alg", "HS256"}, {"typ", "JWT"}};
  json body = {{"sub", claims.user}, {"dev", claims.device}, {"jti", claims.id},
               {"iat", claims.issued_s}, {"exp", claims.expires_s}};
  std::string signing = B64UrlEncode(header.dump()) + "." + B64UrlEncode(body.dump());
  *token = signing + "." + B64UrlEncode(Hmac(key, signing));
  if (token->size() > kMaxTokenBytes) return Status::Limit("token longer than " + std::to_string(kMaxTokenBytes));
  return Status::OK();
}

Status VerifyToken(const std::string& key, const std::string& token, uint64_t now_s, TokenClaims* out) {
  if (token.empty()) return Denied("missing");
  if (token.size() > kMaxTokenBytes) return Denied("too long");
  size_t a = token.find('.');
  size_t b = a == std::string::npos ? a : token.find('.', a + 1);
  if (b == std::string::npos || token.find('.', b + 1) != std::string::npos)
    return Denied("malformed: not header.payload.signature");
  std::string header_text, body_text, sig;
  if (!B64UrlDecode(token.substr(0, a), &header_text) || !B64UrlDecode(token.substr(a + 1, b - a - 1), &body_text) ||
      !B64UrlDecode(token.substr(b + 1), &sig))
    return Denied("malformed: bad base64url");
  // The signature first: nothing of an unsigned payload is trusted, and the
  // header's own "alg" is never what picks the check ("alg": "none" attacks).
  std::string expect = Hmac(key, token.substr(0, b));
  if (sig.size() != expect.size() || CRYPTO_memcmp(sig.data(), expect.data(), expect.size()) != 0)
    return Denied("has a bad signature");
  json header = json::parse(header_text, nullptr, false);
  json body = json::parse(body_text, nullptr, false);
  if (!header.is_object() || header.value("alg", "") != "HS256") return Denied("algorithm is not HS256");
  if (!body.is_object()) return Denied("malformed: payload is not an object");
  auto str = [&](const char* k) { return body.contains(k) && body[k].is_string() ? body[k].get<std::string>() : ""; };
  auto num = [&](const char* k) -> uint64_t {
    return body.contains(k) && body[k].is_number_unsigned() ? body[k].get<uint64_t>() : 0;
  };
  TokenClaims c{str("sub"), str("dev"), str("jti"), num("iat"), num("exp")};
  if (c.user.empty() || c.device.empty() || c.expires_s == 0) return Denied("malformed: needs sub, dev and exp");
  if (now_s >= c.expires_s) return Denied("expired at " + std::to_string(c.expires_s) + " (now " + std::to_string(now_s) + ")");
  *out = std::move(c);
  return Status::OK();
}

Status ReadKeyFile(const std::string& path, std::string* key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read key file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string k = ss.str();
  while (!k.empty() && (k.back() == '\n' || k.back() == '\r')) k.pop_back();
  if (k.size() < kMinTokenKeyBytes)
    return Status::InvalidArgument("key file " + path + " holds " + std::to_string(k.size()) + " bytes; at least " +
                                   std::to_string(kMinTokenKeyBytes) + " are needed (e.g. openssl rand -hex 32)");
  *key = std::move(k);
  return Status::OK();
}

}  // namespace fieldsync::server
