#!/bin/busybox sh
# /init of the kernel matrix's initramfs (scripts/kernel-matrix.ts builds it):
# mounts what the agent needs, runs each case with the built /dual-slot and
# relays everything over the serial console as "DSM <kind> <case> ..." lines.
# It decides nothing: the host parses the lines and applies the checks, so the
# guest needs no JSON parser and a failed check can name the bytes it saw.
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /usr/bin /usr/sbin /sbin
/bin/busybox mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run # bench's scratch directory
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
# Our lines must not be cut by the kernel's.
echo 1 >/proc/sys/kernel/printk

P=DSM
BIN=/dual-slot
# LAB_EXECS, PREEMPT_EXECS: the counts the host's checks expect.
. /matrix.conf
PROBE=/tmp/dsm-probe
# A program only our execs run, so the agent's --comm filter sees nothing else.
cp /bin/busybox "$PROBE"

# Centiseconds since boot.
now() { read -r up _ </proc/uptime; echo "${up%.*}${up#*.}"; }
say() { echo "$P $*"; }
# relay CASE KIND FILE: every line of FILE, prefixed.
relay() { sed "s/^/$P $2 $1 /" "$3"; }
# Polls FILE for the agent's "attached" line for up to 180 s (TCG is slow,
# and the host may run two guests at once).
attached() {
	i=0
	while [ $i -lt 1800 ]; do
		grep -q attached "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
# stop CASE PID: SIGINT, then the agent's end. (A first try at relaying a hung
# agent's kernel stacks raced with the shell reaping it: false "hung" lines.)
stop() {
	kill -INT "$2"
	wait "$2"
}
# One exec of the probe by this shell (pid 1, the events' ppid), waited
# for; its pid is appended to $pids.
probe() {
	"$PROBE" alpha "two words" "$1" >/dev/null 2>&1 &
	pids="$pids $!"
	wait $!
}
# No agent process and no BPF object held by any process.
leftovers() {
	pidof dual-slot
	grep -lE '^(prog|map)_type' /proc/[0-9]*/fdinfo/* 2>/dev/null
}
# end CASE RC START: the case's status line.
end() { say "case $1 rc=$2 cs=$(($(now) - $3))"; }

say "begin kernel=$(uname -r) cpus=$(nproc) shell=$$ uptime_cs=$(now)"
say "info preempt $(uname -v)"

# doctor: the host checklist's verdict on this kernel.
t=$(now)
$BIN doctor --json >/tmp/doctor.out 2>/tmp/doctor.err
rc=$?
relay doctor out /tmp/doctor.out
relay doctor err /tmp/doctor.err
end doctor $rc "$t"

# capture-<transport>: three known execs and their exits, each event's fields
# checked by the host.
for transport in perf ringbuf; do
	c=capture-$transport
	t=$(now)
	timeout -k 20 300 $BIN run --json --events exec,exit --count 6 --comm dsm-probe --transport $transport \
		>/tmp/$c.out 2>/tmp/$c.err &
	agent=$!
	pids=
	if attached /tmp/$c.err $agent; then
		for i in 1 2 3; do probe $i; done
	fi
	wait $agent
	rc=$?
	say "meta $c pids=$(echo $pids | tr ' ' ,) ppid=$$"
	relay $c out /tmp/$c.out
	relay $c err /tmp/$c.err
	end $c $rc "$t"
done

# filters and events, one agent (each load and detach of every program takes
# a minute under TCG): every program loaded under every kernel-side filter, so
# this kernel's verifier sees each filter's path; one argv and one trusted
# binary dropped, the other probe kept (cgroup 1 is the root: every task is in
# it). Then the syscall records, each triggered for real by the test triggers
# (workloads/io-trigger.c, trigger.c), which no filter drops; the host checks
# the fields of both.
t=$(now)
TRUSTED=/tmp/dsm-trusted
cp /bin/busybox "$TRUSTED"
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
mkdir -p /tmp/ev/mnt
timeout -k 20 300 $BIN run --json --events all --uid 0 --cgroup 1 --allow-exe "$TRUSTED" \
	--allow-argv "$PROBE beta 1" >/tmp/all.out 2>/tmp/all.err &
agent=$!
pids=
if attached /tmp/all.err $agent; then
	for run in "$PROBE beta 1" "$PROBE beta 2" "$TRUSTED"; do
		$run >/dev/null 2>&1 &
		pids="$pids $!"
		wait $!
	done
	(
		cd /tmp/ev || exit 1
		/io-trigger connect udp 127.0.0.1 9
		/io-trigger bind 127.0.0.1
		/io-trigger create new.txt
		/io-trigger renameat . new.txt moved.txt
		/io-trigger link moved.txt hard
		/io-trigger unlink hard
		/io-trigger mount mnt
		# Nothing answers on port 53: the query is sent, the read fails.
		/io-trigger dns connected 127.0.0.1 matrix.example
		/trigger prctl dsm-renamed
		/trigger setsid
		/trigger memfd dsm-memfd
		# These kernels have modules: a file that is not one, refused.
		/io-trigger finit-module /io-trigger
	) >/tmp/events.triggers 2>&1
	# One drain period for the last events.
	sleep 1
fi
stop filters $agent
rc=$?
say "meta filters pids=$(echo $pids | tr ' ' ,)"
grep -E '"event":"(exec|exit)"' /tmp/all.out >/tmp/filters.out
grep -vE '"event":"(exec|exit)"' /tmp/all.out >/tmp/events.out
for c in filters events; do
	relay $c out /tmp/$c.out
	relay $c err /tmp/all.err
done
relay events triggers /tmp/events.triggers
end filters $rc "$t"
end events $rc "$t"

# teardown: after --count (above) and after SIGINT, nothing is left behind:
# exec's raw tracepoint, a syscall pair and the tail-call map (the whole
# default set's detach alone takes a minute under TCG; filters loads it all).
t=$(now)
$BIN run --json --events exec,connect >/dev/null 2>/tmp/teardown.err &
agent=$!
attached /tmp/teardown.err $agent && probe 0
stop teardown $agent
rc=$?
# The kernel frees a program after its last fd closes and an RCU grace period: moments, but seconds
# under TCG with a busy host; up to 30 s (a real leak never clears).
i=0
while [ $i -lt 300 ] && [ -n "$(leftovers)" ]; do sleep 0.1; i=$((i + 1)); done
leftovers | sed "s/^/$P out teardown left /"
$BIN stats --json >/tmp/stats.out 2>/tmp/stats.err
say "meta teardown stats_rc=$?"
relay teardown err /tmp/teardown.err
relay teardown stats /tmp/stats.err
end teardown $rc "$t"

# lab: every slot experiment's figures.
t=$(now)
timeout -k 20 600 $BIN lab --execs "$LAB_EXECS" --irq-execs "$LAB_EXECS" --json >/tmp/lab.out 2>/tmp/lab.err
rc=$?
relay lab out /tmp/lab.out
grep -v '^ℹ lab:' /tmp/lab.err >/tmp/lab.err2
relay lab err /tmp/lab.err2
end lab $rc "$t"

# flood: the benchmark's record on sys_enter, at a rate TCG sustains.
t=$(now)
timeout -k 20 300 $BIN bench --workload flood --transports perf,ringbuf --encodings compact \
	--flood-rates 300 --flood-seconds 1 --json >/tmp/flood.out 2>/tmp/flood.err
rc=$?
relay flood out /tmp/flood.out
grep -v '^\[' /tmp/flood.err >/tmp/flood.err2
relay flood err /tmp/flood.err2
end flood $rc "$t"

# preempt: execs at three SCHED_FIFO priorities and one SCHED_OTHER, all on
# CPU 1, under the guard. If a program on that CPU could be preempted by a
# higher-priority exec running the same program, slot 1 would be taken twice
# and the guard would count a clobber.
t=$(now)
n=$PREEMPT_EXECS
timeout -k 20 300 taskset -c 0 $BIN run --guard --json --events exec --comm dsm-probe >/tmp/preempt.out 2>/tmp/preempt.err &
agent=$!
if attached /tmp/preempt.err $agent; then
	loop="i=0; while [ \$i -lt $n ]; do $PROBE x >/dev/null 2>&1; i=\$((i + 1)); done"
	# time -v: how often the two lowest were preempted (their rusage, children included).
	taskset -c 1 time -v sh -c "$loop" 2>/tmp/l0.time &
	l0=$!
	taskset -c 1 chrt -f 10 time -v sh -c "$loop" 2>/tmp/l1.time &
	l1=$!
	taskset -c 1 chrt -f 50 sh -c "$loop" &
	l2=$!
	taskset -c 1 chrt -f 90 sh -c "$loop" &
	l3=$!
	wait $l0 $l1 $l2 $l3
	# One drain period for the last events.
	sleep 1
fi
stop preempt $agent
rc=$?
ivcsw() { sed -n 's/.*Involuntary context switches: *//p' "$1" 2>/dev/null; }
say "meta preempt execs=$((4 * n)) chrt=$(command -v chrt) preempted_other=$(ivcsw /tmp/l0.time) preempted_fifo10=$(ivcsw /tmp/l1.time)"
relay preempt err /tmp/preempt.err
end preempt $rc "$t"

say "end uptime_cs=$(now)"
sync
# poweroff -f does not wait for the serial port: give the last lines time to leave.
sleep 2
poweroff -f
