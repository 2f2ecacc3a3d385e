// The checkpoint encoding: lossless, deterministic, self-contained, and safe on bad input.
#include "profile/profile_codec.h"

#include <random>
#include <string>

#include "common/hash.h"
#include "common/json_writer.h"
#include "common/time_util.h"
#include "gtest/gtest.h"
#include "profile/profile_json.h"
#include "profile/testing/profile_test_events.h"

namespace persona {
namespace {

using testing::OwnedEvent;

constexpr int64_t kT0 = 1511740800000;

class ProfileCodecTest : public ::testing::Test {
 protected:
  ProfileCodecTest() {
    config_.item_capacity = 4;  // force evictions
    // No population: two contexts feeding one population with the same profile would count it
    // twice. RFM scores are covered by the profile and JSON tests.
    for (ProfileContext* c : {&ctx_, &other_}) c->config = &config_;
    // A different pool layout in the decoding partition: codes differ, strings must not.
    for (int i = 0; i < 37; ++i) other_.pool.Intern("unrelated" + std::to_string(i));
  }

  // A profile with every feature populated.
  Profile Rich() {
    Profile p;
    for (int i = 0; i < 300; ++i) {
      OwnedEvent e;
      e.user = "u";
      e.type = static_cast<EventType>(i % kEventTypeCount);
      e.ts_ms = kT0 + int64_t{i} * 17 * kMinuteMs - (i % 13 == 0 ? 2 * kDayMs : 0);
      e.item = "item-" + std::to_string(i % 23);
      e.category = i % 3 ? "home.kitchen.knives" : "garden";
      e.brand = i % 4 ? "Acme" : "Zeta";
      if (e.type == EventType::kSearch) e.query = "sharp chef knife 蓝牙 " + std::to_string(i % 5);
      e.session = i % 5 ? "s" + std::to_string(i / 20) : "";
      e.order = e.type == EventType::kPurchase ? "o" + std::to_string(i / 20) : "";
      e.price = 5.0 + (i % 40);
      e.quantity = 1 + i % 2;
      e.rating = e.type == EventType::kReview ? static_cast<int8_t>(1 + i % 5) : 0;
      p.Apply(e.view(), ctx_);
    }
    EXPECT_TRUE(p.SetAttributes(R"({"age":30,"city":"Hangzhou","vip":true})", false).ok());
    p.tag_bits = 0b1011;
    p.timeline_head = 0x123456789abcdefULL;
    p.AddReviewSentiment(0.9, "home.kitchen.knives", ctx_);
    p.AddReviewSentiment(0.25, "garden", ctx_);
    p.AddReviewSentiment(0.5, "", ctx_);
    p.set_segment(3);
    p.set_anomaly_flags(kAnomalyViewBurst | kAnomalyCartChurn);
    return p;
  }

  std::string Json(const Profile& p, const ProfileContext& ctx) {
    const std::string tags[] = {"a", "b", "c", "d"};
    JsonWriter w;
    WriteProfileJson(w, "u", p, ctx, kT0 + 10 * kDayMs, kAll, tags);
    return w.Take();
  }

