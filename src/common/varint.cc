#include "common/varint.h"

namespace persona {

bool ReadVarint64(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  const size_t limit = in->size() < kMaxVarint64Bytes ? in->size() : kMaxVarint64Bytes;
  for (size_t i = 0; i < limit; ++i) {
    const uint64_t byte = static_cast<unsigned char>((*in)[i]);
    // The tenth byte may only carry the single remaining bit of a 64-bit value.
    if (i == kMaxVarint64Bytes - 1 && byte > 1) return false;
    result |= (byte & 0x7f) << (7 * i);
    if (byte < 0x80) {
      *v = result;
      in->remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}

void AppendFixed64(std::string* out, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  out->append(buf, 8);
}

bool ReadFixed64(std::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  uint64_t result = 0;
  for (int i = 0; i < 8; ++i) {
    result |= static_cast<uint64_t>(static_cast<unsigned char>((*in)[i])) << (8 * i);
  }
  *v = result;
  in->remove_prefix(8);
  return true;
}

}  // namespace persona
