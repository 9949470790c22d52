#!/bin/bash
# ceph.sh start DIR | mount DIR MOUNTPOINT | stop DIR
#
# A single-node Ceph with an S3 gateway (radosgw) on 127.0.0.1, as plain
# processes under DIR, for tests: one monitor, one OSD with bluestore on a
# sparse file, radosgw, no ceph-mgr, no authentication between daemons
# (cephx off), msgr v1 only.  Needs Debian's radosgw ceph-mon ceph-osd
# ceph-common (tests/deps.sh installs them).  With CEPH_FS=1 it also runs
# a metadata server and creates a CephFS file system named goproxyd (needs
# ceph-mds and ceph-fuse).
#
# start: prints nothing on success but writes DIR/s3.env (sourceable):
#   S3_ENDPOINT=http://127.0.0.1:PORT  S3_BUCKET=goproxyd
#   S3_ACCESS_KEY=...  S3_SECRET_KEY=...  CEPH_START_SECONDS=N
# and DIR/pids (one pid a line).  The whole start is bounded by
# CEPH_TIMEOUT seconds (default 90) and retried once after a failure
# (about one start in five needed the retry here); on a second failure it
# stops what it started, prints the logs' tails and exits 1.
# mount: mounts the CephFS file system at MOUNTPOINT with ceph-fuse, a
# client of its own (a separate session with the metadata server, as
# another machine's mount would be), within 30 s; its pid and the
# mountpoint go to DIR/mounts.
# stop: unmounts every mount (lazily), then SIGTERM to each ceph-fuse and
# then each pid in DIR/pids, SIGKILL after 10 s.
set -u

CEPH_TIMEOUT=${CEPH_TIMEOUT:-90}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # port seconds
	python3 - "$1" "$2" <<'EOF'
import socket, sys, time
port, t = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + t
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

