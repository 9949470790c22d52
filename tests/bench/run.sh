#!/bin/sh
# goproxyd benchmark (`make bench`; not part of `make check`).
#
#   sh tests/bench/run.sh                 full run (~9 min): writes docs/benchmarks.md + .png
#   BENCH_QUICK=1 sh tests/bench/run.sh   smoke run (~1.5 min, indicative numbers only)
#
# Other settings (BENCH_ROUNDS, BENCH_DURATION, BENCH_CONNS, BENCH_DOCS, BENCH_KEEP=1 to keep
# the temp dir, ...) are described at the top of tests/bench/bench.py.  Installs nginx, wrk,
# gnuplot, go and perf from Debian when missing (as root).  Everything listens on 127.0.0.1
# only, in a temp dir, and is stopped at the end (also on Ctrl-C / SIGTERM).
set -eu

cd "$(dirname "$0")/../.."

pkgs=""
command -v nginx >/dev/null 2>&1 || pkgs="$pkgs nginx-light"
command -v wrk >/dev/null 2>&1 || pkgs="$pkgs wrk"
command -v gnuplot >/dev/null 2>&1 || pkgs="$pkgs gnuplot-nox"
command -v go >/dev/null 2>&1 || pkgs="$pkgs golang-go"
if [ -n "$pkgs" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench: missing tools; as root run: apt-get install -y$pkgs" >&2
		exit 1
	fi
	echo "bench: installing$pkgs" >&2
	# nginx-light is the smallest build; fall back to the plain package.
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pkgs >&2; then
		DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || true
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(echo $pkgs | sed 's/nginx-light/nginx/') >&2
	fi
fi
# perf only feeds the optional profile section: never fatal.
if [ "${BENCH_QUICK:-0}" = 0 ] && [ "${BENCH_PROFILE:-1}" != 0 ] && ! command -v perf >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf >&2 || true
	fi
	command -v perf >/dev/null 2>&1 || { echo "bench: no perf: profile section skipped" >&2; BENCH_PROFILE=0; export BENCH_PROFILE; }
fi

[ -x ./goproxyd ] || make goproxyd

TMP=$(mktemp -d "${TMPDIR:-/tmp}/goproxyd-bench.XXXXXX")
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ "${BENCH_KEEP:-0}" = 0 ]; then
		rm -rf "$TMP"
	else
		echo "bench: kept $TMP" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Hard bound on the whole run, beyond bench.py's own BENCH_MAX_SECONDS budget.
limit=$(( ${BENCH_MAX_SECONDS:-1500} + 600 ))
BENCH_TMP="$TMP" timeout -k 20 "$limit" python3 tests/bench/bench.py &
pid=$!
wait "$pid"
