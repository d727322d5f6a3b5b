// The admin HTTP API (docs/admin-api.md): JSON over HTTP on the sync port,
// for supervisors and admins. Every request carries a bearer token like a
// device's; a supervisor sees and changes their team only, an admin
// everything, a rep nothing here (reps use the sync protocol). Writes go
// through the same checks as a device's push (ServerStore::WriteAs), so the
// API can do nothing a supervisor's tablet could not.
//
// No sockets here: the session (session.cc) reads the request and writes
// the response; Handle is a pure function of the request and the Hub.
#pragma once

#include <boost/beast/http.hpp>

#include "server/hub.h"

namespace fieldsync::server {

using AdminRequest = boost::beast::http::request<boost::beast::http::string_body>;
using AdminResponse = boost::beast::http::response<boost::beast::http::string_body>;

// Requests whose target starts with this go to the admin API.
constexpr const char* kAdminPrefix = "/api/";
// The largest request body the API reads (a user, a decision, a token
// request are all far smaller); a larger one gets 413.
constexpr size_t kAdminMaxBodyBytes = 64 * 1024;

class AdminApi {
 public:
  explicit AdminApi(Hub& hub) : hub_(hub) {}
  // Answers one request; never throws. Errors are {"code", "message"}
  // with an HTTP status that says which kind (400, 401, 403, 404, 405,
  // 409, 413, 503).
  AdminResponse Handle(const AdminRequest& req);

 private:
  Hub& hub_;
};

}  // namespace fieldsync::server
