#include "common/json_writer.h"

#include <array>
#include <cassert>
#include <charconv>
#include <cmath>

namespace persona {

void JsonWriter::BeginObject() {
  Separate();
  out_.push_back('{');
  first_.push_back(1);
}
void JsonWriter::EndObject() {
  assert(!first_.empty());
  first_.pop_back();
  out_.push_back('}');
}
void JsonWriter::BeginArray() {
  Separate();
  out_.push_back('[');
  first_.push_back(1);
}
void JsonWriter::EndArray() {
  assert(!first_.empty());
  first_.pop_back();
  out_.push_back(']');
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  Separate();
  out_.push_back('"');
  AppendEscaped(out_, key);
  out_.append("\":");
  after_key_ = true;
  return *this;
}

void JsonWriter::String(std::string_view s) {
  Separate();
  out_.push_back('"');
  AppendEscaped(out_, s);
  out_.push_back('"');
}

void JsonWriter::Int(int64_t v) {
  Separate();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
}
void JsonWriter::Uint(uint64_t v) {
  Separate();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
}
void JsonWriter::Double(double v) {
  Separate();
  if (!std::isfinite(v)) {
    out_.append("null");
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
}
void JsonWriter::Bool(bool v) {
  Separate();
  out_.append(v ? "true" : "false");
}
void JsonWriter::Null() {
  Separate();
  out_.append("null");
}
void JsonWriter::Raw(std::string_view json) {
  Separate();
  out_.append(json);
}
void JsonWriter::Clear() {
  out_.clear();
  first_.clear();
  after_key_ = false;
}

namespace {
// Characters JSON strings must escape: controls, quote, backslash.
constexpr std::array<bool, 256> kNeedsEscape = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t['"'] = true;
  t['\\'] = true;
  return t;
}();
}  // namespace

void JsonWriter::AppendEscaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  // Copies runs of plain characters in one append; most strings have nothing to escape.
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (!kNeedsEscape[c]) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.append(s.data() + run, s.size() - run);
}

}  // namespace persona
