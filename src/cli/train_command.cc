// Placeholder until the train command lands (this session).
#include "cli/commands.h"

namespace persona::cli {

void RegisterTrain(Registry&) {}

}  // namespace persona::cli
