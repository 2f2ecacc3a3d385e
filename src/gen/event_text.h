// Events as text lines in Persona's native formats, the inverse of the event stage's parsers:
// JSON lines (one object per event) and CSV with a header row. Used by `persona gen`; usable by
// anything that exports events.
#pragma once

#include <string>
#include <string_view>

#include "event/event.h"

namespace persona::gen {

// Appends `e` as one JSON object and '\n'. Fields in this order, each only when present:
// event_id, user_id, type, ts (epoch ms), item_id, category_id, category_path, brand, price,
// quantity, order_id, query, rating, text, session_id, device, rec_id, attrs (raw JSON).
void AppendJsonLine(const Event& e, std::string* out);

// The native CSV columns, comma-separated, with '\n': event_id,user_id,type,ts,item_id,
// category_path,brand,price,quantity,order_id,query,rating,text,session_id,device.
std::string_view CsvHeader();
// Appends `e` as one CSV row under CsvHeader() (absent fields empty; fields with a comma, quote or
// line break quoted per RFC 4180). category_id, rec_id and attrs have no column and are dropped.
void AppendCsvLine(const Event& e, std::string* out);

}  // namespace persona::gen
