#include "kafka/audience_sink.h"

#include "common/json_writer.h"

namespace persona {

absl::StatusOr<std::unique_ptr<AudienceSink>> AudienceSink::Start(
    SavedAudiences* audiences, const std::string& brokers, const KafkaProperties& client,
    std::string topic, std::function<void(std::string_view)> log) {
  std::unique_ptr<AudienceSink> sink(new AudienceSink());
  auto producer = KafkaProducer::Create(brokers, client);
  if (!producer.ok()) return producer.status();
  sink->producer_ = std::move(*producer);
  sink->audiences_ = audiences;
  sink->topic_ = std::move(topic);
  sink->log_ = std::move(log);
  // Start after the changes that exist now: they describe the membership before this process
  // published anything (consumers begin from an export).
  for (const SavedAudienceInfo& a : audiences->List()) {
    auto page = audiences->Changes(a.id, a.last_seq, 1);
    sink->after_[a.id] = {page.ok() ? page->epoch : "", a.last_seq};
  }
  sink->thread_ = std::thread([s = sink.get()] { s->Run(); });
  return sink;
}

AudienceSink::~AudienceSink() { Stop(); }

void AudienceSink::Stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
}

void AudienceSink::Run() {
  while (!stop_.load()) {
    PublishPending();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  PublishPending();
  if (absl::Status s = producer_->Flush(std::chrono::seconds(10)); !s.ok() && log_) {
    log_("audience sink: " + std::string(s.message()));
  }
}

void AudienceSink::PublishPending() {
  for (const SavedAudienceInfo& a : audiences_->List()) {
    auto& [epoch, after] = after_[a.id];  // a new audience starts at 0: its first changes
    for (;;) {
      auto page = audiences_->Changes(a.id, after, 1000);
      if (!page.ok()) break;  // deleted meanwhile
      if (page->epoch != epoch) {  // the audiences were re-opened: seqs start again at 1
        epoch = page->epoch;
        after = 0;
        continue;
      }
      if (page->truncated) {
        truncations_.fetch_add(1);
        if (log_) log_("audience sink: changes of '" + a.id + "' were dropped before publishing");
        JsonWriter w;
        w.BeginObject();
        w.Key("audience").String(a.id);
        w.Key("truncated").Bool(true);
        w.Key("epoch").String(page->epoch);
        w.EndObject();
        (void)producer_->Produce(topic_, a.id, w.str());
      }
      for (const MembershipChange& c : page->changes) {
        JsonWriter w;
        w.BeginObject();
        w.Key("audience").String(a.id);
        w.Key("user_id").String(c.user_id);
        w.Key("change").String(c.entered ? "enter" : "exit");
        w.Key("seq").Uint(c.seq);
        w.Key("epoch").String(page->epoch);
        w.Key("at_ms").Int(c.at_ms);
        w.EndObject();
        if (absl::Status s = producer_->Produce(topic_, c.user_id, w.str()); !s.ok()) {
          if (log_) log_("audience sink: " + std::string(s.message()));
          return;  // retried from `after` next round
        }
        published_.fetch_add(1);
        after = c.seq;
      }
      after = std::max(after, page->next_after);
      if (page->changes.size() < 1000) break;
    }
  }
  producer_->Poll();
}

}  // namespace persona
