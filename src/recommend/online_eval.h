// Online evaluation of recommendation variants (`persona eval-online`): joins the served
// recommendations (the impressions log the server writes: one JSON line per response with its
// rec_id, variant and items) with the events that came back carrying a rec_id, and reports per
// variant the click-through and conversion rates with 95% Wilson intervals, plus a two-proportion
// z-test of each variant against the first one.
//
// A response counts as clicked when at least one view/click event carries its rec_id for one of
// its items, as converted when a purchase does (rates are per response, so a user clicking five
// times does not inflate them). Events whose rec_id names no logged response are counted apart.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "event/event.h"

namespace persona {

struct VariantOutcome {
  std::string name;
  uint64_t responses = 0;
  uint64_t items_shown = 0;
  uint64_t clicked = 0;    // responses with >= 1 attributed click
  uint64_t carted = 0;     // responses with >= 1 attributed cart
  uint64_t converted = 0;  // responses with >= 1 attributed purchase
  uint64_t click_events = 0, purchase_events = 0;
  double revenue = 0;
  double ctr = 0, ctr_low = 0, ctr_high = 0;                       // clicked / responses
  double conversion = 0, conversion_low = 0, conversion_high = 0;  // converted / responses
  // Against the first variant (NaN for the first): z statistic and two-sided p-value.
  double ctr_z = 0, ctr_p = 0, conversion_z = 0, conversion_p = 0;
};

class OnlineEvaluator {
 public:
  // Adds one line of the impressions log; InvalidArgument describing what is wrong otherwise.
  absl::Status AddImpression(std::string_view json_line);
  // Adds an event (ignored unless it carries a rec_id).
  void AddEvent(const Event& event);

  // Per variant in order of first appearance in the impressions.
  std::vector<VariantOutcome> Report() const;
  uint64_t unmatched_events() const { return unmatched_; }    // rec_id with no logged response
  uint64_t other_item_events() const { return other_item_; }  // rec_id, but an item not shown

 private:
  struct Served {
    uint32_t variant;
    std::vector<std::string> items;
    bool clicked = false, carted = false, converted = false;
  };
  absl::flat_hash_map<std::string, Served> served_;
  std::vector<VariantOutcome> variants_;
  uint64_t unmatched_ = 0, other_item_ = 0;
};

// The Wilson score interval (95%) of `successes` out of `trials`: {low, high}.
std::pair<double, double> WilsonInterval(uint64_t successes, uint64_t trials);
// Two-proportion z-test: z of (a/n) - (b/m) with the pooled variance, and the two-sided p-value.
std::pair<double, double> TwoProportionZTest(uint64_t a, uint64_t n, uint64_t b, uint64_t m);

}  // namespace persona