# SIGTERM to each pid listed in FILE (one a line), SIGKILL after 10 s.
kill_listed() { # file
	local file=$1 pid n
	[ -f "$file" ] || return 0
	while read -r pid; do
		[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
	done <"$file"
	for n in $(seq 1 100); do
		local alive=0
		while read -r pid; do
			[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
		done <"$file"
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	while read -r pid; do
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done <"$file"
	rm -f "$file"
}

stop() {
	local dir=$1 pid mnt
	# The mounts go first, while the cluster that serves them is up.
	if [ -f "$dir/mounts" ]; then
		while read -r pid mnt; do
			umount -l "$mnt" 2>/dev/null
			echo "$pid"
		done <"$dir/mounts" >"$dir/mounts.pids"
		rm -f "$dir/mounts"
		kill_listed "$dir/mounts.pids"
	fi
	kill_listed "$dir/pids"
}

mount_fs() {
	local dir mnt=$2 pid
	dir=$(cd "$1" && pwd)
	[ -f "$dir/s3.env" ] && grep -q '^CEPH_FS=' "$dir/s3.env" || {
		echo "ceph.sh: no file system in $dir (start it with CEPH_FS=1)" >&2
		return 1
	}
	mkdir -p "$mnt"
	mnt=$(cd "$mnt" && pwd)
	ceph-fuse -f -c "$dir/c/ceph.conf" --client_fs goproxyd "$mnt" \
		>>"$dir/log/fuse.out" 2>&1 </dev/null &
	pid=$!
	echo "$pid $mnt" >>"$dir/mounts"
	for _ in $(seq 1 300); do
		grep -q " $mnt fuse.ceph-fuse " /proc/mounts && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "ceph.sh: ceph-fuse did not mount $mnt:" >&2
	tail -n 5 "$dir/log/fuse.out" >&2
	return 1
}

# The CephFS file system goproxyd and its metadata server.
start_fs() { # dir conf
	local dir=$1 c=$2
	mkdir -p "$dir/c/mds/ceph-a"
	timeout 20 ceph -c "$c" osd pool create goproxyd_meta 8 >>"$dir/log/cli.out" 2>&1 || return 1
	timeout 20 ceph -c "$c" osd pool create goproxyd_data 8 >>"$dir/log/cli.out" 2>&1 || return 1
	timeout 20 ceph -c "$c" fs new goproxyd goproxyd_meta goproxyd_data >>"$dir/log/cli.out" 2>&1 || return 1
	# How long a dead client's capabilities and locks hold the others up
	# (60 s by default): the least Ceph allows, for test_fleet.py's dead
	# machine.
	timeout 20 ceph -c "$c" fs set goproxyd session_timeout 30 >>"$dir/log/cli.out" 2>&1 || return 1
	spawn "$dir" mds ceph-mds -c "$c" -f -i a
	for _ in $(seq 1 150); do
		timeout 10 ceph -c "$c" mds stat 2>/dev/null | grep -q 'up:active' && return 0
		sleep 0.2
	done
	return 1
}

# Runs "$@" in the background, its output to DIR/log/NAME.out, and notes its pid.
spawn() { # dir name cmd...
	local dir=$1 name=$2
	shift 2
	"$@" >"$dir/log/$name.out" 2>&1 </dev/null &
	echo $! >>"$dir/pids"
}

attempt() {
	local dir=$1 t0 fsid monport rgwport uuid id ak sk c
	t0=$(date +%s)
	rm -rf "$dir/c"
	mkdir -p "$dir/c/mon" "$dir/c/osd/ceph-0" "$dir/c/run" "$dir/log"
	fsid=$(cat /proc/sys/kernel/random/uuid)
	monport=$(free_port)
	rgwport=$(free_port)
	c="$dir/c/ceph.conf"
	cat >"$c" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$monport
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr2 = false
ms bind ipv6 = false
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
run dir = $dir/c/run
log file = $dir/log/\$name.log
admin socket = $dir/c/run/\$name.asok
keyring = $dir/c/keyring
mon data = $dir/c/mon/\$cluster-\$id
osd data = $dir/c/osd/\$cluster-\$id
osd objectstore = bluestore
bluestore block path = $dir/c/osd-\$id.block
bluestore block create = true
bluestore block size = 4294967296
bluestore fsck on mount = false
bluestore cache size = 67108864
osd memory target = 268435456
osd crush update on start = false
osd class update on start = false
osd op num shards = 1
osd op num threads per shard = 2
[client.rgw.test]
rgw frontends = beast endpoint=127.0.0.1:$rgwport
rgw thread pool size = 16
# Virtual-hosted style (test_s3.py): BUCKET.localhost, which libcurl
# resolves to the loopback address itself, without DNS.
rgw dns name = localhost
# STS, for test_s3.py's temporary credentials (AWS_SESSION_TOKEN).
rgw s3 auth use sts = true
rgw sts key = $(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
[mds]
mds data = $dir/c/mds/\$cluster-\$id
mds cache memory limit = 67108864
[client]
# ceph-fuse's object cache, kept small for tests (200 MiB by default).
client oc size = 16777216
EOF
	ceph-authtool --create-keyring "$dir/c/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null || return 1
	monmaptool --create --addv a "[v1:127.0.0.1:$monport]" --fsid "$fsid" "$dir/c/monmap" >/dev/null || return 1
	ceph-mon -c "$c" --mkfs -i a --monmap "$dir/c/monmap" >"$dir/log/mon-mkfs.out" 2>&1 || return 1
	spawn "$dir" mon ceph-mon -c "$c" -f -i a
	wait_port "$monport" 20 || return 1
	uuid=$(cat /proc/sys/kernel/random/uuid)
	id=$(timeout 20 ceph -c "$c" osd create "$uuid" 2>>"$dir/log/cli.out") || return 1
	[ "$id" = 0 ] || return 1
	ceph-osd -c "$c" -i 0 --mkfs --osd-uuid "$uuid" >"$dir/log/osd-mkfs.out" 2>&1 || return 1
	# The harness puts the OSD in CRUSH itself (an OSD registering itself
	# failed with "wrong fsid" once in nine starts).
	timeout 20 ceph -c "$c" osd crush add-bucket localhost host >>"$dir/log/cli.out" 2>&1 || return 1
	timeout 20 ceph -c "$c" osd crush move localhost root=default >>"$dir/log/cli.out" 2>&1 || return 1
	timeout 20 ceph -c "$c" osd crush add osd.0 1.0 host=localhost >>"$dir/log/cli.out" 2>&1 || return 1
	spawn "$dir" osd ceph-osd -c "$c" -f -i 0
	local osdpid
	osdpid=$(tail -n 1 "$dir/pids")
	for _ in $(seq 1 200); do
		kill -0 "$osdpid" 2>/dev/null || return 1
		timeout 10 ceph -c "$c" osd dump 2>/dev/null | grep -q '^osd.0 up' && break
		sleep 0.2
	done
	timeout 10 ceph -c "$c" osd dump 2>/dev/null | grep -q '^osd.0 up' || return 1
	if [ "${CEPH_FS:-0}" = 1 ]; then
		start_fs "$dir" "$c" || return 1
	fi
	spawn "$dir" rgw radosgw -c "$c" -f -n client.rgw.test
	wait_port "$rgwport" 60 || return 1
	ak=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
	sk=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	timeout 30 radosgw-admin -c "$c" -n client.rgw.test user create --uid goproxyd \
		--display-name goproxyd --access-key "$ak" --secret-key "$sk" >"$dir/log/user.out" 2>&1 || return 1
	# Lets the user give itself a policy that allows sts:GetSessionToken.
	timeout 30 radosgw-admin -c "$c" -n client.rgw.test caps add --uid goproxyd \
		--caps "user-policy=*" >>"$dir/log/user.out" 2>&1 || return 1
	# The bucket, with curl's own SigV4 (x-amz-content-sha256 set by hand).
	for _ in $(seq 1 50); do
		code=$(curl -s -o "$dir/log/bucket.out" -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
			--user "$ak:$sk" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
			"http://127.0.0.1:$rgwport/goproxyd")
		[ "$code" = 200 ] && break
		sleep 0.2
	done
	[ "$code" = 200 ] || return 1
	cat >"$dir/s3.env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$rgwport
S3_BUCKET=goproxyd
S3_ACCESS_KEY=$ak
S3_SECRET_KEY=$sk
CEPH_CONF=$c
$([ "${CEPH_FS:-0}" = 1 ] && echo CEPH_FS=goproxyd)
CEPH_START_SECONDS=$(($(date +%s) - t0))
EOF
	chmod 600 "$dir/s3.env"
	return 0
}

start() {
	local dir=$1 try
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	for try in 1 2; do
		rm -f "$dir/s3.env"
		export -f attempt spawn free_port wait_port start_fs
		if timeout "$CEPH_TIMEOUT" bash -c 'attempt "$1"' _ "$dir"; then
			return 0
		fi
		echo "ceph.sh: start attempt $try failed (logs kept in $dir/log.$try)" >&2
		stop "$dir"
		rm -rf "$dir/log.$try"
		mv "$dir/log" "$dir/log.$try"
	done
	for f in "$dir"/log.*/*.out "$dir"/log.*/*.log; do
		echo "== $f" >&2
		tail -n 5 "$f" >&2
	done
	return 1
}

case "${1:-}" in
start) start "${2:?DIR}" ;;
mount) mount_fs "${2:?DIR}" "${3:?MOUNTPOINT}" ;;
stop) stop "${2:?DIR}" ;;
*) echo "usage: $0 start DIR | mount DIR MOUNTPOINT | stop DIR" >&2; exit 2 ;;
esac
