// The line-oriented input formats of `persona import`: the native formats (JSON lines, CSV with a
// header of native column names) and the public datasets' own layouts (Taobao UserBehavior,
// REES46, RetailRocket, item sequences). A LineDecoder turns one line of a format into events;
// EventReader (event_reader.h) does the file reading and line splitting around it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/string_pool.h"
#include "event/event.h"
#include "event/json_event.h"
#include "event/validate.h"

namespace persona {

enum class InputFormat { kJsonl, kCsv, kTaobao, kRees46, kRetailRocket, kSequence };

// "jsonl", "csv", "taobao", "rees46", "retailrocket", "sequence"; nullopt for anything else.
std::optional<InputFormat> ParseInputFormat(std::string_view name);
std::string_view InputFormatName(InputFormat format);
// True for formats without a price column (taobao, retailrocket, sequence): their purchases are
// accepted without a price (EventBatch::price_optional).
bool InputFormatLacksPrice(InputFormat format);

// Splits one RFC 4180 record into *fields (cleared first). Quoted fields may contain commas and
// "" escapes; a field with escapes is unescaped into `arena`, all others are views into `line`.
// Returns false for an unterminated quote or text after a closing quote.
bool SplitCsvRecord(std::string_view line, StringArena* arena,
                    std::vector<std::string_view>* fields);

// Decodes the lines of one format into events. Stateful: the csv dialect remembers its header's
// column order, the sequence dialect numbers each user's items across lines. Lines are given
// without their terminator ("\n" or "\r\n") and without a BOM. Not thread-safe.
class LineDecoder {
 public:
  LineDecoder(InputFormat format, const ValidationLimits& limits);
  LineDecoder(const LineDecoder&) = delete;
  LineDecoder& operator=(const LineDecoder&) = delete;

  InputFormat format() const { return format_; }
  // Whether the first line of a file is a header, to be given to ReadHeader before any DecodeLine.
  bool has_header() const;
  // Checks the header: rees46 and retailrocket must match their published header exactly; csv may
  // name native columns in any order and subset but must include user_id, type and ts. Returns
  // InvalidArgument naming the problem, e.g. "unknown column 'foo' in header".
  absl::Status ReadHeader(std::string_view line);

  // Decodes one line: valid events (usually one; a sequence line gives one per item) are appended
  // to batch->events with `line_number` in batch->source_index, and their string views point
  // into `line` or batch->arena, so the caller keeps the line's storage alive with the batch.
  // Lines that fail (wrong column count, unparsable number, unknown behaviour, failed validation)
  // are appended to *issues. Returns the number of events appended.
  size_t DecodeLine(std::string_view line, uint64_t line_number, EventBatch* batch,
                    std::vector<EventIssue>* issues);

 private:
  size_t DecodeTaobao(std::string_view line, uint64_t line_number, EventBatch* batch,
                      std::vector<EventIssue>* issues);
  size_t DecodeRees46(std::string_view line, uint64_t line_number, EventBatch* batch,
                      std::vector<EventIssue>* issues);
  size_t DecodeRetailRocket(std::string_view line, uint64_t line_number, EventBatch* batch,
                            std::vector<EventIssue>* issues);
  size_t DecodeSequence(std::string_view line, uint64_t line_number, EventBatch* batch,
                        std::vector<EventIssue>* issues);
  size_t DecodeCsv(std::string_view line, uint64_t line_number, EventBatch* batch,
                   std::vector<EventIssue>* issues);
  size_t DecodeJson(std::string_view line, uint64_t line_number, EventBatch* batch,
                    std::vector<EventIssue>* issues);
  // Defaults quantity, sets id_hash, validates, and appends `e` or an issue.
  size_t Finish(Event& e, std::string_view line, uint64_t line_number, EventBatch* batch,
                std::vector<EventIssue>* issues);

  InputFormat format_;
  ValidationLimits limits_;
  JsonEventParser json_;                  // jsonl lines and csv `attrs` cells
  std::vector<std::string_view> fields_;  // reused per line
  std::vector<int> csv_columns_;          // csv: native field of each header column
  // sequence: per interned user, the position of that user's next item.
  StringPool sequence_users_;
  std::vector<uint32_t> sequence_next_item_;
};

}  // namespace persona
