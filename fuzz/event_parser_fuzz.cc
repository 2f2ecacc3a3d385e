// libFuzzer target for the event parsers that face untrusted input: the HTTP body parser
// (ParseJsonBody, strict and lenient) and the file readers of `persona import` (every InputFormat
// through EventReader::OpenText). Beyond "no crash, no sanitizer report", it checks the parsers'
// contracts, and aborts (a libFuzzer crash) when one does not hold:
//   - every accepted event passes ValidateEvent with the batch's price_optional;
//   - events and source_index stay parallel; HTTP record indices of events and issues together are
//     exactly 0..n-1 (each record is an event or an issue, never both, never skipped); file line
//     numbers lie within the lines read and never go backwards;
//   - a record accepted in strict mode is accepted, as an equal event, in lenient mode;
//   - a failed ParseBody appends nothing; every issue has a rule, a field that is empty (a
//     whole-record problem) or a column the format knows, and raw text within kMaxIssueRawBytes;
//   - WriteEventJson of an accepted event re-parses (strict) to an equal event, id_hash included,
//     whenever the event's strings are valid UTF-8 (see CheckRoundTrip for why that condition).
//
// Build with -DPERSONA_FUZZ_SKIP_KNOWN to steer around findings already reported, so that a run
// can look for new ones before those are fixed (none are open now).
//
// Input layout: byte 0 selects the file format (low 3 bits: jsonl, csv, taobao, rees46,
// retailrocket, sequence) and the reader's chunk size (high bits: 0 = one block, else 1..31-byte
// reads that split lines); the rest is both the HTTP body and the file text.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_writer.h"
#include "event/csv_formats.h"
#include "event/event.h"
#include "event/event_fields.h"
#include "event/event_reader.h"
#include "event/json_event.h"
#include "event/validate.h"

namespace persona {
namespace {

[[noreturn]] void Fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "event_parser_fuzz: invariant violated: %s\n", what);
  if (!detail.empty()) {
    std::fprintf(stderr, "  detail: %.*s\n", static_cast<int>(detail.size()), detail.data());
  }
  std::abort();
}

#define FUZZ_CHECK(cond, ...)                            \
  do {                                                   \
    if (!(cond)) Fail(#cond __VA_OPT__(, ) __VA_ARGS__); \
  } while (0)

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += len;
  }
  return true;
}

template <typename Fn>
void ForEachStringField(const Event& e, Fn&& fn) {
  fn("event_id", e.event_id);
  fn("user_id", e.user_id);
  fn("item_id", e.item_id);
  fn("category_id", e.category_id);
  fn("category_path", e.category_path);
  fn("brand", e.brand);
  fn("order_id", e.order_id);
  fn("query", e.query);
  fn("text", e.text);
  fn("session_id", e.session_id);
  fn("device", e.device);
  fn("rec_id", e.rec_id);
  fn("attrs", e.attrs_json);
}

// Field-by-field equality; NaN prices (absent) are equal to each other.
std::string DescribeDifference(const Event& a, const Event& b) {
  std::string diff;
  auto note = [&](std::string_view name) {
    if (!diff.empty()) diff += ",";
    diff += name;
  };
  for (const EventFieldSpec& spec : kEventFields) {
    if (spec.member != nullptr && a.*(spec.member) != b.*(spec.member)) note(spec.name);
  }
  if (a.type != b.type) note("type");
  if (a.ts_ms != b.ts_ms) note("ts");
  const bool same_price = (std::isnan(a.price) && std::isnan(b.price)) || a.price == b.price;
  if (!same_price) note("price");
  if (a.quantity != b.quantity) note("quantity");
  if (a.rating != b.rating) note("rating");
  if (a.id_hash != b.id_hash) note("id_hash");
  return diff;
}

