// RFC 4180 output: a field is quoted when it holds a comma, quote, CR or LF, with quotes doubled.
#pragma once

#include <string>
#include <string_view>

namespace persona {

inline void AppendCsvField(std::string_view s, std::string* out) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

}  // namespace persona