  ProfileConfig config_;
  ProfileContext ctx_, other_;
};

TEST_F(ProfileCodecTest, RoundTripIsLosslessAndReencodesToIdenticalBytes) {
  const Profile p = Rich();
  ASSERT_FALSE(p.interests(InterestKind::kItem).exact());
  std::string blob;
  EncodeProfile(p, ctx_, &blob);
  Profile q;
  ASSERT_TRUE(DecodeProfile(blob, other_, &q).ok());
  std::string again;
  EncodeProfile(q, other_, &again);
  EXPECT_EQ(again, blob);
  EXPECT_EQ(Json(q, other_), Json(p, ctx_));
  EXPECT_EQ(q.tag_bits, p.tag_bits);
  EXPECT_EQ(q.timeline_head, p.timeline_head);
  // The decoded profile keeps working: the same next event changes both the same way.
  OwnedEvent next;
  next.user = "u";
  next.type = EventType::kPurchase;
  next.ts_ms = kT0 + 9 * kDayMs;
  next.item = "item-new";
  next.category = "garden";
  next.price = 12;
  // The partition's price statistics travel in the checkpoint too.
  std::string prices;
  ctx_.prices.Encode(&prices);
  ASSERT_TRUE(other_.prices.Decode(prices).ok());
  Profile p2 = p;
  p2.Apply(next.view(), ctx_);
  q.Apply(next.view(), other_);
  EXPECT_EQ(Json(q, other_), Json(p2, ctx_));
}

TEST_F(ProfileCodecTest, SetEncodedTimelineHeadGivesTheBytesOfTheProfileWithThatHead) {
  Profile p = Rich();
  std::string blob;
  EncodeProfile(p, ctx_, &blob);
  ASSERT_TRUE(SetEncodedTimelineHead(&blob, 0).ok());
  p.timeline_head = 0;
  std::string expected;
  EncodeProfile(p, ctx_, &expected);
  EXPECT_EQ(blob, expected);
  Profile q;
  ASSERT_TRUE(DecodeProfile(blob, other_, &q).ok());
  EXPECT_EQ(q.timeline_head, 0u);
  EXPECT_EQ(Json(q, other_), Json(p, ctx_));
  blob[blob.size() / 2] ^= 1;
  EXPECT_TRUE(absl::IsDataLoss(SetEncodedTimelineHead(&blob, 7)));
  std::string empty;
  EXPECT_TRUE(absl::IsDataLoss(SetEncodedTimelineHead(&empty, 7)));
}

TEST_F(ProfileCodecTest, EmptyProfileRoundTrips) {
  Profile empty;
  std::string blob;
  EncodeProfile(empty, ctx_, &blob);
  Profile q;
  ASSERT_TRUE(DecodeProfile(blob, other_, &q).ok());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.MemoryBytes(), sizeof(Profile));
}

TEST_F(ProfileCodecTest, TruncatedBlobFailsCleanlyAndLeavesProfileUnchanged) {
  std::string blob;
  EncodeProfile(Rich(), ctx_, &blob);
  Profile target;
  target.tag_bits = 42;
  for (size_t n = 0; n < blob.size(); ++n) {
    const absl::Status s = DecodeProfile(std::string_view(blob).substr(0, n), other_, &target);
    EXPECT_FALSE(s.ok()) << n;
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  }
  EXPECT_EQ(target.tag_bits, 42u);
  EXPECT_TRUE(target.empty());
}

TEST_F(ProfileCodecTest, EveryFlippedByteIsDetected) {
  std::string blob;
  EncodeProfile(Rich(), ctx_, &blob);
  for (size_t i = 0; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] ^= 0x20;
    Profile q;
    EXPECT_FALSE(DecodeProfile(bad, other_, &q).ok()) << i;
  }
}

TEST_F(ProfileCodecTest, CorruptBodyWithValidChecksumNeverCrashes) {
  // Mutations the checksum cannot catch (the checksum is recomputed): the decoder must bounds-
  // check everything itself. Run under ASan/UBSan this proves it never reads out of bounds.
  std::string blob;
  EncodeProfile(Rich(), ctx_, &blob);
  std::mt19937 rng(7);
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string bad = blob.substr(0, blob.size() - 4);
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      const size_t at = 4 + rng() % (bad.size() - 4);
      switch (rng() % 3) {
        case 0:
          bad[at] = static_cast<char>(rng());
          break;
        case 1:
          bad.erase(at, 1 + rng() % 8);
          break;
        default:
          bad.insert(at, 1 + rng() % 8, static_cast<char>(rng()));
          break;
      }
      if (bad.size() <= 8) break;
    }
    const uint32_t sum = static_cast<uint32_t>(Hash64(bad));
    for (int b = 0; b < 4; ++b) bad.push_back(static_cast<char>(sum >> (8 * b)));
    Profile q;
    if (DecodeProfile(bad, other_, &q).ok()) {
      ++accepted;
      std::string again;
      EncodeProfile(q, other_, &again);  // whatever was accepted is usable
      Json(q, other_);
    }
  }
  EXPECT_LT(accepted, 3000);
}

