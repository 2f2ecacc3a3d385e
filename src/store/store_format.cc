#include "store/store_format.h"

#include <cstring>

namespace persona {

void PutFixed64BE(uint64_t v, char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint64_t GetFixed64BE(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

void AppendFixed64BE(uint64_t v, std::string* out) {
  char buf[8];
  PutFixed64BE(v, buf);
  out->append(buf, sizeof buf);
}

PartitionPrefix EncodePartitionPrefix(uint32_t partition) {
  return {static_cast<char>((partition >> 8) & 0xff), static_cast<char>(partition & 0xff)};
}

LogKey EncodeLogKey(uint32_t partition, uint64_t seq) {
  LogKey key;
  const PartitionPrefix prefix = EncodePartitionPrefix(partition);
  std::memcpy(key.data(), prefix.data(), prefix.size());
  PutFixed64BE(seq, key.data() + kPartitionPrefixSize);
  return key;
}

namespace {
uint32_t DecodePartition(const char* in) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(in[0])) << 8) |
         static_cast<unsigned char>(in[1]);
}
}  // namespace

std::optional<LogKeyParts> DecodeLogKey(std::string_view key) {
  if (key.size() != kLogKeySize) return std::nullopt;
  return LogKeyParts{DecodePartition(key.data()), GetFixed64BE(key.data() + kPartitionPrefixSize)};
}

std::string EncodeProfileGenerationPrefix(uint32_t partition, uint64_t generation) {
  std::string key;
  const PartitionPrefix prefix = EncodePartitionPrefix(partition);
  key.append(prefix.data(), prefix.size());
  AppendFixed64BE(generation, &key);
  return key;
}

std::string EncodeProfileKey(uint32_t partition, uint64_t generation, std::string_view user_id) {
  std::string key = EncodeProfileGenerationPrefix(partition, generation);
  key.append(user_id);
  return key;
}

std::optional<ProfileKeyParts> DecodeProfileKey(std::string_view key) {
  if (key.size() < kProfileKeyPrefixSize) return std::nullopt;
  return ProfileKeyParts{GetFixed64BE(key.data() + kPartitionPrefixSize),
                         key.substr(kProfileKeyPrefixSize)};
}

std::string EncodeAttributesKey(uint32_t partition, std::string_view user_id) {
  std::string key(kAttributesKeyPrefix);
  const PartitionPrefix prefix = EncodePartitionPrefix(partition);
  key.append(prefix.data(), prefix.size());
  key.append(user_id);
  return key;
}

std::string EncodeOperatorStateKey(uint32_t partition, std::string_view name) {
  std::string key(kOperatorStateKeyPrefix);
  key.append(std::to_string(partition));
  key.push_back('/');
  key.append(name);
  return key;
}

std::string EncodeSourceOffsetKey(uint32_t partition) {
  std::string key(kSourceOffsetKeyPrefix);
  key.append(std::to_string(partition));
  return key;
}

std::string EncodeProfileValue(uint64_t label_seq, std::string_view blob) {
  std::string value;
  value.reserve(kLabelSize + blob.size());
  AppendFixed64BE(label_seq, &value);
  value.append(blob);
  return value;
}

std::optional<ProfileValueParts> DecodeProfileValue(std::string_view value) {
  if (value.size() < kLabelSize) return std::nullopt;
  return ProfileValueParts{GetFixed64BE(value.data()), value.substr(kLabelSize)};
}

std::string EncodeCheckpointKey(uint32_t partition) {
  std::string key(kCheckpointKeyPrefix);
  key.append(std::to_string(partition));
  return key;
}

std::string EncodeCheckpointValue(uint64_t seq, std::string_view meta_blob) {
  std::string value;
  value.reserve(kCheckpointSeqSize + meta_blob.size());
  AppendFixed64BE(seq, &value);
  value.append(meta_blob);
  return value;
}

std::optional<CheckpointValueParts> DecodeCheckpointValue(std::string_view value) {
  if (value.size() < kCheckpointSeqSize) return std::nullopt;
  return CheckpointValueParts{GetFixed64BE(value.data()), value.substr(kCheckpointSeqSize)};
}

DeadLetterKey EncodeDeadLetterKey(int64_t received_ms, uint64_t counter) {
  DeadLetterKey key;
  PutFixed64BE(received_ms < 0 ? 0 : static_cast<uint64_t>(received_ms), key.data());
  PutFixed64BE(counter, key.data() + 8);
  return key;
}

std::optional<DeadLetterKeyParts> DecodeDeadLetterKey(std::string_view key) {
  if (key.size() != kDeadLetterKeySize) return std::nullopt;
  return DeadLetterKeyParts{GetFixed64BE(key.data()), GetFixed64BE(key.data() + 8)};
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 15]);
  }
  return hex;
}

namespace {
int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string bytes;
  bytes.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexDigitValue(hex[i]);
    const int lo = HexDigitValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    bytes.push_back(static_cast<char>((hi << 4) | lo));
  }
  return bytes;
}

}  // namespace persona
