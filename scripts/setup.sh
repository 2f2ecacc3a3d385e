#!/usr/bin/env bash
# Installs Persona's build and test dependencies from Debian's packages, and the web dashboard's
# npm packages + its build (web/dist). Idempotent and quiet: a machine that already has everything
# spends a second here. Only the first npm install needs the npm registry; later runs are offline.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(build-essential cmake ninja-build pkg-config
      librocksdb-dev libsimdjson-dev libabsl-dev libtomlplusplus-dev libcli11-dev
      libspdlog-dev libfmt-dev libxxhash-dev libgtest-dev libgmock-dev libbenchmark-dev
      libboost1.81-dev libssl-dev libyaml-cpp-dev clang libclang-rt-14-dev
      libtorch-dev libopenblas0-openmp libxgboost-dev libfasttext-dev
      librdkafka-dev kcat zlib1g-dev
      python3 chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# Node.js for the dashboard build and its browser tests: Debian's, unless a node is already there
# (a NodeSource nodejs bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The dashboard (web/): `npm ci` when node_modules is missing or older than the lockfile, then a
# build when web/dist is missing or older than its sources. A failure here (e.g. no registry on a
# first run) leaves the server without a dashboard, not the build broken: warn and go on.
web_ok=1
if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  echo "setup: installing the dashboard's npm packages (web/node_modules)"
  if ! (cd web && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "setup: WARNING: npm ci failed in web/: the dashboard is not built (browser tests skip)" >&2
    web_ok=0
  fi
fi
if [ "$web_ok" = 1 ] && { [ ! -f web/dist/index.html ] ||
    [ -n "$(find web/src web/index.html web/build.mjs web/package-lock.json -newer web/dist/index.html 2>/dev/null | head -1)" ]; }; then
  if ! (cd web && node build.mjs >/dev/null); then
    echo "setup: WARNING: the dashboard build failed (cd web && node build.mjs)" >&2
  fi
fi
echo "setup: dependencies present"
