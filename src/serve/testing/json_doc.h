// A parsed JSON response body for integration tests, addressed by RFC 6901 pointers
// ("/stats/counts/view"). Accessors return nullopt (or -1 / empty) when the pointer does not
// resolve to a value of the asked type, so a test can assert on shape and value in one go.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace persona::serve::testing_util {

class Json {
 public:
  explicit Json(const std::string& text) : text_(text) { error_ = parser_.parse(text_).get(root_); }
  bool ok() const { return error_ == simdjson::SUCCESS; }
  simdjson::dom::element root() const { return root_; }
  bool Has(const std::string& pointer) const {
    simdjson::dom::element e;
    return ok() && !root_.at_pointer(pointer).get(e);
  }
  std::optional<int64_t> Int(const std::string& pointer) const {
    int64_t v = 0;
    if (!ok() || root_.at_pointer(pointer).get_int64().get(v)) return std::nullopt;
    return v;
  }
  std::optional<double> Number(const std::string& pointer) const {
    double v = 0;
    if (!ok() || root_.at_pointer(pointer).get_double().get(v)) return std::nullopt;
    return v;
  }
  std::optional<bool> Bool(const std::string& pointer) const {
    bool v = false;
    if (!ok() || root_.at_pointer(pointer).get_bool().get(v)) return std::nullopt;
    return v;
  }
  std::optional<std::string> Str(const std::string& pointer) const {
    std::string_view v;
    if (!ok() || root_.at_pointer(pointer).get_string().get(v)) return std::nullopt;
    return std::string(v);
  }
  // Size of the array at `pointer`, -1 when there is none.
  int64_t ArraySize(const std::string& pointer) const {
    simdjson::dom::array a;
    if (!ok() || root_.at_pointer(pointer).get_array().get(a)) return -1;
    return static_cast<int64_t>(a.size());
  }
  std::vector<std::string> Keys(const std::string& pointer) const {
    std::vector<std::string> keys;
    simdjson::dom::object o;
    if (!ok() || root_.at_pointer(pointer).get_object().get(o)) return keys;
    for (auto kv : o) keys.emplace_back(kv.key);
    return keys;
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
  simdjson::error_code error_;
};

}  // namespace persona::serve::testing_util
