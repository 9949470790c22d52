#!/bin/sh
# deps.sh build|test|fuzz: make sure the Debian packages goproxyd needs are
# installed.  As root it installs what is missing; otherwise it prints the
# exact apt-get line and fails.
set -eu
BUILD="gcc make pkg-config libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev libzip-dev libssl-dev libsystemd-dev libcrypt-dev libarchive-dev"
TEST="$BUILD libcmocka-dev golang-go python3 ca-certificates build-essential dpkg-dev debhelper lintian openssl systemd chromium nginx-light"
# The S3 and fleet tests' single-node Ceph (tests/lib/ceph.sh), installed
# without recommends: a monitor, an OSD, the gateway, and for CephFS a
# metadata server and ceph-fuse, not a full cluster's tools.
CEPH="radosgw ceph-mon ceph-osd ceph-common ceph-mds ceph-fuse"
# make fuzz: clang and its libFuzzer runtime (libclang_rt.fuzzer), python3
# for the generated seeds.
FUZZ="$BUILD clang libclang-rt-14-dev python3"
case "${1:-build}" in
build) want=$BUILD ;;
test) want="$TEST $CEPH" ;;
fuzz) want=$FUZZ ;;
*) echo "usage: $0 build|test|fuzz" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	norec="" rec=""
	for p in $missing; do
		case " $CEPH " in *" $p "*) norec="$norec $p" ;; *) rec="$rec $p" ;; esac
	done
	# shellcheck disable=SC2086
	[ -z "$rec" ] || apt-get install -y -qq $rec >/dev/null
	# shellcheck disable=SC2086
	[ -z "$norec" ] || apt-get install -y -qq --no-install-recommends $norec >/dev/null
else
	echo "missing Debian packages; run:" >&2
	echo "  sudo apt-get install -y$missing" >&2
	exit 1
fi