// Checkpoints written before format version 2 (no sentiment, rhythm, segment or anomaly flags)
// still load, with those features at their defaults.
TEST_F(ProfileCodecTest, Version1BlobDecodesWithSignalsAtDefaults) {
  Profile p;
  OwnedEvent e;
  e.user = "u";
  e.type = EventType::kView;
  e.ts_ms = kT0;
  e.item = "i1";
  p.Apply(e.view(), ctx_);
  std::string blob;
  EncodeProfile(p, ctx_, &blob);
  // Version 2 appends, after the (absent) extras byte: rhythm (7 varints, 2 floats), the
  // zigzag segment and the flags byte. Cut them off and relabel the blob as version 1.
  const ActivityRhythm& r = p.rhythm();
  ASSERT_EQ(r.last_event_ms, kT0);
  std::string body = blob.substr(0, blob.size() - 4);
  // last_event_ms zigzag (6 bytes for a 2019+ time in ms), varints minute_start_s (5), 1, 1,
  // 1, 1, 0 -> 16 bytes; two floats 8; segment -1 zigzag 1; flags 1.
  body.resize(body.size() - (16 + 8 + 1 + 1));
  body[3] = 1;
  const uint32_t sum = static_cast<uint32_t>(Hash64(body));
  for (int b = 0; b < 4; ++b) body.push_back(static_cast<char>(sum >> (8 * b)));
  Profile q;
  ASSERT_TRUE(DecodeProfile(body, other_, &q).ok());
  EXPECT_EQ(q.events(), 1u);
  EXPECT_EQ(q.rhythm(), ActivityRhythm());
  EXPECT_EQ(q.segment(), -1);
  EXPECT_EQ(q.anomaly_flags(), 0);
}

TEST_F(ProfileCodecTest, UnknownVersionIsRejected) {
  std::string blob;
  EncodeProfile(Rich(), ctx_, &blob);
  blob[3] = 3;
  const uint32_t sum =
      static_cast<uint32_t>(Hash64(std::string_view(blob).substr(0, blob.size() - 4)));
  for (int b = 0; b < 4; ++b) blob[blob.size() - 4 + b] = static_cast<char>(sum >> (8 * b));
  Profile q;
  const absl::Status s = DecodeProfile(blob, other_, &q);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("version"), std::string_view::npos);
}

TEST_F(ProfileCodecTest, SmallerConfiguredCapacitiesCutTablesOnDecode) {
  const Profile p = Rich();
  std::string blob;
  EncodeProfile(p, ctx_, &blob);
  ProfileConfig small = config_;
  small.category_capacity = 2;
  small.sequence_length = 5;
  ProfileContext ctx;
  ctx.config = &small;
  Profile q;
  ASSERT_TRUE(DecodeProfile(blob, ctx, &q).ok());
  EXPECT_EQ(q.interests(InterestKind::kCategory).size(), 2u);
  EXPECT_FALSE(q.interests(InterestKind::kCategory).exact());
  EXPECT_EQ(q.sequence().size(), 5u);
  // The two kept categories are the two largest.
  const auto top = p.TopInterests(InterestKind::kCategory, ctx_, kT0, 2);
  const auto kept = q.TopInterests(InterestKind::kCategory, ctx, kT0, 2);
  EXPECT_EQ(kept[0].key, top[0].key);
  EXPECT_EQ(kept[1].key, top[1].key);
}

}  // namespace
}  // namespace persona
