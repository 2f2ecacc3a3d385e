#!/usr/bin/env bash
# Installs Persona's build and test dependencies from Debian's packages. Idempotent: a machine that
# already has them spends a second here.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config
      librocksdb-dev libsimdjson-dev libabsl-dev libtomlplusplus-dev libcli11-dev
      libspdlog-dev libfmt-dev libxxhash-dev libgtest-dev libgmock-dev libbenchmark-dev
      libboost1.81-dev libssl-dev libyaml-cpp-dev clang libclang-rt-14-dev
      libtorch-dev libopenblas0-openmp libxgboost-dev libfasttext-dev
      python3)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: dependencies present"
