#include "predict/event_log.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/batch_record.h"
#include "event/event_reader.h"
#include "store/store.h"

namespace persona {
namespace {

// Events per reader batch: large enough that per-batch overhead vanishes, small enough that a
// batch's block is not held much longer than its events need it.
constexpr size_t kReadBatchEvents = 65536;

// Every event of `batches`, sorted by time, same-time events in batch order. Pointers are taken
// only once all batches are in place, so they never depend on how the vector moved them.
std::vector<const Event*> SortedEvents(const std::vector<EventBatch>& batches) {
  size_t total = 0;
  for (const EventBatch& b : batches) total += b.events.size();
  std::vector<const Event*> events;
  events.reserve(total);
  for (const EventBatch& b : batches) {
    for (const Event& e : b.events) events.push_back(&e);
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const Event* a, const Event* b) { return a->ts_ms < b->ts_ms; });
  return events;
}

}  // namespace

absl::StatusOr<EventLog> EventLog::FromFile(
    const std::string& path, InputFormat format,
    const std::function<void(uint64_t, uint64_t)>& progress) {
  auto reader = EventReader::Open(path, format, ValidationLimits());
  if (!reader.ok()) return reader.status();
  EventLog log;
  std::vector<EventIssue> issues;
  for (;;) {
    EventBatch batch;
    issues.clear();
    const bool more = (*reader)->Next(kReadBatchEvents, &batch, &issues);
    log.skipped_ += issues.size();
    if (!more) break;
    if (!batch.events.empty()) log.batches_.push_back(std::move(batch));
    if (progress) progress((*reader)->bytes_read(), (*reader)->file_size());
  }
  if (!(*reader)->status().ok()) {
    return absl::Status((*reader)->status().code(),
                        absl::StrCat(path, ": ", (*reader)->status().message()));
  }
  log.events_ = SortedEvents(log.batches_);
  return log;
}

absl::StatusOr<EventLog> EventLog::FromDataDir(const std::string& dir) {
  auto store = Store::OpenReadOnly(dir);
  if (!store.ok()) return store.status();
  EventLog log;
  std::vector<RecordedEvent> recorded;
  for (uint32_t p = 0; p < (*store)->partitions(); ++p) {
    auto it = (*store)->ReadLog(p, 1);
    for (; it->Valid(); it->Next()) {
      // The record's bytes die at Next(): keep a copy the batch owns, and decode from the copy so
      // that the events' views point into it.
      auto bytes = std::make_shared<const std::string>(it->record());
      if (!DecodeBatchRecord(*bytes, &recorded)) {
        // Recovery reports corrupt records when the engine opens; an offline reader skips them
        // the same way the engine does, and counts them.
        ++log.skipped_;
        continue;
      }
      EventBatch batch;
      batch.events.reserve(recorded.size());
      for (const RecordedEvent& r : recorded) {
        if (!IsRedacted(r.event)) batch.events.push_back(r.event);
      }
      if (batch.events.empty()) continue;
      batch.input = std::move(bytes);
      log.batches_.push_back(std::move(batch));
    }
    if (!it->status().ok()) {
      return absl::Status(it->status().code(),
                          absl::StrCat(dir, ": partition ", p, ": ", it->status().message()));
    }
  }
  log.events_ = SortedEvents(log.batches_);
  return log;
}

}  // namespace persona
