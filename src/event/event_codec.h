// The binary encoding of one event inside the durable log (format: docs/log_format.md, "Event
// record"). Compact (a presence bitmask, varints, optional fields only when present) and
// self-delimiting, so records can be concatenated in a log block without extra framing.
#pragma once

#include <string>
#include <string_view>

#include "event/event.h"

namespace persona {

// Appends the encoding of `e` to *out. Every Event round-trips exactly: strings, a NaN price
// (absent), quantity and rating of 0 (absent), any ts and any valid type.
void AppendEventRecord(const Event& e, std::string* out);

// Decodes one record from the front of *in into *e and advances *in past it. The string views of
// *e point into the bytes of *in (no copies), so the buffer must outlive the event. Returns false,
// leaving *in unchanged, on truncated or corrupt input (unknown presence bits, a type out of
// range, lengths past the end, non-canonical encodings); never reads outside *in.
bool ReadEventRecord(std::string_view* in, Event* e);

}  // namespace persona
