// The JSON answers every route shares: errors as {error, detail, field?} with the status a client
// can act on, and a JSON body with a status.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "serve/http_server.h"

namespace persona::serve {

// {"error": error, "detail": detail, "field": field (when not empty)} with `status`.
HttpResponse JsonError(int status, std::string_view error, std::string_view detail,
                       std::string_view field = {});
// `body` (already JSON) with `status`.
HttpResponse JsonOk(int status, std::string body);
// Maps an engine status to the HTTP answer a client can act on: InvalidArgument 400, NotFound
// 404, AlreadyExists 409, ResourceExhausted 429 (Retry-After), FailedPrecondition/Unavailable 503
// (Retry-After), anything else 503 "storage error".
HttpResponse StatusError(const absl::Status& s);

}  // namespace persona::serve