// WriteEventJson promises that its output parses back to an equal event. JSON strings must be
// UTF-8, and the JSON parser (simdjson) rejects anything else, while the CSV dialects copy cell
// bytes as they are; so an event from a file whose strings are not UTF-8 cannot survive the trip,
// and only events with UTF-8 strings are held to it.
void CheckRoundTrip(const Event& e, bool price_optional, const ValidationLimits& limits,
                    JsonEventParser* strict_parser) {
  bool utf8 = true;
  ForEachStringField(e,
                     [&](std::string_view, std::string_view v) { utf8 = utf8 && IsValidUtf8(v); });
  if (!utf8) return;
  JsonWriter w;
  WriteEventJson(w, e);
  // The re-parsed strings go to a batch shared by many round trips: a fresh batch per event
  // would allocate a 256 KiB arena block each time, the largest cost of this target.
  static std::unique_ptr<EventBatch> scratch;
  static int uses = 0;
  if (scratch == nullptr || ++uses == 1000) {
    scratch = std::make_unique<EventBatch>();
    uses = 0;
  }
  scratch->price_optional = price_optional;
  Event back;
  strict_parser->Reset(limits, /*strict=*/true);
  if (auto why = strict_parser->ParseEvent(w.str(), scratch.get(), &back)) {
    Fail("WriteEventJson output re-parses", w.str() + "  -> " + why->field + " " + why->rule);
  }
  const std::string diff = DescribeDifference(e, back);
  if (!diff.empty()) Fail("round trip gives an equal event", "differs in " + diff + ": " + w.str());
}

void CheckAcceptedEvent(const Event& e, bool price_optional, const ValidationLimits& limits,
                        JsonEventParser* strict_parser) {
  if (auto why = ValidateEvent(e, limits, price_optional)) {
    Fail("accepted event passes ValidateEvent", why->field + " " + why->rule);
  }
  CheckRoundTrip(e, price_optional, limits, strict_parser);
}

bool IsNativeField(std::string_view name) { return FindEventField(name) != nullptr; }

// Columns the dataset dialects name in their issues (their own header names).
bool IsDialectColumn(std::string_view name) {
  static constexpr std::string_view kColumns[] = {
      "behavior",  "timestamp", "event_time", "event_type",    "product_id",  "category_code",
      "visitorid", "event",     "itemid",     "transactionid", "user_session"};
  for (std::string_view c : kColumns) {
    if (c == name) return true;
  }
  return false;
}

void CheckIssueShape(const EventIssue& issue, bool strict) {
  FUZZ_CHECK(!issue.rule.empty(), issue.field);
  FUZZ_CHECK(issue.raw.size() <= kMaxIssueRawBytes);
  if (issue.field.empty()) return;
  // Strict mode reports the unknown key itself, whatever the client called it.
  if (strict && issue.rule == "unknown field") return;
  FUZZ_CHECK(IsNativeField(issue.field) || IsDialectColumn(issue.field),
             issue.field + ": " + issue.rule);
}

void FuzzJsonBody(std::string_view body, bool strict, JsonEventParser* strict_parser,
                  EventBatch* out) {
  const ValidationLimits limits;
  EventBatch& batch = *out;
  std::vector<EventIssue> issues;
  const absl::Status status = ParseJsonBody(body, limits, strict, &batch, &issues);
  FUZZ_CHECK(batch.events.size() == batch.source_index.size());
  if (!status.ok()) {
    FUZZ_CHECK(batch.events.empty() && issues.empty(), status.ToString());
    FUZZ_CHECK(!status.message().empty());
    return;
  }
  const size_t records = batch.events.size() + issues.size();
  FUZZ_CHECK(records > 0 || body.find('[') != std::string_view::npos);  // only "[]" is empty
  std::vector<uint8_t> seen(records, 0);
  for (uint32_t i : batch.source_index) {
    FUZZ_CHECK(i < records, "event index out of range");
    FUZZ_CHECK(seen[i]++ == 0, "record index given twice");
  }
  for (const EventIssue& issue : issues) {
    FUZZ_CHECK(issue.index_or_line < records, "issue index out of range");
    FUZZ_CHECK(seen[issue.index_or_line]++ == 0, "record index given twice");
    CheckIssueShape(issue, strict);
  }
  for (size_t i = 1; i < batch.source_index.size(); ++i) {
    FUZZ_CHECK(batch.source_index[i - 1] < batch.source_index[i], "events out of record order");
  }
  for (const Event& e : batch.events) {
    CheckAcceptedEvent(e, batch.price_optional, limits, strict_parser);
  }
}

