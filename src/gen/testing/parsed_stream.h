// Test support: reads generated JSON lines back with simdjson directly (independently of the event
// stage's parser), so gen tests check the bytes a consumer would see.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gen/generator.h"

namespace persona::gen_testing {

struct ParsedEvent {
  std::string event_id, user_id, type, item_id, category_path, brand, order_id, query, text,
      session_id, device;
  int64_t ts = 0;
  bool has_price = false;
  double price = 0;
  int64_t quantity = 0;
  int64_t rating = 0;
};

// Parses every line of `jsonl`; on the first malformed line or field of the wrong type returns
// false and describes it in *error.
inline bool ParseJsonLines(std::string_view jsonl, std::vector<ParsedEvent>* out,
                           std::string* error) {
  simdjson::dom::parser parser;
  size_t line_no = 0;
  while (!jsonl.empty()) {
    const size_t eol = jsonl.find('\n');
    const std::string_view line = jsonl.substr(0, eol);
    jsonl.remove_prefix(eol == std::string_view::npos ? jsonl.size() : eol + 1);
    ++line_no;
    simdjson::dom::object obj;
    if (parser.parse(line.data(), line.size()).get(obj) != simdjson::SUCCESS) {
      *error = "line " + std::to_string(line_no) + " is not a JSON object: " + std::string(line);
      return false;
    }
    ParsedEvent e;
    for (auto field : obj) {
      const std::string_view key = field.key;
      auto str = [&](std::string* dst) {
        std::string_view v;
        if (field.value.get(v) != simdjson::SUCCESS) return false;
        *dst = std::string(v);
        return true;
      };
      bool ok = true;
      if (key == "event_id")
        ok = str(&e.event_id);
      else if (key == "user_id")
        ok = str(&e.user_id);
      else if (key == "type")
        ok = str(&e.type);
      else if (key == "item_id")
        ok = str(&e.item_id);
      else if (key == "category_path")
        ok = str(&e.category_path);
      else if (key == "brand")
        ok = str(&e.brand);
      else if (key == "order_id")
        ok = str(&e.order_id);
      else if (key == "query")
        ok = str(&e.query);
      else if (key == "text")
        ok = str(&e.text);
      else if (key == "session_id")
        ok = str(&e.session_id);
      else if (key == "device")
        ok = str(&e.device);
      else if (key == "ts")
        ok = field.value.get(e.ts) == simdjson::SUCCESS;
      else if (key == "quantity")
        ok = field.value.get(e.quantity) == simdjson::SUCCESS;
      else if (key == "rating")
        ok = field.value.get(e.rating) == simdjson::SUCCESS;
      else if (key == "price") {
        e.has_price = true;
        ok = field.value.get(e.price) == simdjson::SUCCESS;
      } else {
        *error = "line " + std::to_string(line_no) + ": unexpected field " + std::string(key);
        return false;
      }
      if (!ok) {
        *error = "line " + std::to_string(line_no) + ": field " + std::string(key) +
                 " has the wrong type: " + std::string(line);
        return false;
      }
    }
    out->push_back(std::move(e));
  }
  return true;
}

// The whole stream of `options` as text (WriteLines until done).
inline std::string GenerateText(const GenOptions& options) {
  EventGenerator gen(options);
  std::string text;
  while (gen.WriteLines(65536, &text) > 0) {
  }
  return text;
}

// The whole stream of `options` (format forced to jsonl), parsed; empty with *error on failure.
inline std::vector<ParsedEvent> GenerateParsed(GenOptions options, std::string* error) {
  options.format = GenOptions::Format::kJsonl;
  std::vector<ParsedEvent> events;
  if (!ParseJsonLines(GenerateText(options), &events, error)) events.clear();
  return events;
}

}  // namespace persona::gen_testing
