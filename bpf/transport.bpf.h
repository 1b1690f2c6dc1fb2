/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The way out of the kernel: the maps records leave through (a perf event
 * array, a ring buffer), and opening, heading and submitting one record on
 * whichever transport the run chose.
 */
#ifndef DS_TRANSPORT_BPF_H
#define DS_TRANSPORT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "dual_slot.h"
#include "heap.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} ds_events SEC(".maps");

/* Resized from user space; shrunk to one page when the perf transport runs. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} ds_ring SEC(".maps");

/*
 * The ring buffer's doorbell. A BPF ring buffer wakes pollers but raises no
 * SIGIO, and the agent, whose event loop cannot poll a foreign fd, drains it
 * on a timer: every --interval, or it could lose the start of a burst. A
 * record that leaves ds_ring at least half full (ds_cfg.bell_at) also writes
 * 8 bytes here, a perf event array whose events wake on every sample and
 * signal the agent as perf buffers do, so an idle agent drains once a second
 * and a burst at once. At most one ring per DS_BELL_GAP_NS: a storm that
 * keeps the ring above half costs one perf output per 5 ms, not one per
 * record (the racy check can let two CPUs ring together: harmless).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} ds_bell SEC(".maps");

/*
 * The agent sets it when it stops (src/agent/session.ts): from then on no
 * record leaves, so the seconds the kernel takes to release the syscall
 * tracepoints (a grace period each) produce nothing to drain or to lose, and a
 * run's last record is from before its stop. A section of its own, so that the
 * agent's write of the section's map holds nothing else; a plain load, not a
 * map lookup: a helper call here made the serializers spill a bounded length
 * that 6.1's verifier then no longer saw bounded (ds_emit refused).
 */
volatile __u32 ds_stop SEC(".data.stop") = 0;

static __always_inline int stopping(void)
{
	return ds_stop != 0;
}

#define DS_BELL_GAP_NS 5000000ull

static __u64 ds_bell_ns;

static __always_inline void ring_bell(void *ctx)
{
	__u64 now;

	if (bpf_ringbuf_query(&ds_ring, BPF_RB_AVAIL_DATA) < ds_cfg.bell_at)
		return;
	now = bpf_ktime_get_ns();
	if (now - ds_bell_ns < DS_BELL_GAP_NS)
		return;
	/* Only a ring that went out silences the bell: a CPU with no bell open (one onlined after start) tries each time. */
	if (!bpf_perf_event_output(ctx, &ds_bell, BPF_F_CURRENT_CPU, &now, sizeof(now)))
		ds_bell_ns = now;
}

/* The header every record starts with; hdr->tag and hdr->size are the caller's. */
static __always_inline void hdr_fill(struct ds_header *h, struct ds_counters *c, __u32 type)
{
	h->ktime_ns = bpf_ktime_get_ns();
	h->seq = ++c->seq;
	h->type = type;
	h->version = DS_WIRE_VERSION;
	h->encoding = ds_cfg.encoding;
	h->cpu = bpf_get_smp_processor_id();
	h->mode = ds_cfg.mode;
	h->slots = ds_cfg.slots;
	h->transport = ds_cfg.transport;
	h->guard = ds_cfg.guard;
}

/*
 * Opens a record of `size` bytes: a ring buffer reservation of exactly that
 * size (no slot 0, no copy), or slot 0 through a dynptr. Returns its first
 * `head` bytes to fill in, or NULL when there is no room (counted in
 * output_fail; a failed slot lookup in lookup_fail) or the agent is stopping
 * (not counted: nothing is missing from the run).
 */
static __always_inline void *record_begin(struct bpf_dynptr *dp, void **s0, __u32 *gen0, __u32 size, __u32 head,
					  struct ds_counters *c)
{
	void *p;

	if (stopping())
		return NULL;
	if (ds_cfg.transport == DS_TRANSPORT_RINGBUF) {
		if (bpf_ringbuf_reserve_dynptr(&ds_ring, size, 0, dp)) {
			bpf_ringbuf_discard_dynptr(dp, 0);
			c->output_fail++;
			return NULL;
		}
	} else {
		*s0 = sd_get_percpu_data(size, 0, OWNER_SERIALIZER, gen0);
		if (!*s0)
			return NULL;
		bpf_dynptr_from_mem(*s0, SD_EVENT_MAX, 0, dp);
	}
	p = bpf_dynptr_data(dp, 0, head);
	if (!p) {
		if (ds_cfg.transport == DS_TRANSPORT_RINGBUF)
			bpf_ringbuf_discard_dynptr(dp, 0);
		else
			sd_put_percpu_data(*s0, 0, OWNER_SERIALIZER, *gen0, 1);
		c->output_fail++;
	}
	return p;
}

/*
 * Sends a finished record: submits the ring buffer reservation, or copies slot 0
 * out through the configured transport. `events` counts what reached user
 * space's buffer; `output_fail` what did not (a kernel-side drop).
 */
static __always_inline void record_submit(void *ctx, struct bpf_dynptr *dp, void *s0, __u32 size, struct ds_counters *c)
{
	long err;

	if (ds_cfg.transport == DS_TRANSPORT_RINGBUF) {
		bpf_ringbuf_submit_dynptr(dp, BPF_RB_NO_WAKEUP);
		err = 0;
	} else {
		/* Kept: clang drops a bound it can prove, which 6.1's verifier cannot once the size was spilled. */
		asm volatile("" : "+r"(size));
		if (size > SD_EVENT_MAX)
			size = SD_EVENT_MAX;
		if (ds_cfg.transport == DS_TRANSPORT_PERF)
			err = bpf_perf_event_output(ctx, &ds_events, BPF_F_CURRENT_CPU, s0, size);
		else
			err = bpf_ringbuf_output(&ds_ring, s0, size, BPF_RB_NO_WAKEUP);
	}
	if (err) {
		c->output_fail++;
	} else {
		c->events++;
		c->bytes += size;
		if (ds_cfg.transport != DS_TRANSPORT_PERF && ds_cfg.bell_at)
			ring_bell(ctx);
	}
}

#endif /* DS_TRANSPORT_BPF_H */
