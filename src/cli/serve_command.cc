// `persona serve`: the engine behind the HTTP/JSON API (src/serve), until SIGTERM or SIGINT.
// `persona apikey new`: a fresh API key secret and the config lines that authorise it.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "kafka/audience_sink.h"
#include "kafka/changelog.h"
#include "kafka/cluster_exchange.h"
#include "kafka/kafka_client.h"
#include "kafka/kafka_config.h"
#include "kafka/kafka_producer.h"
#include "kafka/kafka_source.h"
#include "serve/api.h"
#include "serve/api_keys.h"
#include "serve/http_server.h"
#include "serve/serve_config.h"

namespace persona::cli {
namespace {

struct ServeOptions {
  EngineOptions engine;
  int port = -1;
  std::string bind;
  uint32_t threads = 0;
  std::string kafka_brokers, kafka_topic, kafka_group;
};

int RunServe(ServeOptions& o) {
  // Block the stop signals in every thread (the ones started below inherit the mask) and wait for
  // them in this one: no async-signal-safety puzzles, and shutdown runs as ordinary code.
  sigset_t stop_signals = BlockStopSignals();

  serve::ServeConfig serve_config;
  if (!o.engine.config_file.empty()) {
    if (absl::Status s = serve::LoadServeConfigFile(o.engine.config_file, &serve_config); !s.ok()) {
      std::cerr << "persona: " << s.message() << "\n";
      return 2;
    }
  }
  if (o.port >= 0) {
    if (o.port > 65535) {
      std::cerr << "persona: --port must be 0..65535\n";
      return 2;
    }
    serve_config.http.port = static_cast<uint16_t>(o.port);
  }
  if (!o.bind.empty()) serve_config.http.bind_address = o.bind;
  if (o.threads > 0) serve_config.http.threads = o.threads;

  // A Kafka source: engine partition k consumes Kafka partition k, so the data directory has the
  // topic's partition count and routes users with Kafka's partitioner (kafka/kafka_source.h).
  KafkaConfig kafka;
  if (!o.engine.config_file.empty()) {
    if (absl::Status s = LoadKafkaConfigFile(o.engine.config_file, &kafka); !s.ok()) return Fail(s);
  }
  if (!o.kafka_brokers.empty()) kafka.brokers = o.kafka_brokers;
  if (!o.kafka_topic.empty()) kafka.topic = o.kafka_topic;
  if (!o.kafka_group.empty()) kafka.group = o.kafka_group;
  if (kafka.enabled()) {
    auto count = KafkaTopicPartitionCount(kafka.brokers, kafka.client, kafka.topic,
                                          std::chrono::seconds(30));
    if (!count.ok()) return Fail(count.status());
    if (o.engine.partitions != 0 && o.engine.partitions != static_cast<uint32_t>(*count)) {
      std::cerr << "persona: --partitions " << o.engine.partitions << " but Kafka topic '"
                << kafka.topic << "' has " << *count << " partitions (they must be equal)\n";
      return 2;
    }
    o.engine.partitions = static_cast<uint32_t>(*count);
    o.engine.kafka_routing = true;
    o.engine.kafka_partitioner = kafka.partitioner;
  }

  // The whole pipeline opens with the engine: every operator's checkpointed state is restored and
  // the log tail after it replayed through the same operators as live traffic, so the state is
  // complete before the first request is answered (/readyz).
  StandardOperators ops;
  auto engine = OpenEngine(o.engine, &ops);
  if (!engine.ok()) return Fail(engine.status());
  Recommender* const recommender = ops.recommender.get();
  Predictor* const predictor = ops.predictor.get();
  SavedAudiences* const audiences = ops.audiences.get();
  if (!o.engine.quiet) {
    for (const std::string& e : predictor->load_errors()) std::cerr << "persona: " << e << "\n";
  }
  recommender->Start(engine->get(), [quiet = o.engine.quiet](std::string_view line) {
    if (!quiet) std::cerr << "persona: " << line << "\n";
  });
  // Saved audiences: membership is computed by one scan now and kept incrementally from here on
  // (every changed profile is re-evaluated).
  audiences->Attach(engine->get());
  for (const SavedAudienceInfo& a : audiences->List()) {
    if (!a.active && !o.engine.quiet) {
      std::cerr << "persona: saved audience '" << a.id << "' is inactive: " << a.error << "\n";
    }
  }
  // Membership that changes with time alone (lifecycle, windows, recency) is caught up by a
  // periodic full re-evaluation.
  std::mutex reconcile_mu;
  std::condition_variable reconcile_cv;
  bool reconcile_stop = false;
  std::thread reconciler([&] {
    std::unique_lock<std::mutex> lock(reconcile_mu);
    while (!reconcile_cv.wait_for(lock, serve_config.audience_reconcile_interval,
                                  [&] { return reconcile_stop; })) {
      lock.unlock();
      audiences->Reconcile();
      lock.lock();
    }
  });
  auto stop_reconciler = [&] {
    {
      std::lock_guard<std::mutex> lock(reconcile_mu);
      reconcile_stop = true;
    }
    reconcile_cv.notify_all();
    if (reconciler.joinable()) reconciler.join();
  };
  // Start-up failed after the engine opened: stop what runs and close the engine.
  auto give_up = [&](int code) {
    stop_reconciler();
    audiences->Detach();
    recommender->Stop();
    (void)(*engine)->Close();
    return code;
  };
  auto api = serve::Api::Create(engine->get(), serve_config, o.engine.config_file, recommender,
                                predictor, audiences);
  if (!api.ok()) {
    std::cerr << "persona: " << api.status().message() << "\n";
    return give_up(2);
  }
  serve::Api* a = api->get();
  std::unique_ptr<ClusterExchange> cluster;
  std::unique_ptr<Changelog> changelog;  // outlives Close: the closing checkpoints publish to it
  std::unique_ptr<KafkaSource> source;
  std::unique_ptr<KafkaProducer> producer;
  const auto kafka_log = [quiet = o.engine.quiet](std::string_view line) {
    if (!quiet) std::cerr << "persona: " << line << "\n";
  };
  // Profile-change notifications: attached before consumption starts, so the backlog's changes
  // are published too.
  if (kafka.enabled() && !kafka.profile_topic.empty()) {
    if (absl::Status s = ops.profile_changes->Attach(engine->get(), kafka); !s.ok()) {
      std::cerr << "persona: kafka.profile_topic: " << s.message() << "\n";
    }
  }
  if (kafka.enabled() && kafka.cluster) {
    // Before the source: its first assignment marks the other partitions foreign.
    auto started = ClusterExchange::Start(engine->get(), kafka, kafka_log);
    if (!started.ok()) {
      std::cerr << "persona: " << started.status().message() << "\n";
      return give_up(1);
    }
    cluster = std::move(*started);
  }
  if (kafka.enabled() && kafka.changelog) {
    auto started = Changelog::Start(engine->get(), kafka, kafka_log);
    if (absl::IsNotFound(started.status())) {
      kafka_log("changelog topic '" + kafka.changelog_topic_name() +
                "' does not exist: running without it (a partition that moves here is rebuilt "
                "from the events topic; docs/cluster.md says how to create it)");
    } else if (!started.ok()) {
      if (cluster) cluster->Stop();
      std::cerr << "persona: " << started.status().message() << "\n";
      return give_up(1);
    } else {
      changelog = std::move(*started);
      (*engine)->SetCheckpointListener(changelog.get());
      a->SetChangelog(changelog.get());
    }
  }
  if (kafka.enabled()) {
    KafkaSource::ResumeFn before_resume;
    if (changelog) {
      before_resume = [c = changelog.get()](uint32_t p) { (void)c->OnAssigned(p); };
    }
    KafkaSource::AssignmentFn on_assignment;
    if (cluster) {
      on_assignment = [c = cluster.get()](const std::vector<bool>& owned) {
        c->OnAssignment(owned);
      };
    }
    auto started = KafkaSource::Start(engine->get(), kafka, kafka_log, std::move(on_assignment),
                                      std::move(before_resume));
    if (!started.ok()) {
      if (cluster) cluster->Stop();
      std::cerr << "persona: " << started.status().message() << "\n";
      return give_up(1);
    }
    source = std::move(*started);
    // POST /v1/events produces to the topic: the owner of each user's partition applies it.
    auto made = KafkaProducer::Create(kafka.brokers, kafka.ProducerClient(), /*poll_thread=*/true);
    if (!made.ok()) {
      std::cerr << "persona: " << made.status().message() << "\n";
      source->Stop();
      if (cluster) cluster->Stop();
      return give_up(1);
    }
    producer = std::move(*made);
    a->SetKafka(source.get(), producer.get(), kafka.topic);
  }
  std::unique_ptr<AudienceSink> sink;
  if (kafka.enabled() && !kafka.audience_topic.empty()) {
    auto started = AudienceSink::Start(audiences, kafka.brokers, kafka.client, kafka.audience_topic,
                                       [quiet = o.engine.quiet](std::string_view line) {
                                         if (!quiet) std::cerr << "persona: " << line << "\n";
                                       });
    if (!started.ok()) {
      std::cerr << "persona: kafka.audience_topic: " << started.status().message() << "\n";
    } else {
      sink = std::move(*started);
    }
  }
  auto server = serve::HttpServer::Start(
      serve_config.http,
      [a](const serve::HttpRequest& req, serve::Responder r) { a->Handle(req, std::move(r)); },
      [a](const serve::HttpExchange& x) { a->Observe(x); });
  if (!server.ok()) {
    std::cerr << "persona: cannot serve on " << serve_config.http.bind_address << ":"
              << serve_config.http.port << ": " << server.status().message() << "\n";
    if (sink) sink->Stop();
    if (source) source->Stop();
    if (cluster) cluster->Stop();
    a->SetKafka(nullptr, nullptr, "");
    return give_up(1);
  }
  serve::HttpServer* srv = server->get();
  a->SetConnectionsSource([srv] { return srv->connections(); });
  if (!a->auth_enabled()) {
    std::cerr << "persona: WARNING: no [[server.api_keys]] configured: every route is open to "
                 "anyone who can reach "
              << serve_config.http.bind_address << " (create keys with `persona apikey new`)\n";
  }
  const bool tls = !serve_config.http.tls_cert_file.empty();
  if (cluster) {
    std::string url = kafka.advertised_url;
    if (url.empty()) {
      std::string host = serve_config.http.bind_address;
      if (host == "0.0.0.0" || host == "::" || host.empty()) {
        char name[256] = {};
        host = gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
      } else if (host.find(':') != std::string::npos) {
        host = "[" + host + "]";
      }
      url = "http://" + host + ":" + std::to_string(srv->port());
    }
    if (tls && kafka.advertised_url.empty()) {
      std::cerr << "persona: WARNING: the cluster forwards requests over plain HTTP; with TLS on "
                   "this port set [kafka] advertised_url to a plain-HTTP address of this "
                   "instance (docs/cluster.md)\n";
    }
    cluster->SetSelfUrl(url);
    a->SetCluster(cluster.get());
  }
  if (kafka.enabled() && !kafka.profile_topic.empty())
    a->SetProfileChanges(ops.profile_changes.get());
  a->SetReady(true);
  std::cout << "listening on " << (tls ? "https" : "http") << "://"
            << serve_config.http.bind_address << ":" << srv->port() << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::cerr << "persona: " << (signal_number == SIGTERM ? "SIGTERM" : "SIGINT")
            << ": draining requests, then checkpointing\n";
  a->SetReady(false);
  // The source hands over what it polled and leaves the group (POSTs waiting for their events to
  // be applied answer applied=false); the producer lives until the drain is over.
  if (source) source->Stop();
  if (cluster) cluster->Stop();  // after the source: its revocations are published
  stop_reconciler();
  if (sink) sink->Stop();  // publishes what is pending
  ops.profile_changes->Detach(std::chrono::seconds(5));
  // Long-polls on the change stream are answered now rather than held through the drain.
  audiences->Detach();
  audiences->ReleaseWaiters();
  srv->Stop(serve_config.drain_timeout);
  server->reset();
  a->SetKafka(nullptr, nullptr, "");
  a->SetCluster(nullptr);
  a->SetChangelog(nullptr);
  a->SetProfileChanges(nullptr);
  producer.reset();  // delivers what the drained requests produced
  source.reset();
  cluster.reset();
  recommender->Stop();
  absl::Status closed = (*engine)->Close();
  (*engine)->SetCheckpointListener(nullptr);
  changelog.reset();
  api->reset();  // finishes queued audience scans (which may use the saved audiences)
  ops = StandardOperators();
  engine->reset();  // the engine holds the operators: this answers long-polls still waiting
  if (!closed.ok()) return Fail(closed);
  std::cerr << "persona: stopped cleanly\n";
  return 0;
}

struct ApiKeyOptions {
  std::string name;
  std::string scopes = "read";
};

int RunApiKeyNew(ApiKeyOptions& o) {
  std::vector<std::string> scopes;
  std::string_view rest = o.scopes;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    scopes.emplace_back(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  if (auto parsed = serve::ParseScopes(scopes); !parsed.ok() || *parsed == 0) {
    std::cerr << "persona: --scopes: "
              << (parsed.ok() ? "name at least one scope" : parsed.status().message())
              << " (ingest, read, admin)\n";
    return 2;
  }
  const std::string secret = serve::ApiKeys::GenerateSecret();
  std::cout << "# secret for '" << o.name << "' (shown once; clients send it as "
            << "\"Authorization: Bearer <secret>\"):\n# " << secret << "\n"
            << "[[server.api_keys]]\nname = \"" << o.name << "\"\nsha256 = \""
            << serve::ApiKeys::Sha256Hex(secret) << "\"\nscopes = [";
  for (size_t i = 0; i < scopes.size(); ++i) {
    std::cout << (i ? ", " : "") << "\"" << scopes[i] << "\"";
  }
  std::cout << "]\n";
  return 0;
}

}  // namespace

void RegisterServe(Registry& r) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = r.Add("serve", "Run the HTTP/JSON API on a data directory (until SIGTERM)",
                        [o] { return RunServe(*o); });
  AddEngineOptions(cmd, &o->engine);
  cmd->add_option("--port", o->port, "TCP port (0 = any free port; default server.port, 8080)");
  cmd->add_option("--bind", o->bind, "Address to listen on (default server.bind, 127.0.0.1)");
  cmd->add_option("--threads", o->threads, "I/O threads (default server.threads: cores)");
  cmd->add_option("--kafka-brokers", o->kafka_brokers,
                  "Consume events from Kafka at these bootstrap servers (default kafka.brokers; "
                  "none: no Kafka source)");
  cmd->add_option("--kafka-topic", o->kafka_topic,
                  "Topic of behaviour events (default kafka.topic, persona-events)");
  cmd->add_option("--kafka-group", o->kafka_group,
                  "Consumer group shared by the instances (default kafka.group, persona)");

  auto k = std::make_shared<ApiKeyOptions>();
  CLI::App* apikey = r.app().add_subcommand("apikey", "Manage API keys");
  apikey->require_subcommand(1);
  CLI::App* create = apikey->add_subcommand("new", "Print a new secret and its config lines");
  create->add_option("--name", k->name, "Name of the key (shown in access logs)")->required();
  create->add_option("--scopes", k->scopes, "Comma list of ingest, read, admin")
      ->capture_default_str();
  r.AddExisting(create, [k] { return RunApiKeyNew(*k); });
}

}  // namespace persona::cli
