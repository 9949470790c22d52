#!/bin/sh
# run.sh BUILD_DIR SECONDS TARGET...: runs each libFuzzer target
# BUILD_DIR/fuzz_TARGET for SECONDS, one at a time, on a fresh copy of its
# committed corpus (tests/fuzz/corpus/TARGET/, plus the seeds mkseeds.py
# generates) in BUILD_DIR/corpus/TARGET, so the committed corpus never
# grows.  A crash, leak, timeout or sanitizer report stops that target; the
# input is left as BUILD_DIR/TARGET-crash-* (or -leak-, -timeout-) and the
# run fails.  Ends with one line "N passed, N failed".
set -u
build=$1 seconds=$2
shift 2
here=$(dirname "$0")
passed=0 failed=0
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
for t in "$@"; do
	corpus=$build/corpus/$t log=$build/fuzz_$t.log
	rm -rf "$corpus"
	mkdir -p "$corpus"
	if [ -d "$here/corpus/$t" ]; then
		cp "$here/corpus/$t"/* "$corpus"/ 2>/dev/null
	fi
	python3 "$here/mkseeds.py" "$t" "$corpus" || { failed=$((failed + 1)); continue; }
	dict=""
	[ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
	echo "== fuzz: $t, ${seconds}s, $(ls "$corpus" | wc -l) seeds"
	# shellcheck disable=SC2086
	"$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$build/$t-" $dict "$corpus" >"$log" 2>&1
	st=$?
	if [ "$st" -eq 0 ]; then
		passed=$((passed + 1))
		grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log"
	else
		failed=$((failed + 1))
		tail -n 60 "$log"
		echo "FAIL fuzz $t: exit status $st (log: $log)"
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
