// A small, fast JSON text builder. Escapes strings per RFC 8259; writes numbers with the shortest
// round-trip representation. Keys and values are written in call order; the caller is responsible
// for balanced Begin/End calls (checked by assertions in debug builds).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace persona {

class JsonWriter {
 public:
  JsonWriter() = default;

  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  // Inside an object: writes `"key":` and the next value call supplies the value.
  JsonWriter& Key(std::string_view key);
  void String(std::string_view s);
  void Int(int64_t v);
  void Uint(uint64_t v);
  // Non-finite doubles are written as null (JSON has no NaN/Inf).
  void Double(double v);
  void Bool(bool v);
  void Null();
  // Inserts already-serialised JSON text as a value (e.g. a stored attrs object).
  void Raw(std::string_view json);

  void Reserve(size_t bytes) { out_.reserve(bytes); }
  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }
  void Clear();

  // Appends `s` escaped (without surrounding quotes) to `out`. Bytes that are not well-formed UTF-8
  // become U+FFFD, so the output is always valid JSON whatever bytes a client sent.
  static void AppendEscaped(std::string& out, std::string_view s);

 private:
  // Writes the comma before a value unless it is the first of its container or follows a key.
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) out_.push_back(',');
      first_.back() = 0;
    }
  }
  std::string out_;
  std::vector<uint8_t> first_;  // per open container: 1 while no element is written yet
  bool after_key_ = false;
};

}  // namespace persona
