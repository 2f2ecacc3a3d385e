#include "serve/json_response.h"

#include "common/json_writer.h"

namespace persona::serve {

HttpResponse JsonError(int status, std::string_view error, std::string_view detail,
                       std::string_view field) {
  JsonWriter w;
  w.BeginObject();
  w.Key("error").String(error);
  w.Key("detail").String(detail);
  if (!field.empty()) w.Key("field").String(field);
  w.EndObject();
  HttpResponse r;
  r.status = status;
  r.body = w.Take();
  return r;
}

HttpResponse JsonOk(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// Maps an engine status to the HTTP answer a client can act on.
HttpResponse StatusError(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return JsonError(400, "invalid_argument", std::string(s.message()));
    case absl::StatusCode::kNotFound:
      return JsonError(404, "not_found", std::string(s.message()));
    case absl::StatusCode::kAlreadyExists:
      return JsonError(409, "already_exists", std::string(s.message()));
    case absl::StatusCode::kResourceExhausted: {
      HttpResponse r = JsonError(429, "overloaded", std::string(s.message()));
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnavailable: {
      HttpResponse r = JsonError(503, "unavailable", std::string(s.message()));
      r.headers.emplace_back("Retry-After", "5");
      return r;
    }
    default: {
      HttpResponse r = JsonError(503, "unavailable", "storage error: " + std::string(s.message()));
      r.headers.emplace_back("Retry-After", "5");
      return r;
    }
  }
}
}  // namespace persona::serve
