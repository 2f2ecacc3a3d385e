#include "engine/batch_record.h"

#include "common/varint.h"
#include "event/event_codec.h"

namespace persona {
namespace {
constexpr char kBatchFormatV1 = 1;
}

void BatchRecordWriter::Clear() {
  body_.clear();
  count_ = 0;
}

void BatchRecordWriter::Add(const Event& e, uint64_t prev_position) {
  AppendVarint64(&body_, prev_position);
  AppendEventRecord(e, &body_);
  ++count_;
}

std::string_view BatchRecordWriter::Finish() {
  out_.clear();
  out_.push_back(kBatchFormatV1);
  AppendVarint64(&out_, count_);
  out_.append(body_);
  return out_;
}

bool DecodeBatchRecord(std::string_view record, std::vector<RecordedEvent>* out) {
  out->clear();
  if (record.empty() || record[0] != kBatchFormatV1) return false;
  record.remove_prefix(1);
  uint64_t count;
  if (!ReadVarint64(&record, &count) || count > kMaxBatchEvents) return false;
  out->resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    RecordedEvent& r = (*out)[i];
    if (!ReadVarint64(&record, &r.prev_position)) return false;
    if (!ReadEventRecord(&record, &r.event)) return false;
  }
  return record.empty();
}

bool RedactBatchRecord(std::string_view record, const std::vector<uint32_t>& indexes,
                       std::string* out) {
  std::vector<RecordedEvent> events;
  if (!DecodeBatchRecord(record, &events)) return false;
  std::vector<bool> redact(events.size(), false);
  for (uint32_t i : indexes) {
    if (i >= events.size()) return false;
    redact[i] = true;
  }
  BatchRecordWriter writer;
  const Event blank{};
  for (size_t i = 0; i < events.size(); ++i) {
    writer.Add(redact[i] ? blank : events[i].event, events[i].prev_position);
  }
  out->assign(writer.Finish());
  return true;
}

}  // namespace persona
