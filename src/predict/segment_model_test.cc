#include "predict/segment_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "common/time_util.h"
#include "profile/testing/profile_test_events.h"

namespace persona {
namespace {

using testing::OwnedEvent;

constexpr int64_t kStart = 1700000000000;

// Two planted populations, interleaved in time: big spenders who buy electronics, and browsers
// who only look at apparel. Users are "s<i>" and "b<i>".
std::vector<OwnedEvent> PlantedEvents(int per_group, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<OwnedEvent> events;
  for (int u = 0; u < per_group; ++u) {
    for (int e = 0; e < 12; ++e) {
      OwnedEvent spend;
      spend.user = "s" + std::to_string(u);
      spend.item = "phone" + std::to_string(rng() % 50);
      spend.category = e % 4 == 0 ? "electronics.audio" : "electronics.phones";
      spend.ts_ms = kStart + static_cast<int64_t>(rng() % (20 * kDayMs));
      spend.type =
          e % 3 == 0 ? EventType::kPurchase : (e % 3 == 1 ? EventType::kCart : EventType::kView);
      spend.price = 400 + static_cast<double>(rng() % 400);
      spend.quantity = 1;
      spend.order = spend.type == EventType::kPurchase ? "o" + std::to_string(rng()) : "";
      events.push_back(spend);
    }
    for (int e = 0; e < 40; ++e) {
      OwnedEvent browse;
      browse.user = "b" + std::to_string(u);
      browse.item = "shirt" + std::to_string(rng() % 80);
      browse.category = "apparel.shirts";
      browse.ts_ms = kStart + static_cast<int64_t>(rng() % (20 * kDayMs));
      browse.type = EventType::kView;
      browse.price = 10 + static_cast<double>(rng() % 20);
      events.push_back(browse);
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const OwnedEvent& a, const OwnedEvent& b) { return a.ts_ms < b.ts_ms; });
  return events;
}

struct Replay {
  ProfileConfig config;
  ProfileContext ctx;
  std::map<std::string, Profile> profiles;
  Replay() { ctx.config = &config; }
  // Applies the events in order; `after(user, profile)` sees each profile after each event.
  template <typename Fn>
  void Run(const std::vector<OwnedEvent>& events, Fn&& after) {
    for (const OwnedEvent& oe : events) {
      Profile& p = profiles[oe.user];
      p.Apply(oe.view(), ctx);
      after(oe.user, p);
    }
  }
  void Run(const std::vector<OwnedEvent>& events) {
    Run(events, [](const std::string&, const Profile&) {});
  }
  std::vector<SegmentObservation> Observations() const {
    std::vector<SegmentObservation> out;
    for (const auto& [user, p] : profiles) out.push_back(ObserveSegmentInputs(p, ctx));
    return out;
  }
};

SegmentTrainOptions Options(int k_min, int k_max, size_t top_categories = 8) {
  SegmentTrainOptions o;
  o.k_min = k_min;
  o.k_max = k_max;
  o.seed = 7;
  o.top_categories = top_categories;
  return o;
}

SegmentModel TrainPlanted(Replay& replay) {
  replay.Run(PlantedEvents(40, 3));
  auto model = SegmentModel::Train(replay.Observations(), Options(2, 5));
  EXPECT_TRUE(model.ok()) << model.status();
  return std::move(*model);
}

TEST(SegmentModelTest, RecoversPlantedGroupsAndDescribesTheirDistinction) {
  Replay replay;
  const SegmentModel model = TrainPlanted(replay);
  ASSERT_EQ(model.segments().size(), 2u);
  EXPECT_GT(model.silhouette(), 0.5);
  // Each group lands in one segment, the two in different ones.
  std::map<char, std::set<int>> segments_of_group;
  for (const auto& [user, p] : replay.profiles) {
    segments_of_group[user[0]].insert(model.Assign(p, replay.ctx));
  }
  ASSERT_EQ(segments_of_group['s'].size(), 1u);
  ASSERT_EQ(segments_of_group['b'].size(), 1u);
  const int spenders = *segments_of_group['s'].begin();
  const int browsers = *segments_of_group['b'].begin();
  ASSERT_NE(spenders, browsers);
  const std::string& spend_text = model.segments()[spenders].description;
  const std::string& browse_text = model.segments()[browsers].description;
  EXPECT_NE(spend_text.find("high spend"), std::string::npos) << spend_text;
  EXPECT_NE(spend_text.find("electronics"), std::string::npos) << spend_text;
  EXPECT_NE(browse_text.find("low spend"), std::string::npos) << browse_text;
  EXPECT_NE(browse_text.find("apparel"), std::string::npos) << browse_text;
  EXPECT_EQ(model.segments()[spenders].train_size, 40u);
  // Centroids are in human units: the spenders' mean monetary is hundreds per purchase.
  double monetary = 0;
  for (const auto& [name, value] : model.segments()[spenders].centroid) {
    if (name == "monetary") monetary = value;
  }
  EXPECT_GT(monetary, 1000);
  EXPECT_EQ(model.top_categories(), (std::vector<std::string>{"apparel", "electronics"}));
}

TEST(SegmentModelTest, OnlineAssignmentAtEachUsersLastEventEqualsOfflineAssignment) {
  Replay training;
  const SegmentModel model = TrainPlanted(training);
  // A fresh replay of other users, interleaved, assigning at update time as the server does.
  const std::vector<OwnedEvent> events = PlantedEvents(25, 99);
  std::map<std::string, int64_t> last_ts;
  std::map<std::string, size_t> remaining;
  for (const OwnedEvent& e : events) ++remaining[e.user];
  std::map<std::string, int> online;
  Replay live;
  live.Run(events, [&](const std::string& user, const Profile& p) {
    const int segment = model.Assign(p, live.ctx);
    if (--remaining[user] == 0) online[user] = segment;
  });
  ASSERT_EQ(online.size(), 50u);
  for (const auto& [user, p] : live.profiles) {
    EXPECT_EQ(model.Assign(p, live.ctx), online[user]) << user;
    // The training path (observation -> features) and the serving path agree exactly.
    std::vector<double> served(model.dim()), trained(model.dim());
    model.Features(p, live.ctx, served);
    model.Features(ObserveSegmentInputs(p, live.ctx), trained);
    for (size_t j = 0; j < model.dim(); ++j) {
      EXPECT_NEAR(served[j], trained[j], 1e-9) << model.FeatureNames()[j];
    }
  }
}

class SegmentModelFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("segment_model_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(SegmentModelFileTest, SaveLoadRoundTripAssignsTheSame) {
  Replay replay;
  const SegmentModel model = TrainPlanted(replay);
  ASSERT_TRUE(model.Save(Path("m.pseg")).ok());
  auto loaded = SegmentModel::Load(Path("m.pseg"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const SegmentModel& m = **loaded;
  EXPECT_EQ(m.version(), model.version());
  EXPECT_EQ(m.metadata_json(), model.metadata_json());
  EXPECT_EQ(m.silhouette(), model.silhouette());
  EXPECT_EQ(m.silhouette_by_k(), model.silhouette_by_k());
  EXPECT_EQ(m.FeatureNames(), model.FeatureNames());
  ASSERT_EQ(m.segments().size(), model.segments().size());
  for (size_t i = 0; i < m.segments().size(); ++i) {
    EXPECT_EQ(m.segments()[i].description, model.segments()[i].description);
    EXPECT_EQ(m.segments()[i].train_size, model.segments()[i].train_size);
    EXPECT_EQ(m.segments()[i].centroid, model.segments()[i].centroid);
  }
  for (const auto& [user, p] : replay.profiles) {
    EXPECT_EQ(m.Assign(p, replay.ctx), model.Assign(p, replay.ctx));
  }
  EXPECT_EQ(model.version().rfind("segments-", 0), 0u);
}

TEST_F(SegmentModelFileTest, CorruptTruncatedAndForeignFilesAreRefused) {
  Replay replay;
  const SegmentModel model = TrainPlanted(replay);
  ASSERT_TRUE(model.Save(Path("m.pseg")).ok());
  std::ifstream in(Path("m.pseg"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(Path(name), std::ios::binary) << content;
    return Path(name);
  };
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x20;
  auto s = SegmentModel::Load(write("flipped", flipped)).status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_NE(s.message().find("checksum"), std::string::npos) << s;
  s = SegmentModel::Load(write("short", bytes.substr(0, bytes.size() - 9))).status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s;
  s = SegmentModel::Load(write("long", bytes + "x")).status();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  s = SegmentModel::Load(write("foreign", "not a model at all")).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_TRUE(absl::IsNotFound(SegmentModel::Load(Path("missing")).status()));
}

TEST(SegmentModelTest, RejectsTooFewProfilesAndBadOptions) {
  std::vector<SegmentObservation> one(1);
  EXPECT_TRUE(absl::IsFailedPrecondition(SegmentModel::Train(one, {}).status()));
  std::vector<SegmentObservation> many(10);
  EXPECT_TRUE(absl::IsInvalidArgument(SegmentModel::Train(many, Options(1, 4)).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(SegmentModel::Train(many, Options(2, 4, 9)).status()));
}

TEST(SegmentModelTest, AssignIsFast) {
  Replay replay;
  const SegmentModel model = TrainPlanted(replay);
  std::vector<const Profile*> profiles;
  for (const auto& [user, p] : replay.profiles) profiles.push_back(&p);
  constexpr int kCalls = 20000;
  int sink = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) sink += model.Assign(*profiles[i % profiles.size()], replay.ctx);
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
      kCalls;
  std::printf("Assign: %.3f us per call (sanitizers %s)\n", us,
#if defined(__SANITIZE_ADDRESS__)
              "on"
#else
              "off"
#endif
  );
  EXPECT_GE(sink, 0);
  // 2 us is the target without sanitizers; ASan/UBSan on a shared machine gets 5x headroom.
  EXPECT_LT(us, 10.0);
}

}  // namespace
}  // namespace persona
