// Placeholder until the eval command lands (this session).
#include "cli/commands.h"

namespace persona::cli {

void RegisterEval(Registry&) {}

}  // namespace persona::cli
