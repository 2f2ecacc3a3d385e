// The /v1/audiences routes (docs/audiences.md, docs/openapi.yaml "audiences"): ad-hoc queries,
// reports and exports of a condition, and saved audiences with their members, reports, exports
// and enter/exit change stream. Api owns one and forwards the matched routes to it.
//
// Threading: cheap answers (fields, list, get, changes already available) are given inline on the
// I/O thread. Scans (query, report, export, members, create) run on this object's one scan
// worker, which uses every core itself (Engine::ScanProfiles), so scans never hold an I/O thread
// and never compete with each other for the cores. A long-poll on /changes holds no thread: the
// Responder is kept until a change arrives or the wait ends.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "audience/audience_scan.h"
#include "audience/saved_audiences.h"
#include "common/serial_worker.h"
#include "engine/engine.h"
#include "serve/http_server.h"
#include "serve/request_target.h"

namespace persona {
class Predictor;
}

namespace persona::serve {

class ApiContext;

class AudienceRoutes {
 public:
  // `engine` and `predictor` (may be null: predictions.* are NaN) and `saved` (may be null: the
  // saved-audience routes answer 503) must outlive this object.
  // `context` (may be null) gives the cluster: condition queries then gather every instance's
  // partitions (scatter-gather).
  AudienceRoutes(Engine* engine, const Predictor* predictor, SavedAudiences* saved,
                 ApiContext* context = nullptr);
  ~AudienceRoutes();  // finishes queued scans, then joins the worker
  AudienceRoutes(const AudienceRoutes&) = delete;
  AudienceRoutes& operator=(const AudienceRoutes&) = delete;

  void Fields(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void Query(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void Report(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void ExportCondition(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void Create(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void List(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void Get(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void Delete(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void Members(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void ExportSaved(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void ReportSaved(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void Changes(const HttpRequest& req, const RouteMatch& m, Responder& respond);

  // For /metrics.
  struct Counters {
    uint64_t scans = 0;
    double scan_seconds = 0;
    uint64_t profiles_scanned = 0;
    uint64_t invalid_conditions = 0;
    uint64_t long_polls_waiting = 0;
  };
  Counters counters() const;
  SavedAudiences* saved() const { return saved_; }

 private:
  void RunScan(std::function<void()> fn) { worker_.Post(std::move(fn)); }
  void CountScan(double seconds, uint64_t scanned);
  bool SavedReady(Responder& respond);
  // `text` compiled; nullptr after answering 400 (missing, or invalid_condition with its column).
  std::shared_ptr<AudienceCondition> CompileCondition(const std::optional<std::string>& text,
                                                      Responder& respond);
  // The membership bit of the saved audience m.id; nullopt after answering 503 or 404.
  std::optional<int> SavedBit(const RouteMatch& m, Responder& respond);
  // Export rows of `selector` as the response (format/fields/limit/cursor from the query).
  void ExportRows(const HttpRequest& req, std::shared_ptr<AudienceCondition> condition,
                  int saved_bit, std::string filename, Responder& respond);
  void ReportOf(std::shared_ptr<AudienceCondition> condition, int saved_bit, ReportOptions options,
                Responder& respond);

  // In a cluster, the URLs of the instances owning the partitions foreign here (empty: this
  // instance holds every partition, or `req` was forwarded by the instance gathering); false
  // after answering 503 when an owner is not known yet.
  bool OtherOwners(const HttpRequest& req, Responder& respond, std::vector<std::string>* owners);
  // A condition export's scatter-gather: every instance's rows in the stable order, paged.
  void GatherExport(const HttpRequest& req, std::shared_ptr<AudienceCondition> condition,
                    std::string format, std::vector<std::string> fields, size_t limit,
                    std::string cursor, std::string filename,
                    const std::vector<std::string>& owners, Responder& respond);
  // A condition report's scatter-gather: every instance's exact sums, combined into one report.
  void GatherReport(const HttpRequest& req, std::shared_ptr<AudienceCondition> condition,
                    ReportOptions options, const std::vector<std::string>& owners,
                    Responder& respond);
  // Query's scatter-gather: this instance's scan and the owners' answers, combined.
  void GatherQuery(const HttpRequest& req, std::shared_ptr<AudienceCondition> shared,
                   AudienceQueryOptions options, const std::vector<std::string>& owners,
                   Responder& respond);

  Engine* const engine_;
  const Predictor* const predictor_;
  SavedAudiences* const saved_;
  ApiContext* const context_;
  AudienceScanner scanner_;

  std::atomic<uint64_t> scans_{0};
  std::atomic<uint64_t> scan_micros_{0};
  std::atomic<uint64_t> profiles_scanned_{0};
  std::atomic<uint64_t> invalid_conditions_{0};
  std::shared_ptr<std::atomic<uint64_t>> long_polls_waiting_ =
      std::make_shared<std::atomic<uint64_t>>(0);

  SerialWorker worker_;  // scans, one at a time; last: drained first on destruction
};

}  // namespace persona::serve
