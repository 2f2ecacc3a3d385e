#include "store/dead_letter_codec.h"

#include <simdjson.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/csv_field.h"
#include "common/time_util.h"

namespace persona {
namespace {

constexpr std::string_view kBase64Suffix = "_base64";

// Debian's Abseil has its own string_view type; std::string_view must be converted explicitly.
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

// Writes `"name":"text"` for valid UTF-8 and `"name_base64":"..."` otherwise (see the header).
void WriteBytesField(JsonWriter& out, std::string_view name, std::string_view bytes) {
  if (simdjson::validate_utf8(bytes.data(), bytes.size())) {
    out.Key(name).String(bytes);
  } else {
    out.Key(absl::StrCat(Absl(name), Absl(kBase64Suffix))).String(absl::Base64Escape(Absl(bytes)));
  }
}

void WriteLetterFields(JsonWriter& out, const DeadLetter& letter, std::string_view raw) {
  WriteBytesField(out, "source", letter.source);
  out.Key("position").Uint(letter.position);
  WriteBytesField(out, "user_id", letter.user_id);
  WriteBytesField(out, "field", letter.field);
  WriteBytesField(out, "rule", letter.rule);
  WriteBytesField(out, "raw", raw);
}

absl::Status Corrupt(std::string_view what) {
  return absl::DataLossError(absl::StrCat("dead letter value: ", Absl(what)));
}

// The string member of `letter` named by `key` (without any _base64 suffix), or null.
std::string* StringMember(DeadLetter& letter, std::string_view key) {
  if (key == "source") return &letter.source;
  if (key == "user_id") return &letter.user_id;
  if (key == "field") return &letter.field;
  if (key == "rule") return &letter.rule;
  if (key == "raw") return &letter.raw;
  return nullptr;
}


}  // namespace

std::string_view TruncateUtf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes;
  // Back off over continuation bytes (10xxxxxx) to the start of the character the cut would
  // split. At most 3: a longer run is not UTF-8 anyway, and then any cut is as good as another.
  for (int i = 0; i < 3 && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80; ++i) {
    --cut;
  }
  if ((static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) cut = max_bytes;
  return s.substr(0, cut);
}

std::string EncodeDeadLetter(const DeadLetter& letter) {
  JsonWriter out;
  out.BeginObject();
  out.Key("received_ms").Int(letter.received_ms);
  WriteLetterFields(out, letter, TruncateUtf8(letter.raw, kMaxDeadLetterRawBytes));
  out.EndObject();
  return out.Take();
}

absl::StatusOr<DeadLetter> DecodeDeadLetter(std::string_view value) {
  // One parser per thread: it keeps its buffers between calls, and listing dead letters decodes
  // many small values in a row.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(value.data(), value.size()).get(root); error) {
    return Corrupt(simdjson::error_message(error));
  }
  simdjson::dom::object object;
  if (root.get_object().get(object)) return Corrupt("not a JSON object");

  DeadLetter letter;
  for (auto [key, element] : object) {
    if (key == "received_ms") {
      if (element.get_int64().get(letter.received_ms)) return Corrupt("received_ms not an int");
      continue;
    }
    if (key == "position") {
      if (element.get_uint64().get(letter.position)) return Corrupt("position not an uint");
      continue;
    }
    const bool base64 = key.ends_with(kBase64Suffix);
    const std::string_view name = base64 ? key.substr(0, key.size() - kBase64Suffix.size()) : key;
    std::string* target = StringMember(letter, name);
    if (target == nullptr) continue;
    std::string_view text;
    if (element.get_string().get(text)) return Corrupt(absl::StrCat(Absl(key), " not a string"));
    if (!base64) {
      target->assign(text);
    } else if (!absl::Base64Unescape(Absl(text), target)) {
      return Corrupt(absl::StrCat(Absl(key), " is not valid base64"));
    }
  }
  return letter;
}

void WriteDeadLetterJson(JsonWriter& out, const StoredDeadLetter& stored) {
  const DeadLetter& letter = stored.letter;
  out.BeginObject();
  out.Key("id").String(stored.id);
  out.Key("received_ms").Int(letter.received_ms);
  out.Key("received_at").String(FormatIsoTime(letter.received_ms));
  WriteLetterFields(out, letter, letter.raw);
  out.EndObject();
}

void AppendDeadLetterCsvLine(const StoredDeadLetter& stored, std::string* out) {
  const DeadLetter& letter = stored.letter;
  AppendCsvField(stored.id, out);
  absl::StrAppend(out, ",", letter.received_ms, ",", FormatIsoTime(letter.received_ms), ",");
  AppendCsvField(letter.source, out);
  absl::StrAppend(out, ",", letter.position, ",");
  AppendCsvField(letter.user_id, out);
  out->push_back(',');
  AppendCsvField(letter.field, out);
  out->push_back(',');
  AppendCsvField(letter.rule, out);
  out->push_back(',');
  AppendCsvField(letter.raw, out);
  out->push_back('\n');
}

}  // namespace persona
