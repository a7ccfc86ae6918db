#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 30s):
# `make fuzz FUZZTIME=5m`. The targets are found, not listed, so a new
# `func FuzzX(f *testing.F)` joins the job without an edit here. A crash
# stops the job; its input is kept under the package's testdata/fuzz/,
# where it becomes a regression case of the plain test run.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-30s}"
GO="${GO:-go}"
found=0
while IFS=: read -r file name; do
	pkg="./$(dirname "$file")"
	echo "== $pkg $name ($FUZZTIME)"
	"$GO" test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME"
	found=$((found + 1))
done < <(git ls-files '*_test.go' | xargs grep -Ho '^func Fuzz[A-Za-z0-9_]*' | sed 's/func //' | sort)
echo "fuzzed $found targets for $FUZZTIME each"
