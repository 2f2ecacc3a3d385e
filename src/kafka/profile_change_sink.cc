#include "kafka/profile_change_sink.h"

#include "common/json_writer.h"
#include "common/time_util.h"
#include "profile/profile_json.h"

namespace persona {

absl::Status ProfileChangeSink::Attach(Engine* engine, const KafkaConfig& config) {
  std::optional<uint32_t> sections = ParseSections(config.profile_fields);
  if (!sections) {
    return absl::InvalidArgumentError("'kafka.profile_fields': unknown section in '" +
                                      config.profile_fields +
                                      "' (identity, stats, sessions, interests, consumption, "
                                      "funnel, lifecycle, sequence, tags, signals, all)");
  }
  auto producer = KafkaProducer::Create(config.brokers, config.ProducerClient(),
                                        /*poll_thread=*/true);
  if (!producer.ok()) return producer.status();
  auto target = std::make_shared<Target>();
  target->engine = engine;
  target->producer = std::move(*producer);
  target->topic = config.profile_topic;
  target->sections = *sections & ~static_cast<uint32_t>(kPredictions);
  target_.store(std::move(target));
  return absl::OkStatus();
}

void ProfileChangeSink::Detach(std::chrono::milliseconds flush) {
  std::shared_ptr<Target> target = target_.exchange(nullptr);
  if (target != nullptr) (void)target->producer->Flush(flush);
}

void ProfileChangeSink::OnProfileChanged(const ChangedProfile& changed) {
  std::shared_ptr<Target> target = target_.load();
  if (target == nullptr) return;
  const auto rules = target->engine->tag_rules();
  const std::span<const std::string> tag_names =
      rules ? rules->names() : std::span<const std::string>();
  JsonWriter w;
  w.Reserve(1024);
  const int64_t now = WallClockMs();
  WriteProfileJson(w, changed.user_id, changed.profile, changed.ctx, changed.now_ms,
                   target->sections, tag_names,
                   [now](JsonWriter& out) { out.Key("changed_at_ms").Int(now); });
  absl::Status s = target->producer->Produce(
      target->topic, changed.user_id, w.str(), -1,
      [this](const absl::Status& st, int32_t, int64_t) {
        (st.ok() ? published_ : failed_).fetch_add(1, std::memory_order_relaxed);
      },
      /*block=*/false);
  if (!s.ok()) dropped_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace persona
