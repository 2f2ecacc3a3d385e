#include "recommend/online_eval.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>

namespace persona {

std::pair<double, double> WilsonInterval(uint64_t successes, uint64_t trials) {
  if (trials == 0) return {0, 0};
  constexpr double z = 1.959963984540054;
  const double n = static_cast<double>(trials);
  const double p = static_cast<double>(successes) / n;
  const double denom = 1 + z * z / n;
  const double centre = (p + z * z / (2 * n)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom;
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

std::pair<double, double> TwoProportionZTest(uint64_t a, uint64_t n, uint64_t b, uint64_t m) {
  if (n == 0 || m == 0) return {std::nan(""), std::nan("")};
  const double p1 = static_cast<double>(a) / static_cast<double>(n);
  const double p2 = static_cast<double>(b) / static_cast<double>(m);
  const double pooled = static_cast<double>(a + b) / static_cast<double>(n + m);
  const double se = std::sqrt(pooled * (1 - pooled) *
                              (1.0 / static_cast<double>(n) + 1.0 / static_cast<double>(m)));
  if (se == 0) return {0, 1};
  const double z = (p1 - p2) / se;
  return {z, std::erfc(std::fabs(z) / std::sqrt(2.0))};
}

absl::Status OnlineEvaluator::AddImpression(std::string_view json_line) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json_line);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc)) return absl::InvalidArgumentError("not JSON");
  std::string_view rec_id, variant;
  simdjson::dom::array items;
  if (doc["rec_id"].get_string().get(rec_id) || rec_id.empty()) {
    return absl::InvalidArgumentError("no rec_id");
  }
  if (doc["variant"].get_string().get(variant) || variant.empty()) {
    return absl::InvalidArgumentError("no variant");
  }
  if (doc["items"].get_array().get(items)) return absl::InvalidArgumentError("no items array");
  uint32_t v = 0;
  while (v < variants_.size() && variants_[v].name != variant) ++v;
  if (v == variants_.size()) variants_.push_back(VariantOutcome{.name = std::string(variant)});
  Served served{.variant = v, .items = {}};
  for (auto item : items) {
    std::string_view s;
    if (item.get_string().get(s)) return absl::InvalidArgumentError("items must be strings");
    served.items.emplace_back(s);
  }
  variants_[v].responses++;
  variants_[v].items_shown += served.items.size();
  served_.insert_or_assign(std::string(rec_id), std::move(served));
  return absl::OkStatus();
}

void OnlineEvaluator::AddEvent(const Event& e) {
  if (e.rec_id.empty()) return;
  const bool click = e.type == EventType::kView || e.type == EventType::kClick;
  const bool cart = e.type == EventType::kCart;
  const bool purchase = e.type == EventType::kPurchase;
  if (!click && !cart && !purchase) return;
  auto it = served_.find(absl::string_view(e.rec_id.data(), e.rec_id.size()));
  if (it == served_.end()) {
    ++unmatched_;
    return;
  }
  Served& s = it->second;
  if (std::find(s.items.begin(), s.items.end(), e.item_id) == s.items.end()) {
    ++other_item_;
    return;
  }
  VariantOutcome& v = variants_[s.variant];
  if (click) {
    v.click_events++;
    if (!s.clicked) v.clicked++;
    s.clicked = true;
  } else if (cart) {
    if (!s.carted) v.carted++;
    s.carted = true;
  } else {
    v.purchase_events++;
    if (e.has_price() && e.price > 0) v.revenue += e.price * std::max<int32_t>(e.quantity, 1);
    if (!s.converted) v.converted++;
    s.converted = true;
  }
}

std::vector<VariantOutcome> OnlineEvaluator::Report() const {
  std::vector<VariantOutcome> out = variants_;
  for (size_t i = 0; i < out.size(); ++i) {
    VariantOutcome& v = out[i];
    const double n = static_cast<double>(v.responses);
    v.ctr = n > 0 ? static_cast<double>(v.clicked) / n : 0;
    v.conversion = n > 0 ? static_cast<double>(v.converted) / n : 0;
    std::tie(v.ctr_low, v.ctr_high) = WilsonInterval(v.clicked, v.responses);
    std::tie(v.conversion_low, v.conversion_high) = WilsonInterval(v.converted, v.responses);
    if (i == 0) {
      v.ctr_z = v.ctr_p = v.conversion_z = v.conversion_p = std::nan("");
    } else {
      std::tie(v.ctr_z, v.ctr_p) =
          TwoProportionZTest(v.clicked, v.responses, out[0].clicked, out[0].responses);
      std::tie(v.conversion_z, v.conversion_p) =
          TwoProportionZTest(v.converted, v.responses, out[0].converted, out[0].responses);
    }
  }
  return out;
}

}  // namespace persona
