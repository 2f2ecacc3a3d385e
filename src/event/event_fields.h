// The native event fields, shared by the JSON and CSV parsers: their names, the Event member a
// string field lands in, and whether a field is an id (JSON numbers accepted, rendered as text).
#pragma once

#include <cstdint>
#include <string_view>

#include "event/event.h"

namespace persona {

enum class EventField : uint8_t {
  kEventId,
  kUserId,
  kType,
  kTs,
  kItemId,
  kCategoryId,
  kCategoryPath,
  kBrand,
  kPrice,
  kQuantity,
  kOrderId,
  kQuery,
  kRating,
  kText,
  kSessionId,
  kDevice,
  kRecId,
  kAttrs,
};

struct EventFieldSpec {
  std::string_view name;
  EventField field;
  std::string_view Event::*member;  // string fields only, else nullptr
  bool id_like;
};

// Indexed by EventField.
inline constexpr EventFieldSpec kEventFields[] = {
    {"event_id", EventField::kEventId, &Event::event_id, true},
    {"user_id", EventField::kUserId, &Event::user_id, true},
    {"type", EventField::kType, nullptr, false},
    {"ts", EventField::kTs, nullptr, false},
    {"item_id", EventField::kItemId, &Event::item_id, true},
    {"category_id", EventField::kCategoryId, &Event::category_id, true},
    {"category_path", EventField::kCategoryPath, &Event::category_path, false},
    {"brand", EventField::kBrand, &Event::brand, false},
    {"price", EventField::kPrice, nullptr, false},
    {"quantity", EventField::kQuantity, nullptr, false},
    {"order_id", EventField::kOrderId, &Event::order_id, true},
    {"query", EventField::kQuery, &Event::query, false},
    {"rating", EventField::kRating, nullptr, false},
    {"text", EventField::kText, &Event::text, false},
    {"session_id", EventField::kSessionId, &Event::session_id, true},
    {"device", EventField::kDevice, &Event::device, false},
    {"rec_id", EventField::kRecId, &Event::rec_id, true},
    {"attrs", EventField::kAttrs, &Event::attrs_json, false},
};
inline constexpr int kEventFieldCount = sizeof kEventFields / sizeof kEventFields[0];

// The spec of a native field name, or nullptr when the name is not a native field.
inline const EventFieldSpec* FindEventField(std::string_view name) {
  for (const EventFieldSpec& spec : kEventFields) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

}  // namespace persona
