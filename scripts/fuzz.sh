#!/usr/bin/env bash
# fuzz.sh — what `make fuzz` runs: every Go fuzz target in the module, one
# after the other, each for FUZZTIME (default 60s).
#
# The targets are the func FuzzX(f *testing.F) in the _test.go files of
# cmd/, core/, plugins/ and shared/. Their seeds (f.Add and the files under
# testdata/fuzz/FuzzX/) run as ordinary tests in every `go test`; this
# script mutates them to look for new failures. A failing input is written
# by go to the package's testdata/fuzz/FuzzX/ and kept there: it is a
# regression case from then on. Commit it with the fix.
#
#   FUZZTIME=10s      how long each target runs (a go -fuzztime value)
#   FUZZ=SafePoints   run only the targets whose name matches this regexp
#   FUZZPARALLEL=1    fuzzing processes per target (default: GOMAXPROCS)
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-60s}"
only="${FUZZ:-.}"
parallel=()
if [ -n "${FUZZPARALLEL:-}" ]; then
  parallel=(-parallel "$FUZZPARALLEL")
fi

corpus() { find . -path '*/testdata/fuzz/*' -type f -not -path './.services/*' | sort; }

# PACKAGE TARGET, one a line.
targets="$(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' cmd core plugins shared |
  sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*).*#./\1 \2#' | sort -u |
  awk -v re="$only" '$2 ~ re')"
if [ -z "$targets" ]; then
  echo "fuzz.sh: no fuzz target matches FUZZ=$only" >&2
  exit 1
fi

before="$(corpus)"
failed=()
while read -r pkg target; do
  printf '\n== %s %s for %s\n' "$pkg" "$target" "$fuzztime" >&2
  # -fuzz takes one target per invocation; -run '^$' skips the other tests.
  if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "${parallel[@]}" "$pkg"; then
    failed+=("$pkg $target")
  fi
done <<<"$targets"

new="$(comm -13 <(printf '%s\n' "$before") <(corpus) | sed '/^$/d')"
if [ -n "$new" ]; then
  printf '\nNew failing inputs, kept as regression cases (every go test runs them;\ncommit them with the fix):\n%s\n' "$new" >&2
fi
if [ "${#failed[@]}" -gt 0 ]; then
  printf '\nFailed: %s\n' "${failed[@]}" >&2
  exit 1
fi
printf '\nEvery fuzz target ran for %s without a failure.\n' "$fuzztime" >&2
