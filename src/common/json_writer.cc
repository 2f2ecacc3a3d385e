#include "common/json_writer.h"

#include <array>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>

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
  // Shortest form writes e.g. 1e20 as a 21-digit integer literal, which many JSON readers
  // (simdjson among them) refuse beyond 2^64: large magnitudes go out in scientific form.
  auto r = std::fabs(v) >= 1e15 ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific)
                                : std::to_chars(buf, buf + sizeof buf, v);
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
  for (int c = 0x80; c < 0x100; ++c) t[c] = true;  // non-ASCII: validated as UTF-8
  t['"'] = true;
  t['\\'] = true;
  return t;
}();

// Length of the well-formed UTF-8 sequence starting at s[i] (a byte >= 0x80), 0 if there is none
// (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
  }
  return n;
}
}  // namespace

void JsonWriter::AppendEscaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  // Copies runs of plain characters in one append; most strings have nothing to escape.
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    // Skip 8 plain ASCII bytes at a time (no control, quote, backslash or byte >= 0x80): profile
    // JSON is mostly such text, and this loop is a large share of a profile read.
    while (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      constexpr uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
      const auto has_zero = [](uint64_t x) { return (x - kOnes) & ~x & kHighs; };
      const uint64_t special = (w & kHighs) | ((w - kOnes * 0x20) & ~w & kHighs) |
                               has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\'));
      if (special != 0) break;
      i += 8;
    }
    if (i >= s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (!kNeedsEscape[c]) continue;
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      if (n > 0) {
        i += n - 1;  // a valid sequence stays in the plain run
        continue;
      }
      // Not UTF-8 (client bytes, CSV cells): U+FFFD keeps the output valid JSON.
      out.append(s.data() + run, i - run);
      run = i + 1;
      out.append("\xef\xbf\xbd");
      continue;
    }
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
