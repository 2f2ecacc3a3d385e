#include "self_test.h"

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http_response_parser.h"
#include "latency_histogram.h"
#include "request_source.h"

namespace persona::loadgen {
namespace {

int failures = 0;

void Expect(bool ok, const char* what, long long got = 0) {
  if (ok) return;
  ++failures;
  std::fprintf(stderr, "self-test FAILED: %s (got %lld)\n", what, got);
}

void HistogramPercentilesAreWithinOneTenthOfAPercent() {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v);
  const struct {
    double p;
    uint64_t exact;
  } cases[] = {{50, 50000}, {90, 90000}, {99, 99000}, {99.9, 99900}, {100, 100000}};
  for (const auto& c : cases) {
    const uint64_t got = h.Percentile(c.p);
    const double err = static_cast<double>(got > c.exact ? got - c.exact : c.exact - got);
    Expect(err <= c.exact * 0.001, "histogram percentile within 0.1%", static_cast<long long>(got));
  }
  Expect(h.max() == 100000 && h.min() == 1 && h.count() == 100000, "histogram min/max/count");
  LatencyHistogram small;
  small.Record(7);
  small.Record(1500);
  Expect(small.Percentile(50) == 7, "exact below 2048",
         static_cast<long long>(small.Percentile(50)));
  Expect(small.Percentile(100) == 1500, "p100 is the max");
  LatencyHistogram merged;
  merged.Merge(small);
  merged.Merge(h);
  Expect(merged.count() == 100002 && merged.max() == 100000, "merge adds counts");
  LatencyHistogram huge;
  huge.Record(uint64_t{1} << 40);  // past the last bucket: clamped, not out of bounds
  Expect(huge.Percentile(99) == uint64_t{1} << 40, "values past the range report the max");
}

// Feeds `response` in pieces of `step` bytes and returns the parser's final state.
HttpResponseParser FeedInSteps(std::string_view response, size_t step, bool eof = false) {
  HttpResponseParser p;
  p.Reset(/*head_request=*/false, /*keep_body=*/true);
  size_t pos = 0;
  while (pos < response.size() && p.state() == HttpResponseParser::State::kIncomplete) {
    const std::string_view piece = response.substr(pos, step);
    const size_t used = p.Feed(piece);
    if (used == 0) break;
    pos += used;
  }
  if (eof) p.FeedEof();
  return p;
}

void ParserFramesEveryEncodingAcrossSplits() {
  const std::string length_framed =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
      "11\r\n\r\n{\"a\":12345}";
  const std::string chunked =
      "HTTP/1.1 207 Multi-Status\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4;x=y\r\n{\"a\"\r\n7\r\n:12345}\r\n0\r\nTrailer: 1\r\n\r\n";
  const std::string close_framed = "HTTP/1.0 503 Unavailable\r\n\r\n{\"a\":12345}";
  for (size_t step = 1; step <= 80; ++step) {
    HttpResponseParser a = FeedInSteps(length_framed, step);
    Expect(a.state() == HttpResponseParser::State::kComplete && a.status() == 200 &&
               a.body() == "{\"a\":12345}" && a.keep_alive(),
           "content-length framing", static_cast<long long>(step));
    HttpResponseParser b = FeedInSteps(chunked, step);
    Expect(b.state() == HttpResponseParser::State::kComplete && b.status() == 207 &&
               b.body() == "{\"a\":12345}",
           "chunked framing", static_cast<long long>(step));
    HttpResponseParser c = FeedInSteps(close_framed, step, /*eof=*/true);
    Expect(c.state() == HttpResponseParser::State::kComplete && c.status() == 503 &&
               c.body() == "{\"a\":12345}" && !c.keep_alive(),
           "read-until-close framing", static_cast<long long>(step));
  }
  HttpResponseParser d =
      FeedInSteps("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 5);
  Expect(d.state() == HttpResponseParser::State::kComplete && !d.keep_alive(), "Connection: close");
  HttpResponseParser e = FeedInSteps("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 100, true);
  Expect(e.state() == HttpResponseParser::State::kError, "truncated body is an error");
  HttpResponseParser f = FeedInSteps("garbage\r\n\r\n", 3);
  Expect(f.state() == HttpResponseParser::State::kError, "garbage is an error");
  // Bytes after a complete response are left for the caller.
  HttpResponseParser g;
  g.Reset(false, false);
  const std::string two = length_framed + "HTTP/1.1 204 No Content\r\n\r\n";
  Expect(g.Feed(two) == length_framed.size(), "Feed stops at the end of one response");
}

void GeneratedEventsAreUniqueAndCounted() {
  RequestSettings settings;
  settings.host_header = "127.0.0.1:1";
  settings.user_count = 10;
  settings.run_id = 42;
  RequestTemplate t;
  t.method = "POST";
  t.path = "/v1/events";
  t.gen_events = 50;
  t.content_type = "application/json";
  RequestSource source(settings, {t}, 3, 1);
  std::string first, second;
  uint64_t events = 0;
  source.Next(&first, &events);
  Expect(events == 50, "events per generated request", static_cast<long long>(events));
  source.Next(&second, &events);
  const std::string_view body = std::string_view(first).substr(first.find("\r\n\r\n") + 4);
  Expect(CountBodyEvents(body) == 50, "CountBodyEvents of a generated array",
         static_cast<long long>(CountBodyEvents(body)));
  Expect(first.find("\"event_id\":\"lg-42-3-0\"") != std::string::npos &&
             second.find("\"event_id\":\"lg-42-3-50\"") != std::string::npos,
         "event ids continue across requests");
  Expect(first.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos,
         "Content-Length matches the body");

  RequestTemplate get;
  get.path = "/v1/users/{user}/profile";
  settings.users = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"a b/é"});
  RequestSource reads(settings, {get}, 0, 1);
  std::string req;
  reads.Next(&req, &events);
  Expect(req.rfind("GET /v1/users/a%20b%2F%C3%A9/profile HTTP/1.1\r\n", 0) == 0,
         "user ids are percent-encoded in paths");
  Expect(CountBodyEvents("{\"a\":1}\n\n{\"a\":2}\n") == 2, "NDJSON lines counted");
  Expect(CountBodyEvents("[{\"x\":\"[{\"},{\"y\":[{}]}]") == 2, "nested objects not counted");
}

}  // namespace

int RunSelfTest() {
  HistogramPercentilesAreWithinOneTenthOfAPercent();
  ParserFramesEveryEncodingAcrossSplits();
  GeneratedEventsAreUniqueAndCounted();
  if (failures == 0) std::printf("persona_loadgen self-test: ok\n");
  return failures == 0 ? 0 : 1;
}

}  // namespace persona::loadgen
