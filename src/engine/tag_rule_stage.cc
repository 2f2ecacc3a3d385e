#include "engine/tag_rule_stage.h"

#include "rules/profile_features.h"

namespace persona {

void TagRuleStage::OnProfileChanged(const ChangedProfile& changed) {
  const std::shared_ptr<const TagRules> rules = rules_.load();
  if (rules == nullptr || rules->size() == 0) return;
  ProfileFeatures features(changed.profile, changed.ctx, changed.now_ms);
  changed.profile.tag_bits = rules->Evaluate(features);
}

}  // namespace persona
