#include "event/event_codec.h"

#include <bit>
#include <cmath>
#include <limits>

#include "common/varint.h"

namespace persona {
namespace {

// Presence bits, which are also the encoding order of the optional fields. The fields nearly every
// event carries take the low seven bits so that a typical record's mask is a single byte.
// Changing any of this changes the log format (docs/log_format.md).
enum class Slot : uint8_t { kString, kPrice, kQuantity, kRating };
struct OptionalField {
  Slot slot;
  std::string_view Event::*member;  // kString only
};
constexpr OptionalField kOptionalFields[] = {
    {Slot::kQuantity, nullptr},              // bit 0
    {Slot::kString, &Event::item_id},        // bit 1
    {Slot::kString, &Event::category_id},    // bit 2
    {Slot::kString, &Event::category_path},  // bit 3
    {Slot::kPrice, nullptr},                 // bit 4
    {Slot::kString, &Event::session_id},     // bit 5
    {Slot::kString, &Event::brand},          // bit 6
    {Slot::kString, &Event::event_id},       // bit 7
    {Slot::kString, &Event::order_id},       // bit 8
    {Slot::kString, &Event::query},          // bit 9
    {Slot::kString, &Event::text},           // bit 10
    {Slot::kString, &Event::device},         // bit 11
    {Slot::kString, &Event::rec_id},         // bit 12
    {Slot::kString, &Event::attrs_json},     // bit 13
    {Slot::kRating, nullptr},                // bit 14
};
constexpr size_t kFieldCount = std::size(kOptionalFields);
constexpr uint64_t kKnownBits = (uint64_t{1} << kFieldCount) - 1;

bool IsPresent(const Event& e, const OptionalField& f) {
  switch (f.slot) {
    case Slot::kString:
      return !(e.*f.member).empty();
    case Slot::kPrice:
      return e.has_price();
    case Slot::kQuantity:
      return e.quantity != 0;
    case Slot::kRating:
      return e.rating != 0;
  }
  return false;
}

void AppendString(std::string_view s, std::string* out) {
  AppendVarint64(out, s.size());
  out->append(s);
}

bool ReadString(std::string_view* in, std::string_view* s) {
  uint64_t n = 0;
  if (!ReadVarint64(in, &n) || n > in->size()) return false;
  *s = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

void AppendEventRecord(const Event& e, std::string* out) {
  uint64_t mask = 0;
  for (size_t i = 0; i < kFieldCount; ++i) {
    if (IsPresent(e, kOptionalFields[i])) mask |= uint64_t{1} << i;
  }
  AppendVarint64(out, mask);
  out->push_back(static_cast<char>(e.type));
  AppendVarint64(out, ZigZagEncode64(e.ts_ms));
  AppendFixed64(out, e.id_hash);
  AppendString(e.user_id, out);
  for (size_t i = 0; i < kFieldCount; ++i) {
    if (!(mask & (uint64_t{1} << i))) continue;
    const OptionalField& f = kOptionalFields[i];
    switch (f.slot) {
      case Slot::kString:
        AppendString(e.*f.member, out);
        break;
      case Slot::kPrice:
        AppendFixed64(out, std::bit_cast<uint64_t>(e.price));
        break;
      case Slot::kQuantity:
        AppendVarint64(out, ZigZagEncode64(e.quantity));
        break;
      case Slot::kRating:
        AppendVarint64(out, ZigZagEncode64(e.rating));
        break;
    }
  }
}

bool ReadEventRecord(std::string_view* in, Event* e) {
  std::string_view p = *in;
  uint64_t mask = 0;
  if (!ReadVarint64(&p, &mask) || (mask & ~kKnownBits) != 0) return false;
  if (p.empty() || static_cast<unsigned char>(p[0]) >= kEventTypeCount) return false;
  Event out;
  out.type = static_cast<EventType>(p[0]);
  p.remove_prefix(1);
  uint64_t raw = 0;
  if (!ReadVarint64(&p, &raw)) return false;
  out.ts_ms = ZigZagDecode64(raw);
  if (!ReadFixed64(&p, &out.id_hash)) return false;
  if (!ReadString(&p, &out.user_id)) return false;
  for (size_t i = 0; i < kFieldCount; ++i) {
    if (!(mask & (uint64_t{1} << i))) continue;
    const OptionalField& f = kOptionalFields[i];
    // A present field never holds its "absent" value (empty string, NaN, 0): if it does, the
    // bytes did not come from AppendEventRecord.
    switch (f.slot) {
      case Slot::kString: {
        std::string_view s;
        if (!ReadString(&p, &s) || s.empty()) return false;
        out.*f.member = s;
        break;
      }
      case Slot::kPrice:
        if (!ReadFixed64(&p, &raw)) return false;
        out.price = std::bit_cast<double>(raw);
        if (std::isnan(out.price)) return false;
        break;
      case Slot::kQuantity: {
        if (!ReadVarint64(&p, &raw)) return false;
        const int64_t q = ZigZagDecode64(raw);
        if (q == 0 || q < std::numeric_limits<int32_t>::min() ||
            q > std::numeric_limits<int32_t>::max()) {
          return false;
        }
        out.quantity = static_cast<int32_t>(q);
        break;
      }
      case Slot::kRating: {
        if (!ReadVarint64(&p, &raw)) return false;
        const int64_t r = ZigZagDecode64(raw);
        if (r == 0 || r < std::numeric_limits<int8_t>::min() ||
            r > std::numeric_limits<int8_t>::max()) {
          return false;
        }
        out.rating = static_cast<int8_t>(r);
        break;
      }
    }
  }
  *e = out;
  *in = p;
  return true;
}

}  // namespace persona
