// The pipeline's first stage: evaluates the tag rules (rules/tag_rules.h) on every changed
// profile and stores the result in Profile::tag_bits, so that the operators after it (audiences,
// recommendations) see the profile's current tags. Rules are swapped atomically by a reload; a
// profile is re-tagged at its next change (and the read path evaluates nothing).
#pragma once

#include <atomic>
#include <memory>

#include "engine/stream_operator.h"
#include "rules/tag_rules.h"

namespace persona {

class TagRuleStage : public StreamOperator {
 public:
  std::string_view name() const override { return "tags"; }
  void OnProfileChanged(const ChangedProfile& changed) override;

  void SetRules(std::shared_ptr<const TagRules> rules) { rules_.store(std::move(rules)); }
  std::shared_ptr<const TagRules> rules() const { return rules_.load(); }

 private:
  std::atomic<std::shared_ptr<const TagRules>> rules_;
};

}  // namespace persona
