#include "event/csv_formats.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/hash.h"
#include "common/time_util.h"
#include "event/event_fields.h"

namespace persona {
namespace {

constexpr std::string_view kRees46Header =
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session";
constexpr std::string_view kRetailRocketHeader = "timestamp,visitorid,event,itemid,transactionid";
// Sequence files carry order only; items get synthetic times one hour apart from here.
constexpr int64_t kSequenceBaseMs = 1577836800000LL;  // 2020-01-01T00:00:00Z


Rejection Reject(std::string_view field, std::string rule) {
  return Rejection{std::string(field), std::move(rule)};
}

// Splits on `sep` with no quoting into out[0..N) and returns the number of fields found, which
// may exceed N (the caller reports a wrong column count). The taobao hot path: no allocation.
template <size_t N>
size_t SplitPlain(std::string_view line, char sep, std::string_view (&out)[N]) {
  size_t count = 0;
  const char* p = line.data();
  const char* const end = p + line.size();
  while (true) {
    const char* hit = static_cast<const char*>(std::memchr(p, sep, end - p));
    const char* field_end = hit ? hit : end;
    if (count < N) out[count] = std::string_view(p, field_end - p);
    ++count;
    if (!hit) return count;
    p = hit + 1;
  }
}

// Non-negative decimal integer of at most 18 digits (no overflow possible).
bool ParseDigits(std::string_view s, int64_t* v) {
  if (s.empty() || s.size() > 18) return false;
  int64_t x = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    x = x * 10 + (c - '0');
  }
  *v = x;
  return true;
}

bool ParseInteger(std::string_view s, int64_t* v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// A finite decimal number; "nan" and "inf" are refused because NaN is how an Event says "absent".
bool ParseFiniteDouble(std::string_view s, double* v) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(*v);
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string ColumnCountRule(size_t expected, size_t found) {
  return "expected " + std::to_string(expected) + " columns, found " + std::to_string(found);
}

}  // namespace

std::optional<InputFormat> ParseInputFormat(std::string_view name) {
  if (name == "jsonl") return InputFormat::kJsonl;
  if (name == "csv") return InputFormat::kCsv;
  if (name == "taobao") return InputFormat::kTaobao;
  if (name == "rees46") return InputFormat::kRees46;
  if (name == "retailrocket") return InputFormat::kRetailRocket;
  if (name == "sequence") return InputFormat::kSequence;
  return std::nullopt;
}

std::string_view InputFormatName(InputFormat format) {
  switch (format) {
    case InputFormat::kJsonl:
      return "jsonl";
    case InputFormat::kCsv:
      return "csv";
    case InputFormat::kTaobao:
      return "taobao";
    case InputFormat::kRees46:
      return "rees46";
    case InputFormat::kRetailRocket:
      return "retailrocket";
    case InputFormat::kSequence:
      return "sequence";
  }
  return "unknown";
}

bool InputFormatLacksPrice(InputFormat format) {
  return format == InputFormat::kTaobao || format == InputFormat::kRetailRocket ||
         format == InputFormat::kSequence;
}

bool SplitCsvRecord(std::string_view line, StringArena* arena,
                    std::vector<std::string_view>* fields) {
  fields->clear();
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    if (i < n && line[i] == '"') {
      // Quoted field: find the closing quote, counting "" escapes to size the unescaped copy.
      const size_t start = i + 1;
      size_t j = start;
      size_t escapes = 0;
      while (true) {
        if (j >= n) return false;  // unterminated
        if (line[j] == '"') {
          if (j + 1 < n && line[j + 1] == '"') {
            ++escapes;
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      const std::string_view quoted = line.substr(start, j - start);
      if (escapes == 0) {
        fields->push_back(quoted);
      } else {
        char* dst = arena->Allocate(quoted.size() - escapes);
        size_t w = 0;
        for (size_t k = 0; k < quoted.size(); ++k) {
          dst[w++] = quoted[k];
          if (quoted[k] == '"') ++k;  // skip the second quote of the pair
        }
        fields->push_back(std::string_view(dst, w));
      }
      i = j + 1;
      if (i == n) return true;
      if (line[i] != ',') return false;  // text after the closing quote
      ++i;
    } else {
      const size_t comma = line.find(',', i);
      if (comma == std::string_view::npos) {
        fields->push_back(line.substr(i));
        return true;
      }
      fields->push_back(line.substr(i, comma - i));
      i = comma + 1;
    }
  }
}

LineDecoder::LineDecoder(InputFormat format, const ValidationLimits& limits)
    : format_(format), limits_(limits), json_(limits, /*strict=*/false) {}

bool LineDecoder::has_header() const {
  return format_ == InputFormat::kCsv || format_ == InputFormat::kRees46 ||
         format_ == InputFormat::kRetailRocket;
}

absl::Status LineDecoder::ReadHeader(std::string_view line) {
  const std::string found(line.substr(0, 200));
  switch (format_) {
    case InputFormat::kRees46:
      if (line != kRees46Header) {
        return absl::InvalidArgumentError("rees46 header must be '" + std::string(kRees46Header) +
                                          "', found '" + found + "'");
      }
      return absl::OkStatus();
    case InputFormat::kRetailRocket:
      if (line != kRetailRocketHeader) {
        return absl::InvalidArgumentError("retailrocket header must be '" +
                                          std::string(kRetailRocketHeader) + "', found '" + found +
                                          "'");
      }
      return absl::OkStatus();
    case InputFormat::kCsv: {
      StringArena scratch;
      if (!SplitCsvRecord(line, &scratch, &fields_)) {
        return absl::InvalidArgumentError("malformed CSV header: unterminated quote");
      }
      csv_columns_.clear();
      bool seen[kEventFieldCount] = {};
      for (std::string_view raw_name : fields_) {
        const std::string_view name = TrimSpaces(raw_name);
        const EventFieldSpec* spec = FindEventField(name);
        if (spec == nullptr) {
          return absl::InvalidArgumentError("unknown column '" + std::string(name) + "' in header");
        }
        if (seen[static_cast<int>(spec->field)]) {
          return absl::InvalidArgumentError("duplicate column '" + std::string(name) +
                                            "' in header");
        }
        const int column = static_cast<int>(spec->field);
        seen[column] = true;
        csv_columns_.push_back(column);
      }
      for (EventField required : {EventField::kUserId, EventField::kType, EventField::kTs}) {
        if (!seen[static_cast<int>(required)]) {
          return absl::InvalidArgumentError("missing column '" +
                                            std::string(kEventFields[static_cast<int>(required)].name) +
                                            "' in header");
        }
      }
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

size_t LineDecoder::DecodeLine(std::string_view line, uint64_t line_number, EventBatch* batch,
                               std::vector<EventIssue>* issues) {
  switch (format_) {
    case InputFormat::kTaobao:
      return DecodeTaobao(line, line_number, batch, issues);
    case InputFormat::kRees46:
      return DecodeRees46(line, line_number, batch, issues);
    case InputFormat::kRetailRocket:
      return DecodeRetailRocket(line, line_number, batch, issues);
    case InputFormat::kSequence:
      return DecodeSequence(line, line_number, batch, issues);
    case InputFormat::kCsv:
      return DecodeCsv(line, line_number, batch, issues);
    case InputFormat::kJsonl:
      return DecodeJson(line, line_number, batch, issues);
  }
  return 0;
}

size_t LineDecoder::Finish(Event& e, std::string_view line, uint64_t line_number, EventBatch* batch,
                           std::vector<EventIssue>* issues) {
  if (e.quantity == 0) e.quantity = 1;
  e.id_hash = e.event_id.empty() ? DeriveEventHash(e) : Hash64(e.event_id);
  if (auto why = ValidateEvent(e, limits_, batch->price_optional)) {
    issues->push_back(MakeEventIssue(line_number, std::move(*why), line));
    return 0;
  }
  batch->events.push_back(e);
  batch->source_index.push_back(static_cast<uint32_t>(line_number));
  return 1;
}

size_t LineDecoder::DecodeTaobao(std::string_view line, uint64_t line_number, EventBatch* batch,
                                 std::vector<EventIssue>* issues) {
  // user_id,item_id,category_id,behavior,timestamp_seconds
  std::string_view f[5];
  const size_t count = SplitPlain(line, ',', f);
  if (count != 5) {
    issues->push_back(MakeEventIssue(line_number, Reject("", ColumnCountRule(5, count)), line));
    return 0;
  }
  Event e;
  const std::string_view behavior = f[3];
  if (behavior == "pv") {
    e.type = EventType::kView;
  } else if (behavior == "cart") {
    e.type = EventType::kCart;
  } else if (behavior == "fav") {
    e.type = EventType::kFav;
  } else if (behavior == "buy") {
    e.type = EventType::kPurchase;
  } else {
    issues->push_back(
        MakeEventIssue(line_number, Reject("behavior", "must be pv, cart, fav or buy"), line));
    return 0;
  }
  int64_t seconds = 0;
  // 10^14 s is ~3 million years: anything larger would overflow milliseconds (found by fuzzing).
  if (!ParseDigits(f[4], &seconds) || seconds > 100000000000000) {
    issues->push_back(MakeEventIssue(
        line_number, Reject("timestamp", "must be an integer number of seconds"), line));
    return 0;
  }
  e.user_id = f[0];
  e.item_id = f[1];
  e.category_id = f[2];
  e.ts_ms = seconds * kSecondMs;
  return Finish(e, line, line_number, batch, issues);
}

size_t LineDecoder::DecodeRees46(std::string_view line, uint64_t line_number, EventBatch* batch,
                                 std::vector<EventIssue>* issues) {
  // event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
  auto issue = [&](std::string_view field, std::string rule) {
    issues->push_back(MakeEventIssue(line_number, Reject(field, std::move(rule)), line));
    return 0;
  };
  if (!SplitCsvRecord(line, &batch->arena, &fields_)) return issue("", "unterminated quote");
  if (fields_.size() != 9) return issue("", ColumnCountRule(9, fields_.size()));
  const std::vector<std::string_view>& f = fields_;
  Event e;
  const std::optional<int64_t> ts = ParseIsoTime(f[0]);
  if (!ts) return issue("event_time", "must be a time like 2019-10-01 00:00:00 UTC");
  e.ts_ms = *ts;
  if (f[1] == "view") {
    e.type = EventType::kView;
  } else if (f[1] == "cart") {
    e.type = EventType::kCart;
  } else if (f[1] == "remove_from_cart") {
    e.type = EventType::kRemoveCart;
  } else if (f[1] == "purchase") {
    e.type = EventType::kPurchase;
  } else {
    return issue("event_type", "must be view, cart, remove_from_cart or purchase");
  }
  e.item_id = f[2];
  e.category_id = f[3];
  e.category_path = f[4];
  e.brand = f[5];
  if (!f[6].empty() && !ParseFiniteDouble(f[6], &e.price))
    return issue("price", "must be a number");
  e.user_id = f[7];
  e.session_id = f[8];
  return Finish(e, line, line_number, batch, issues);
}

size_t LineDecoder::DecodeRetailRocket(std::string_view line, uint64_t line_number,
                                       EventBatch* batch, std::vector<EventIssue>* issues) {
  // timestamp,visitorid,event,itemid,transactionid
  auto issue = [&](std::string_view field, std::string rule) {
    issues->push_back(MakeEventIssue(line_number, Reject(field, std::move(rule)), line));
    return 0;
  };
  if (!SplitCsvRecord(line, &batch->arena, &fields_)) return issue("", "unterminated quote");
  if (fields_.size() != 5) return issue("", ColumnCountRule(5, fields_.size()));
  const std::vector<std::string_view>& f = fields_;
  Event e;
  if (!ParseDigits(f[0], &e.ts_ms)) {
    return issue("timestamp", "must be an integer number of milliseconds");
  }
  if (f[2] == "view") {
    e.type = EventType::kView;
  } else if (f[2] == "addtocart") {
    e.type = EventType::kCart;
  } else if (f[2] == "transaction") {
    e.type = EventType::kPurchase;
  } else {
    return issue("event", "must be view, addtocart or transaction");
  }
  e.user_id = f[1];
  e.item_id = f[3];
  e.order_id = f[4];
  return Finish(e, line, line_number, batch, issues);
}

size_t LineDecoder::DecodeSequence(std::string_view line, uint64_t line_number, EventBatch* batch,
                                   std::vector<EventIssue>* issues) {
  // `user item` or `user item1 item2 ...`, separated by spaces or tabs. Both forms advance the
  // same per-user position, so a file may mix them.
  auto next_token = [&line]() {
    size_t start = 0;
    while (start < line.size() && (line[start] == ' ' || line[start] == '\t')) ++start;
    size_t end = start;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t') ++end;
    const std::string_view token = line.substr(start, end - start);
    line.remove_prefix(end);
    return token;
  };
  const std::string_view full_line = line;
  const std::string_view user = next_token();
  std::string_view item = next_token();
  if (item.empty()) {
    issues->push_back(MakeEventIssue(
        line_number, Reject("", "expected 'user item' or 'user item1 item2 ...'"), full_line));
    return 0;
  }
  const uint32_t code = sequence_users_.Intern(user);
  if (code >= sequence_next_item_.size()) sequence_next_item_.resize(code + 1, 0);
  size_t added = 0;
  for (; !item.empty(); item = next_token()) {
    Event e;
    e.user_id = user;
    e.item_id = item;
    e.type = EventType::kView;
    e.ts_ms = kSequenceBaseMs + static_cast<int64_t>(sequence_next_item_[code]++) * kHourMs;
    added += Finish(e, full_line, line_number, batch, issues);
  }
  return added;
}

size_t LineDecoder::DecodeCsv(std::string_view line, uint64_t line_number, EventBatch* batch,
                              std::vector<EventIssue>* issues) {
  auto issue = [&](std::string_view field, std::string rule) {
    issues->push_back(MakeEventIssue(line_number, Reject(field, std::move(rule)), line));
    return 0;
  };
  if (!SplitCsvRecord(line, &batch->arena, &fields_)) return issue("", "unterminated quote");
  if (fields_.size() != csv_columns_.size()) {
    return issue("", ColumnCountRule(csv_columns_.size(), fields_.size()));
  }
  Event e;
  bool has_type = false;
  bool has_ts = false;
  for (size_t i = 0; i < fields_.size(); ++i) {
    const std::string_view value = fields_[i];
    if (value.empty()) continue;  // an empty cell is an absent field
    const EventField column = static_cast<EventField>(csv_columns_[i]);
    int64_t number = 0;
    switch (column) {
      case EventField::kType:
        e.type = ParseEventType(value).value_or(kUnknownEventType);
        has_type = true;
        break;
      case EventField::kTs: {
        const std::optional<int64_t> ts = ParseEventTimeText(value);
        if (!ts)
          return issue("ts", "must be epoch milliseconds (an integer) or an ISO-8601 string");
        e.ts_ms = *ts;
        has_ts = true;
        break;
      }
      case EventField::kPrice:
        if (!ParseFiniteDouble(value, &e.price)) return issue("price", "must be a number");
        break;
      case EventField::kQuantity:
        if (!ParseInteger(value, &number) || number < 1) {
          return issue("quantity", "must be an integer >= 1");
        }
        if (number > std::numeric_limits<int32_t>::max()) {
          return issue("quantity", "must be an integer <= 2147483647");
        }
        e.quantity = static_cast<int32_t>(number);
        break;
      case EventField::kRating:
        if (!ParseInteger(value, &number) || number < 1 || number > 5) {
          return issue("rating", "must be an integer 1..5");
        }
        e.rating = static_cast<int8_t>(number);
        break;
      case EventField::kAttrs: {
        const std::optional<std::string_view> attrs = json_.CompactJsonObject(value, &batch->arena);
        if (!attrs) return issue("attrs", "must be a JSON object");
        e.attrs_json = *attrs;
        break;
      }
      default:
        e.*(kEventFields[static_cast<int>(column)].member) = value;
        break;
    }
  }
  if (!has_type) return issue("type", "is required");
  if (!has_ts) return issue("ts", "is required");
  return Finish(e, line, line_number, batch, issues);
}

size_t LineDecoder::DecodeJson(std::string_view line, uint64_t line_number, EventBatch* batch,
                               std::vector<EventIssue>* issues) {
  Event e;
  if (auto why = json_.ParseEvent(line, batch, &e)) {
    issues->push_back(MakeEventIssue(line_number, std::move(*why), line));
    return 0;
  }
  batch->events.push_back(e);
  batch->source_index.push_back(static_cast<uint32_t>(line_number));
  return 1;
}

}  // namespace persona
