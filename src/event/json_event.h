// The native JSON event format: one object per event, with the field names of Event (event_id,
// user_id, type, ts, item_id, category_id, category_path, brand, price, quantity, order_id, query,
// rating, text, session_id, device, rec_id, attrs). Parsed with simdjson's DOM API, which
// validates the whole document before any field is read (json_event.cc explains the choice).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/json_writer.h"
#include "event/event.h"
#include "event/validate.h"

namespace persona {

// One input record that did not become an event, reported against what the client sent.
struct EventIssue {
  // 0-based record index for HTTP bodies; 1-based physical line number for files.
  uint64_t index_or_line = 0;
  std::string field;  // empty for whole-record problems (malformed JSON, wrong column count)
  std::string rule;   // reads after the field name: "price" "must be a number >= 0 for purchase"
  std::string raw;    // the offending record text, at most kMaxIssueRawBytes
};

inline constexpr size_t kMaxIssueRawBytes = 4096;

// Builds an issue from a rejection. `raw` is truncated to kMaxIssueRawBytes, backing off to a
// UTF-8 character boundary so that the dead-letter text stays valid UTF-8.
EventIssue MakeEventIssue(uint64_t index_or_line, Rejection why, std::string_view raw);

// Decodes the text form of `ts` shared by the JSON and CSV formats: decimal epoch milliseconds
// ("1572566400000") or an ISO-8601 time (see ParseIsoTime). nullopt when it is neither.
std::optional<int64_t> ParseEventTimeText(std::string_view text);

// Parsers store this for a type name that did not parse, so that ValidateEvent reports the
// problem with the same rule text for every format.
inline constexpr EventType kUnknownEventType = static_cast<EventType>(0xff);

// Parses native JSON events. Holds a reusable simdjson parser and scratch buffer, so keep one per
// thread and reuse it: construction is cheap, the first large document allocates. Not
// thread-safe.
class JsonEventParser {
 public:
  // `strict` rejects objects with fields outside the native set (rule "unknown field"); otherwise
  // unknown fields are ignored.
  explicit JsonEventParser(const ValidationLimits& limits = ValidationLimits(),
                           bool strict = false);
  ~JsonEventParser();
  JsonEventParser(JsonEventParser&&) noexcept;
  JsonEventParser& operator=(JsonEventParser&&) noexcept;

  // Decodes one JSON object into *out, copying its strings (escapes resolved) into batch->arena,
  // then sets quantity to 1 when absent, sets id_hash and runs ValidateEvent with
  // batch->price_optional. Returns nullopt when *out is a valid event, else the first problem
  // (field "" for malformed JSON). JSON null counts as absent. Does not append to batch->events.
  std::optional<Rejection> ParseEvent(std::string_view json_object_text, EventBatch* batch,
                                      Event* out);

  // Parses an HTTP body holding ONE object, a JSON array of objects, or NDJSON (one object per
  // line; blank lines skipped). Valid events are appended to out->events with their 0-based record
  // index in out->source_index; invalid records are appended to *issues. Returns InvalidArgument
  // only when the body as a whole is unusable (empty, a malformed array or one-line object, top
  // level neither object nor array); then nothing is appended. A multi-line body that is not one
  // valid object is read as NDJSON, so its bad lines become issues.
  absl::Status ParseBody(std::string_view body, EventBatch* out, std::vector<EventIssue>* issues);

  // Checks that `text` is one JSON object and returns it re-serialised compactly in `arena` (the
  // form attrs_json takes from every parser); nullopt when it is not an object or not JSON.
  std::optional<std::string_view> CompactJsonObject(std::string_view text, StringArena* arena);

  // Changes the settings, keeping the parser's warm buffers.
  void Reset(const ValidationLimits& limits, bool strict);
  const ValidationLimits& limits() const;
  bool strict() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ParseBody with a per-thread parser, for callers that do not keep one.
absl::Status ParseJsonBody(std::string_view body, const ValidationLimits& limits, bool strict,
                           EventBatch* out, std::vector<EventIssue>* issues);

// The "user_id" string of a JSON object's text, "" when the text is not an object or has no string
// user_id. Lets a rejected record's dead letter be found (and erased) by user.
std::string UserIdOfJsonRecord(std::string_view json_object_text);

// Writes `e` as a native JSON object: only present fields (non-empty strings, price unless NaN,
// quantity and rating unless 0), ts as an epoch-ms integer, attrs inserted as raw JSON. Parsing
// the output with JsonEventParser gives back an equal event.
void WriteEventJson(JsonWriter& w, const Event& e);

}  // namespace persona
