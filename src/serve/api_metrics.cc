#include "serve/api_metrics.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <utility>
#include <vector>

#include "audience/saved_audiences.h"
#include "common/time_util.h"
#include "engine/stats_json.h"
#include "kafka/changelog.h"
#include "kafka/cluster_exchange.h"
#include "kafka/kafka_source.h"
#include "kafka/profile_change_sink.h"
#include "predict/predictor.h"
#include "recommend/recommender.h"

namespace persona::serve {
namespace {}  // namespace

ApiMetrics::ApiMetrics(MetricsRegistry& registry, std::span<const std::string_view> route_patterns,
                       ApiContext& context, const IngestRoutes& ingest,
                       const AudienceRoutes& audiences)
    : registry_(registry), context_(context), ingest_(ingest), audiences_(audiences) {
  std::vector<std::string> names = {"unmatched", "-"};
  for (std::string_view pattern : route_patterns) names.emplace_back(pattern);
  for (const std::string& name : names) {
    auto rm = std::make_unique<RouteMetrics>();
    rm->latency =
        &registry_.AddHistogram("persona_http_request_duration_seconds",
                                "HTTP request latency from first byte to response written",
                                Histogram::LatencyBounds(), {{"route", name}});
    routes_.emplace(name, std::move(rm));
  }
  registry_.AddCollector([this](MetricsWriter& w) { Collect(w); });
}

void ApiMetrics::SetConnectionsSource(std::function<uint64_t()> source) {
  connections_ = std::move(source);
}

void ApiMetrics::Observe(const HttpExchange& x) {
  auto it = routes_.find(absl::string_view(x.route.data(), x.route.size()));
  if (it == routes_.end()) it = routes_.find("unmatched");
  RouteMetrics& rm = *it->second;
  rm.latency->Observe(std::chrono::duration<double>(x.duration).count());
  const size_t status = x.status >= 100 && x.status < 600 ? static_cast<size_t>(x.status) : 0;
  Counter* c = rm.by_status[status].load(std::memory_order_acquire);
  if (c == nullptr) {
    // First answer with this status on this route: registration is idempotent and locked.
    c = &registry_.AddCounter("persona_http_requests_total", "HTTP requests by route and status",
                              {{"route", it->first}, {"status", std::to_string(x.status)}});
    rm.by_status[status].store(c, std::memory_order_release);
  }
  c->Add();
}

void ApiMetrics::CollectRecommendations(MetricsWriter& w) {
  const RecommendConfig& config = context_.recommender()->config();
  for (size_t i = 0; i <= config.variants.size(); ++i) {
    const std::string name = i < config.variants.size() ? config.variants[i].name : "(unknown)";
    const Recommender::VariantCounters& c = context_.recommender()->counters(i);
    w.Counter("persona_recommendations_total", "Recommendation responses served, by A/B variant",
              {{"variant", name}}, static_cast<double>(c.responses.load()));
  }
  for (size_t i = 0; i <= config.variants.size(); ++i) {
    const std::string name = i < config.variants.size() ? config.variants[i].name : "(unknown)";
    const Recommender::VariantCounters& c = context_.recommender()->counters(i);
    constexpr std::string_view kHelp =
        "Events carrying a rec_id, by the variant that served it (click = view or click)";
    w.Counter("persona_rec_attributed_events_total", kHelp, {{"variant", name}, {"type", "click"}},
              static_cast<double>(c.clicks.load()));
    w.Counter("persona_rec_attributed_events_total", kHelp, {{"variant", name}, {"type", "cart"}},
              static_cast<double>(c.carts.load()));
    w.Counter("persona_rec_attributed_events_total", kHelp,
              {{"variant", name}, {"type", "purchase"}}, static_cast<double>(c.purchases.load()));
  }
  for (size_t i = 0; i < config.variants.size(); ++i) {
    const Recommender::VariantCounters& c = context_.recommender()->counters(i);
    const double responses = static_cast<double>(c.responses.load());
    w.Gauge("persona_rec_ctr", "Attributed clicks per recommendation response since start",
            {{"variant", config.variants[i].name}},
            responses > 0 ? static_cast<double>(c.clicks.load()) / responses : 0.0);
  }
  for (size_t i = 0; i < config.variants.size(); ++i) {
    const Recommender::VariantCounters& c = context_.recommender()->counters(i);
    const double responses = static_cast<double>(c.responses.load());
    w.Gauge("persona_rec_conversion",
            "Attributed purchases per recommendation response since start",
            {{"variant", config.variants[i].name}},
            responses > 0 ? static_cast<double>(c.purchases.load()) / responses : 0.0);
  }
  for (size_t i = 0; i < config.variants.size(); ++i) {
    const Recommender::VariantCounters& c = context_.recommender()->counters(i);
    w.Counter("persona_rec_revenue_total", "Revenue of purchases carrying a rec_id",
              {{"variant", config.variants[i].name}},
              static_cast<double>(c.revenue_cents.load()) / 100.0);
  }
  w.Gauge("persona_rec_catalog_items", "Items known to the recommenders", {},
          static_cast<double>(context_.recommender()->catalog().size()));
  auto model = context_.recommender()->model();
  w.Gauge("persona_rec_model_info", "The SASRec model in service (1), labelled by version",
          {{"version", model ? model->version() : "none"}}, model ? 1.0 : 0.0);
}

void ApiMetrics::CollectPredictions(MetricsWriter& w) {
  const Predictor::Counters c = context_.predictor()->counters();
  for (int i = 0; i < kAnomalyFlagCount; ++i) {
    w.Gauge("persona_anomaly_flagged_users",
            "Users currently flagged as anomalous (bots, scrapers), by flag",
            {{"flag", AnomalyFlagName(static_cast<uint8_t>(1u << i))}},
            static_cast<double>(c.flagged_users[i]));
  }
  w.Counter("persona_anomaly_flagged_total", "Users newly flagged as anomalous since start", {},
            static_cast<double>(c.flagged_transitions));
  w.Counter("persona_reviews_scored_total", "Reviews scored for sentiment since start", {},
            static_cast<double>(c.reviews_scored));
  w.Counter("persona_segment_assignments_total", "Segment assignments at update time", {},
            static_cast<double>(c.segment_assignments));
  if (context_.recommender() != nullptr) {
    w.Counter("persona_rec_flagged_events_skipped_total",
              "Events of anomaly-flagged users kept out of trending and item-CF", {},
              static_cast<double>(context_.recommender()->flagged_events()));
  }
}

void ApiMetrics::CollectAudiences(MetricsWriter& w) {
  const AudienceRoutes::Counters c = audiences_.counters();
  w.Counter("persona_audience_scans_total", "Audience scans (queries, exports, reports)", {},
            static_cast<double>(c.scans));
  w.Counter("persona_audience_scan_seconds_total", "Time spent in audience scans", {},
            c.scan_seconds);
  w.Counter("persona_audience_profiles_scanned_total", "Profiles visited by audience scans", {},
            static_cast<double>(c.profiles_scanned));
  w.Counter("persona_audience_invalid_conditions_total",
            "Audience conditions refused with a parse or type error", {},
            static_cast<double>(c.invalid_conditions));
  w.Gauge("persona_audience_long_polls", "Change-stream long-polls waiting", {},
          static_cast<double>(c.long_polls_waiting));
  if (SavedAudiences* saved = audiences_.saved()) {
    // Prometheus text keeps a family's samples together: one loop per family.
    const std::vector<SavedAudienceInfo> list = saved->List();
    for (const SavedAudienceInfo& a : list) {
      w.Gauge("persona_audience_size", "Members of a saved audience", {{"audience", a.id}},
              static_cast<double>(a.size));
    }
    for (const SavedAudienceInfo& a : list) {
      for (const bool enter : {true, false}) {
        w.Counter("persona_audience_changes_total",
                  "Enter/exit transitions of a saved audience since start",
                  {{"audience", a.id}, {"change", enter ? "enter" : "exit"}},
                  static_cast<double>(enter ? a.entered : a.exited));
      }
    }
  }
}

void ApiMetrics::Collect(MetricsWriter& w) {
  if (context_.recommender() != nullptr) CollectRecommendations(w);
  if (context_.predictor() != nullptr) CollectPredictions(w);
  CollectAudiences(w);
  CollectKafka(w);
  const std::vector<PartitionStats> stats = context_.engine().Stats();
  for (int t = 0; t < kEventTypeCount; ++t) {
    uint64_t acc = 0, dup = 0, rej = 0;
    for (const auto& s : stats) {
      acc += s.events_by_type[t];
      dup += s.duplicates_by_type[t];
      rej += s.rejected_by_type[t];
    }
    const std::string type(EventTypeName(static_cast<EventType>(t)));
    constexpr std::string_view kHelp =
        "Events by type and outcome (accepted: durable and applied, counted across restarts; "
        "duplicate and rejected: since start; type \"unparsed\": rejected before a type was "
        "known)";
    w.Counter("persona_events_total", kHelp, {{"type", type}, {"outcome", "accepted"}}, acc);
    w.Counter("persona_events_total", kHelp, {{"type", type}, {"outcome", "duplicate"}}, dup);
    w.Counter("persona_events_total", kHelp, {{"type", type}, {"outcome", "rejected"}}, rej);
    if (t == kEventTypeCount - 1) {
      w.Counter("persona_events_total", kHelp, {{"type", "unparsed"}, {"outcome", "rejected"}},
                ingest_.parse_rejected());
    }
  }
  for (const auto& s : stats) {
    w.Gauge("persona_partition_queue_events", "Events waiting in the partition's ingest queue",
            {{"partition", std::to_string(s.partition)}}, static_cast<double>(s.queued_events));
  }
  for (const auto& s : stats) {
    w.Gauge("persona_partition_lag_seconds",
            "Age of the oldest request waiting in the partition's queue",
            {{"partition", std::to_string(s.partition)}}, s.lag_seconds);
  }
  for (const auto& s : stats) {
    w.Gauge("persona_partition_watermark_seconds", "Event-time watermark of the partition",
            {{"partition", std::to_string(s.partition)}},
            static_cast<double>(s.watermark_ms) / 1000.0);
  }
  for (const auto& s : stats) {
    w.Gauge("persona_log_bytes",
            "Bytes of the partition's retained event log (before RocksDB compression)",
            {{"partition", std::to_string(s.partition)}}, static_cast<double>(s.log_bytes));
  }
  for (const auto& s : stats) {
    w.Counter("persona_log_trimmed_segments_total", "Log segments deleted by retention since start",
              {{"partition", std::to_string(s.partition)}},
              static_cast<double>(s.log_trimmed_segments));
  }
  uint64_t profiles = 0, checkpoints = 0;
  double checkpoint_seconds = 0, last_checkpoint = 0;
  for (const auto& s : stats) {
    profiles += s.profiles;
    checkpoints += s.checkpoints;
    checkpoint_seconds += s.checkpoint_seconds_total;
    last_checkpoint = std::max(last_checkpoint, s.last_checkpoint_seconds);
  }
  w.Gauge("persona_profiles", "Profiles held in memory", {}, static_cast<double>(profiles));
  w.Gauge("persona_memory_bytes", "Resident memory of the process", {},
          static_cast<double>(ResidentBytes()));
  w.Counter("persona_checkpoint_duration_seconds_sum",
            "Total seconds spent writing checkpoints (all partitions, since start)", {},
            checkpoint_seconds);
  w.Counter("persona_checkpoint_duration_seconds_count", "Checkpoints written since start", {},
            static_cast<double>(checkpoints));
  w.Gauge("persona_checkpoint_last_duration_seconds",
          "Duration of the slowest partition's most recent checkpoint", {}, last_checkpoint);
  // Samples of one name are written together: every partition's seconds, then its bytes.
  constexpr std::string_view kPartSeconds = "persona_checkpoint_last_part_seconds";
  constexpr std::string_view kPartBytes = "persona_checkpoint_last_part_bytes";
  for (const auto& s : stats) {
    const std::string partition = std::to_string(s.partition);
    const CheckpointBreakdown& b = s.last_checkpoint;
    const auto part = [&](std::string_view name, double seconds) {
      w.Gauge(kPartSeconds,
              "Seconds the partition's most recent checkpoint spent per part (profiles, each "
              "operator's state, meta, commit) on its writer thread, which applies no event "
              "meanwhile",
              {{"partition", partition}, {"part", std::string(name)}}, seconds);
    };
    part("profiles", b.profiles_seconds);
    for (const auto& op : b.operators) part("operator:" + op.name, op.seconds);
    part("meta", b.meta_seconds);
    part("commit", b.commit_seconds);
    part("cleanup", b.cleanup_seconds);
  }
  for (const auto& s : stats) {
    const std::string partition = std::to_string(s.partition);
    const CheckpointBreakdown& b = s.last_checkpoint;
    const auto part = [&](std::string_view name, uint64_t bytes) {
      w.Gauge(kPartBytes, "Bytes the partition's most recent checkpoint wrote per part",
              {{"partition", partition}, {"part", std::string(name)}}, static_cast<double>(bytes));
    };
    part("profiles", b.profile_bytes);
    for (const auto& op : b.operators) part("operator:" + op.name, op.bytes);
    part("meta", b.meta_bytes);
  }
  w.Gauge("persona_dead_letters", "Dead letters kept for inspection", {},
          static_cast<double>(DeadLetterCount()));
  if (connections_) {
    w.Gauge("persona_http_connections", "Open HTTP connections", {},
            static_cast<double>(connections_()));
  }
}

uint64_t ApiMetrics::DeadLetterCount() {
  std::lock_guard<std::mutex> lock(dead_letter_mu_);
  const int64_t now = WallClockMs();
  if (now - dead_letter_count_at_ms_ >= 10000) {
    auto n = context_.engine().store().CountDeadLetters();
    if (n.ok()) dead_letter_count_ = *n;
    dead_letter_count_at_ms_ = now;
  }
  return dead_letter_count_;
}

void ApiMetrics::CollectKafka(MetricsWriter& w) {
  const KafkaSource* kafka = context_.kafka();
  if (kafka == nullptr) return;
  const KafkaSourceStatus st = kafka->Status();
  w.Counter("persona_kafka_messages_total", "Kafka messages consumed since start", {},
            static_cast<double>(st.messages));
  w.Counter(
      "persona_kafka_dead_letters_total",
      "Kafka messages kept as dead letters since start (unparsable, invalid, wrong partition)", {},
      static_cast<double>(st.dead_letters));
  w.Counter("persona_kafka_rebalances_total", "Consumer-group rebalances seen since start", {},
            static_cast<double>(st.rebalances));
  w.Counter("persona_kafka_errors_total", "Kafka client and consume errors since start", {},
            static_cast<double>(st.errors));
  w.Counter("persona_kafka_skipped_total",
            "Offsets deleted from the topic by retention before they were consumed (lost events)",
            {}, static_cast<double>(st.skipped));
  w.Gauge("persona_kafka_caught_up",
          "1 once the partitions assigned at start were consumed up to their end offset then", {},
          st.caught_up ? 1 : 0);
  for (const KafkaPartitionStatus& p : st.partitions) {
    w.Gauge("persona_kafka_assigned", "1 while this instance owns the Kafka partition",
            {{"partition", std::to_string(p.partition)}}, p.assigned ? 1 : 0);
  }
  for (const KafkaPartitionStatus& p : st.partitions) {
    if (!p.assigned) continue;
    w.Gauge("persona_kafka_lag", "Messages of the partition not yet durable and applied",
            {{"partition", std::to_string(p.partition)}}, static_cast<double>(p.lag));
  }
  for (const KafkaPartitionStatus& p : st.partitions) {
    if (!p.assigned) continue;
    w.Gauge("persona_kafka_next_offset", "Next offset of the partition not yet durable and applied",
            {{"partition", std::to_string(p.partition)}}, static_cast<double>(p.next_offset));
  }
  if (const ProfileChangeSink* sink = context_.profile_changes(); sink != nullptr) {
    w.Counter("persona_kafka_profile_changes_published_total",
              "Profile-change notifications delivered to the profile topic", {},
              static_cast<double>(sink->published()));
    w.Counter("persona_kafka_profile_changes_dropped_total",
              "Profile-change notifications dropped (producer queue full or refused)", {},
              static_cast<double>(sink->dropped()));
    w.Counter("persona_kafka_profile_changes_failed_total",
              "Profile-change notifications the brokers did not acknowledge", {},
              static_cast<double>(sink->failed()));
  }
  if (const Changelog* changelog = context_.changelog(); changelog != nullptr) {
    const ChangelogStatus cl = changelog->Status();
    w.Counter("persona_changelog_transactions_total",
              "Checkpoints of owned partitions committed to the changelog topic", {},
              static_cast<double>(cl.transactions));
    w.Counter("persona_changelog_bytes_total", "Bytes of changelog records committed", {},
              static_cast<double>(cl.bytes));
    w.Counter("persona_changelog_failures_total",
              "Changelog transactions or reads that failed (the next checkpoint is then full)", {},
              static_cast<double>(cl.failures));
    w.Counter("persona_changelog_restores_total",
              "Partitions restored from the changelog on assignment", {},
              static_cast<double>(cl.restores));
    w.Gauge("persona_changelog_last_restore_seconds",
            "Duration of the last restore of a partition from the changelog", {},
            cl.last_restore_seconds);
  }
  const ClusterExchange* cluster = context_.cluster();
  if (cluster == nullptr) return;
  const ClusterStatus cs = cluster->Status();
  w.Gauge("persona_cluster_members", "Instances the cluster topic lists with partitions", {},
          static_cast<double>(
              std::count_if(cs.members.begin(), cs.members.end(),
                            [](const ClusterMember& m) { return !m.partitions.empty(); })));
  w.Counter("persona_cluster_shares_published_total",
            "Shared states of owned partitions published to the cluster topic", {},
            static_cast<double>(cs.shares_published));
  w.Counter("persona_cluster_share_bytes_published_total", "Bytes of those shared states", {},
            static_cast<double>(cs.share_bytes_published));
  w.Counter("persona_cluster_shares_applied_total",
            "Other instances' shared states laid over foreign partitions", {},
            static_cast<double>(cs.shares_applied));
  w.Counter("persona_cluster_errors_total", "Cluster topic errors since start", {},
            static_cast<double>(cs.errors));
  if (const HttpForwarder* f = context_.forwarder(); f != nullptr) {
    w.Counter("persona_cluster_forwarded_total",
              "Requests forwarded to the instance owning the user's partition", {},
              static_cast<double>(f->forwarded()));
    w.Counter("persona_cluster_forward_failures_total",
              "Forwarded requests the owner could not be reached for", {},
              static_cast<double>(f->failed()));
  }
  for (const ClusterPartitionStatus& p : cs.partitions) {
    if (!p.foreign || p.shared_age_ms < 0) continue;
    w.Gauge("persona_cluster_shared_age_seconds",
            "Age of the owner's shared state laid over a foreign partition",
            {{"partition", std::to_string(p.partition)}},
            static_cast<double>(p.shared_age_ms) / 1000.0);
  }
}

}  // namespace persona::serve
