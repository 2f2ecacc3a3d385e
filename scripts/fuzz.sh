#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzz.cc) with clang and runs each for FUZZ_SECONDS, starting
# from a scratch copy of its seed corpus (fuzz/corpus/<target>/; the committed corpus never grows).
# Exits non-zero when a target crashes (or fails to build), printing the reproducer and how to
# replay it.
#
#   bash scripts/fuzz.sh                          # every target, 30 s each
#   FUZZ_SECONDS=300 FUZZ_TARGETS=api_fuzz bash scripts/fuzz.sh
#
# Environment: FUZZ_SECONDS (30), FUZZ_TARGETS (all), FUZZ_BUILD_DIR (build-fuzz),
# FUZZ_WORK (<build dir>/fuzz-work: scratch corpora, artifacts, logs), FUZZ_JOBS (2 build jobs),
# FUZZ_SKIP_KNOWN=1 builds the targets with -DPERSONA_FUZZ_SKIP_KNOWN, which steers around
# findings already reported (see the targets' headers) so that a run looks for new ones; toggling
# it rebuilds everything.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${FUZZ_SECONDS:-30}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
WORK=${FUZZ_WORK:-$ROOT/$BUILD/fuzz-work}
JOBS=${FUZZ_JOBS:-2}

# clang++ and its runtime libraries (libFuzzer, ASan, UBSan) are not in scripts/setup.sh's list.
need=()
command -v clang++ >/dev/null 2>&1 || need+=(clang)
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "ok installed" ||
  need+=(libclang-rt-14-dev)
if ((${#need[@]})); then
  echo "fuzz: clang++ / libFuzzer runtime missing; installing ${need[*]} (Debian packages)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# PERSONA_WERROR=OFF: clang 14 warns on code g++ accepts (e.g. -Wmissing-field-initializers for
# designated initializers); the g++ build keeps -Werror for everyone.
extra_flags=""
[ "${FUZZ_SKIP_KNOWN:-0}" = 1 ] && extra_flags="-DPERSONA_FUZZ_SKIP_KNOWN"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DPERSONA_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPERSONA_WERROR=OFF -DCMAKE_CXX_FLAGS="$extra_flags" >/dev/null

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for src in fuzz/*_fuzz.cc; do targets+=("$(basename "$src" .cc)"); done
fi
((${#targets[@]})) || { echo "fuzz: no fuzz/*_fuzz.cc targets"; exit 2; }
echo "fuzz: building ${targets[*]}"
ninja -C "$BUILD" -j"$JOBS" "${targets[@]}"

# Sanitizer reports must stop the run: the fuzz build compiles UBSan in recoverable mode.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}


failed=()
for t in "${targets[@]}"; do
  dir="$WORK/$t"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/tmp"
  [ -d "fuzz/corpus/$t" ] && cp -r "fuzz/corpus/$t/." "$dir/corpus/"
  args=(-max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1
        -artifact_prefix="$dir/artifacts/")
  [ -f "fuzz/corpus/$t.dict" ] && args+=(-dict="fuzz/corpus/$t.dict")
  echo "fuzz: running $t for ${SECONDS_EACH}s (log: $dir/log.txt)"
  set +e
  # TMPDIR: targets that need a data directory create it here; it goes with the scratch dir.
  TMPDIR="$dir/tmp" "$BUILD/$t" "${args[@]}" "$dir/corpus" >"$dir/log.txt" 2>&1
  rc=$?
  set -e
  runs=$(grep -a -m1 'stat::number_of_executed_units' "$dir/log.txt" | awk '{print $2}')
  cov=$(grep -a -E '^#[0-9]+.*cov: ' "$dir/log.txt" | tail -1 | sed -E 's/.*cov: ([0-9]+).*/\1/')
  repro=$(find "$dir/artifacts" -type f | head -1)
  if [ "$rc" -ne 0 ] || [ -n "$repro" ]; then
    failed+=("$t")
    echo "fuzz: $t FAILED (exit $rc)"
    grep -a -E 'invariant violated|detail:|ERROR: |runtime error|SUMMARY' "$dir/log.txt" | head -20 || true
    grep -a -E '^    #[0-9]+ ' "$dir/log.txt" | head -25 || true
    if [ -n "$repro" ]; then
      echo "fuzz: reproducer: $repro"
      echo "fuzz: replay with: $BUILD/$t $repro"
    fi
    echo "fuzz: full log: $dir/log.txt"
  else
    echo "fuzz: $t ok: ${runs:-?} runs, coverage ${cov:-?} edges"
    rm -rf "$dir/tmp"
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: all targets ran ${SECONDS_EACH}s without a crash"
