#!/usr/bin/env bash
# The full form of the pipeline crash test (src/serve/pipeline_crash_test.cc): 60k generated events
# posted over HTTP to `persona serve` with every model scripts/run.sh loads (SASRec, propensity,
# segments, next-category, sentiment) and 20 saved audiences, killed with SIGKILL 25 times and
# compared with a server that never crashed (profiles, predictions, recommendations, trending,
# neighbours, forecasts, audience members).
#
#   bash bench/pipeline_crash.sh          # needs a build in build-dev (or BUILD=...)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-dev}
ninja -C "$BUILD" persona serve_tests
PERSONA_CRASH_EVENTS=${EVENTS:-60000} PERSONA_CRASH_KILLS=${KILLS:-25} PERSONA_CRASH_SASREC=1 \
  "$BUILD/serve_tests" --gtest_filter='PipelineCrash*'
