// `persona kafka-produce`: event files into a Kafka topic the way a shop's services write it
// (native JSON, key = user_id, Kafka's murmur2 partitioner), for demos and for replaying history
// into Kafka. `persona kafka-mock`: an in-process Kafka cluster (librdkafka's mock: the real
// protocol on localhost) for machines without a broker; prints its bootstrap servers and runs until
// SIGTERM or SIGINT.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <iostream>

#include "cli/commands.h"
#include "common/json_writer.h"
#include "event/event_reader.h"
#include "kafka/kafka_config.h"
#include "kafka/kafka_mock_cluster.h"
#include "kafka/kafka_producer.h"

namespace persona::cli {
namespace {

struct ProduceOptions {
  std::string brokers;
  std::string topic = "persona-events";
  std::string format = "jsonl";
  std::string partitioner = "murmur2";
  std::vector<std::string> files;
  bool quiet = false;
};

int RunProduce(const ProduceOptions& o) {
  auto format = ParseInputFormat(o.format);
  if (!format) {
    std::cerr << "persona: --format: unknown format '" << o.format << "'\n";
    return 2;
  }
  if (InputFormatLacksPrice(*format)) {
    std::cerr << "persona: note: " << o.format
              << " carries no price; purchases without one are rejected by the consumer's JSON "
                 "validation\n";
  }
  if (o.partitioner != "murmur2" && o.partitioner != "crc32") {
    std::cerr << "persona: --partitioner: '" << o.partitioner << "' is not murmur2 or crc32\n";
    return 2;
  }
  KafkaConfig kafka;
  kafka.partitioner = o.partitioner;
  auto producer = KafkaProducer::Create(o.brokers, kafka.ProducerClient());
  if (!producer.ok()) return Fail(producer.status());
  uint64_t produced = 0, bad = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& file : o.files) {
    auto reader = EventReader::Open(file, *format, ValidationLimits());
    if (!reader.ok()) return Fail(reader.status());
    EventBatch batch;
    std::vector<EventIssue> issues;
    while ((*reader)->Next(8192, &batch, &issues)) {
      for (const EventIssue& issue : issues) {
        if (++bad <= 10) {
          std::cerr << "persona: " << file << ":" << issue.index_or_line << ": "
                    << (issue.field.empty() ? "" : issue.field + " ") << issue.rule
                    << " (not produced)\n";
        }
      }
      issues.clear();
      for (const Event& e : batch.events) {
        JsonWriter w;
        WriteEventJson(w, e);
        if (absl::Status s = (*producer)->Produce(o.topic, e.user_id, w.str()); !s.ok()) {
          return Fail(s);
        }
        ++produced;
      }
      if (!o.quiet && (*reader)->file_size() > 0) {
        std::cerr << "\rpersona: " << file << " "
                  << 100 * (*reader)->bytes_read() / (*reader)->file_size() << "% (" << produced
                  << " events)" << std::flush;
      }
    }
    if (!(*reader)->status().ok()) return Fail((*reader)->status());
  }
  if (absl::Status s = (*producer)->Flush(std::chrono::minutes(5)); !s.ok()) return Fail(s);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!o.quiet) std::cerr << "\n";
  std::cout << "produced " << produced << " events to '" << o.topic << "' in " << secs << " s"
            << (bad ? " (" + std::to_string(bad) + " bad lines skipped)" : std::string()) << "\n";
  return bad ? 1 : 0;
}

struct MockOptions {
  int brokers = 1;
  std::string topic = "persona-events";
  int partitions = 4;
  std::vector<std::string> also;  // more topics with the same partition count
};

int RunMock(const MockOptions& o) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto cluster = KafkaMockCluster::Start(o.brokers);
  if (!cluster.ok()) return Fail(cluster.status());
  if (absl::Status s = (*cluster)->CreateTopic(o.topic, o.partitions); !s.ok()) return Fail(s);
  for (const std::string& topic : o.also) {
    if (absl::Status s = (*cluster)->CreateTopic(topic, o.partitions); !s.ok()) return Fail(s);
  }
  std::cout << "bootstrap " << (*cluster)->bootstrap() << std::endl;
  std::cerr << "persona: mock Kafka cluster with topic '" << o.topic << "' (" << o.partitions
            << " partitions); SIGTERM or Ctrl-C stops it (its messages are in memory only)\n";
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  return 0;
}

}  // namespace

void RegisterKafkaCommands(Registry& r) {
  auto p = std::make_shared<ProduceOptions>();
  CLI::App* produce =
      r.Add("kafka-produce", "Produce event files to a Kafka topic (native JSON keyed by user_id)",
            [p] { return RunProduce(*p); });
  produce->add_option("--brokers", p->brokers, "Bootstrap servers")->required();
  produce->add_option("--topic", p->topic, "Topic")->capture_default_str();
  produce->add_option("--format", p->format, "jsonl | csv | taobao | rees46 | retailrocket")
      ->capture_default_str();
  produce
      ->add_option("--partitioner", p->partitioner,
                   "murmur2 (Kafka's default) | crc32 (librdkafka's consistent_random)")
      ->capture_default_str();
  produce->add_option("files", p->files, "Event files")->required();
  produce->add_flag("--quiet", p->quiet, "No progress");

  auto m = std::make_shared<MockOptions>();
  CLI::App* mock = r.Add("kafka-mock", "Run an in-process mock Kafka cluster (tests, demos)",
                         [m] { return RunMock(*m); });
  mock->add_option("--brokers", m->brokers, "Brokers")->capture_default_str();
  mock->add_option("--topic", m->topic, "Topic to create")->capture_default_str();
  mock->add_option("--partitions", m->partitions, "Its partitions")->capture_default_str();
  mock->add_option("--also-topic", m->also,
                   "Another topic with as many partitions (repeatable), e.g. the group's "
                   "changelog \"persona-changelog\"");
}

}  // namespace persona::cli
