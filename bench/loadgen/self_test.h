// `persona_loadgen --self-test`: checks of the pieces whose mistakes would silently skew results
// (histogram percentiles, HTTP response framing, request and event-body generation). The loadgen
// directory is one executable without a test binary, so its tests ship inside it.
#pragma once

namespace persona::loadgen {

// Runs every check, prints each failure to stderr; returns the process exit code (0 = all pass).
int RunSelfTest();

}  // namespace persona::loadgen
