// RequestSource: turns a request template into the bytes of successive HTTP/1.1 requests.
//
//   --path '/v1/users/{user}/profile'   {user} cycles (randomly) through the user ids
//   --body-file FILE                    the same body every time, sent as is
//   --gen-events N                      a fresh JSON array of N events per request, with unique
//                                       event_ids so that the server's de-duplication keeps them
//
// One RequestSource per load-generator thread (it holds a random generator and counters).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace persona::loadgen {

struct RequestTemplate {
  std::string name = "default";  // "read"/"write" in mixed mode, for the per-template report
  std::string method = "GET";
  std::string path = "/";    // may contain {user}
  std::string body;          // fixed body (from --body-file); empty = none
  std::string content_type;  // for requests with a body
  uint32_t gen_events = 0;   // > 0: generated event arrays instead of `body`
  uint32_t weight = 1;       // relative share in mixed mode
  uint64_t body_events = 0;  // events in the fixed body (for events/s), counted at load
};

// Settings every template shares.
struct RequestSettings {
  std::string host_header;                                // "127.0.0.1:8080"
  std::vector<std::string> extra_headers;                 // "X-Api-Key: ..." lines without CRLF
  std::shared_ptr<const std::vector<std::string>> users;  // ids for {user} and generated events
  uint64_t user_count = 1000;  // used when `users` is empty: u0..u{count-1}
  uint64_t run_id = 0;         // makes generated event ids unique across runs
};

// Counts the events of a JSON or NDJSON body: the elements of a top-level array, or the
// non-blank lines of NDJSON / a single object. Approximate for malformed input.
uint64_t CountBodyEvents(std::string_view body);

class RequestSource {
 public:
  RequestSource(const RequestSettings& settings, std::vector<RequestTemplate> templates,
                uint32_t thread_index, uint64_t seed);

  // Appends the next request to *out (chooses a template by weight) and returns the index of the
  // template used; *events receives the number of events in its body.
  size_t Next(std::string* out, uint64_t* events);

  const std::vector<RequestTemplate>& templates() const { return templates_; }

 private:
  uint64_t Random();
  std::string_view PickUser(std::string* scratch);
  void AppendPath(const std::string& path, std::string* out);
  void AppendGeneratedEvents(uint32_t count, std::string* out);

  const RequestSettings& settings_;
  std::vector<RequestTemplate> templates_;
  uint32_t total_weight_ = 0;
  uint32_t thread_index_;
  uint64_t rng_;
  uint64_t next_event_ = 0;
  int64_t last_ts_ms_ = 0;
  std::string body_;  // scratch for generated bodies
};

}  // namespace persona::loadgen