void FuzzFile(InputFormat format, size_t chunk_bytes, std::string_view text,
              JsonEventParser* strict_parser) {
  const ValidationLimits limits;
  EventReaderOptions options;
  options.chunk_bytes = chunk_bytes;
  auto reader = EventReader::OpenText(std::string(text), format, limits, options);
  if (!reader.ok()) {
    // Only a header can be refused up front.
    FUZZ_CHECK(LineDecoder(format, limits).has_header(), reader.status().ToString());
    return;
  }
  EventBatch batch;
  std::vector<EventIssue> issues;
  uint64_t last_line = 0;
  size_t issues_checked = 0;
  // Every Next consumes at least one line or one block, so the calls are bounded by the size.
  size_t calls_left = text.size() + 8;
  while ((*reader)->Next(/*max_events=*/1 + text.size() % 7, &batch, &issues)) {
    FUZZ_CHECK(calls_left-- > 0, "EventReader::Next does not make progress");
    FUZZ_CHECK(batch.events.size() == batch.source_index.size());
    FUZZ_CHECK(batch.price_optional == InputFormatLacksPrice(format));
    const uint64_t lines = (*reader)->lines_read();
    for (uint32_t line : batch.source_index) {
      FUZZ_CHECK(line >= 1 && line <= lines, "event line out of range");
      FUZZ_CHECK(line >= last_line, "event lines go backwards");
      last_line = line;
    }
    for (; issues_checked < issues.size(); ++issues_checked) {
      const EventIssue& issue = issues[issues_checked];
      FUZZ_CHECK(issue.index_or_line >= 1 && issue.index_or_line <= lines,
                 "issue line out of range");
      CheckIssueShape(issue, /*strict=*/false);
    }
    for (const Event& e : batch.events) {
      CheckAcceptedEvent(e, batch.price_optional, limits, strict_parser);
    }
  }
  FUZZ_CHECK((*reader)->status().ok(), (*reader)->status().ToString());
  FUZZ_CHECK(batch.events.empty());
  FUZZ_CHECK((*reader)->bytes_read() == (*reader)->file_size(), "input not fully consumed");
}

}  // namespace
}  // namespace persona

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace persona;
  // Larger inputs only slow the search down; the callers bound sizes (HTTP body limit, reader
  // line limit).
  if (size == 0 || size > (1 << 20)) return 0;
  static JsonEventParser strict_parser;
  static constexpr InputFormat kFormats[] = {InputFormat::kJsonl,        InputFormat::kCsv,
                                             InputFormat::kTaobao,       InputFormat::kRees46,
                                             InputFormat::kRetailRocket, InputFormat::kSequence};
  const uint8_t selector = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  EventBatch lenient, strict;
  FuzzJsonBody(text, /*strict=*/false, &strict_parser, &lenient);
  FuzzJsonBody(text, /*strict=*/true, &strict_parser, &strict);
  // Strictness only adds a rule: a record strict mode accepts, lenient mode accepts as the same
  // event.
  size_t j = 0;
  for (size_t i = 0; i < strict.events.size(); ++i) {
    while (j < lenient.events.size() && lenient.source_index[j] < strict.source_index[i]) ++j;
    FUZZ_CHECK(j < lenient.events.size() && lenient.source_index[j] == strict.source_index[i],
               "a record strict mode accepts is accepted in lenient mode");
    const std::string diff = DescribeDifference(strict.events[i], lenient.events[j]);
    FUZZ_CHECK(diff.empty(), "strict and lenient parse a record alike: " + diff);
  }
  const InputFormat format = kFormats[(selector & 7) % 6];
  // High bits 0 = one block for everything; otherwise blocks of 1..31 bytes.
  const size_t chunk_bytes = (selector >> 3) == 0 ? (64 << 10) : (selector >> 3);
  FuzzFile(format, chunk_bytes, text, &strict_parser);
  return 0;
}
