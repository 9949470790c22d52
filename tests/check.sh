#!/bin/sh
# check.sh BUILD_DIR: runs every test suite against BUILD_DIR's binaries
# and ends with one line "N passed, N failed"; exits 1 if anything failed.
# The cmocka unit tests report in cmocka's format; the integration suites
# (Python, standard library only) end with their own "N passed, N failed".
set -u
build=${1:-build}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT INT TERM

# Sanitizer builds must fail loudly, on leaks too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export GOPROXYD="$build/goproxyd"

count() { # $1 = suite name, $2 = exit status; reads $log
	p=0 f=0
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		p=${line%% passed*}
		f=${line#*, }; f=${f%% failed*}
	else
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
		p=${p:-0} f=${f:-0}
	fi
	if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1   # crashed, or a sanitizer fired after the tests passed
		echo "FAIL $1: exited with status $2"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}

for t in "$build"/test_*; do
	[ -x "$t" ] || continue
	echo "== unit: $t"
	"$t" >"$log" 2>&1
	st=$?
	cat "$log"
	count "$t" "$st"
done

for t in tests/integration/test_*.py; do
	[ -f "$t" ] || continue
	echo "== integration: $t"
	timeout 900 python3 "$t" >"$log" 2>&1
	st=$?
	cat "$log"
	count "$t" "$st"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
