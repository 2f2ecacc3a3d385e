// Encodings of a DeadLetter: the stored value (a JSON object), the JSON export object and the CSV
// export line.
//
// Stored and exported strings are JSON strings when they are valid UTF-8. Rejected input is often
// not (a binary upload, a Latin-1 CSV), and JSON cannot carry such bytes, so a field that is not
// valid UTF-8 is written as "<name>_base64" instead of "<name>": the exact bytes survive, and a
// reader of the export sees which fields needed it. The stored object is
//   {"received_ms":I,"source":S,"position":U,"user_id":S,"field":S,"rule":S,"raw":S}
// and the export object adds "id" and "received_at" (ISO-8601) in front.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/json_writer.h"
#include "store/dead_letter.h"

namespace persona {

// The stored value of `letter`. `raw` is cut to kMaxDeadLetterRawBytes (never inside a UTF-8
// character, so valid text stays valid).
std::string EncodeDeadLetter(const DeadLetter& letter);

// Parses a value written by EncodeDeadLetter. Unknown keys are ignored (newer writers may add
// fields); absent keys keep their defaults. DataLoss when `value` is not such an object.
absl::StatusOr<DeadLetter> DecodeDeadLetter(std::string_view value);

// Writes the export object of `letter` (see above) as the next value of `out`.
void WriteDeadLetterJson(JsonWriter& out, const StoredDeadLetter& letter);

// The header line matching AppendDeadLetterCsvLine, with its "\n".
inline constexpr std::string_view kDeadLetterCsvHeader =
    "id,received_ms,received_at,source,position,user_id,field,rule,raw\n";

// Appends one RFC 4180 line (fields quoted when they hold a comma, quote, CR or LF; ends with
// "\n"). Bytes are written as they are: CSV has no encoding of its own.
void AppendDeadLetterCsvLine(const StoredDeadLetter& letter, std::string* out);

// The longest prefix of `s` of at most `max_bytes` that does not end inside a UTF-8 sequence.
std::string_view TruncateUtf8(std::string_view s, size_t max_bytes);

}  // namespace persona
