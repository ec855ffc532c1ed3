/* agent_simrt.h - a simulated container runtime for `kubefledged agent-sim` and the agent's unit tests:
 * an in-memory image store per node behind the agent's runtime interface (agent_runtime.h), so the real
 * agent code runs unchanged. Only the runtime is fake.
 *
 *   pull     sleeps pull_latency_ms, then stores the reference (or fails with containerd's words,
 *            "...: not found", when the reference contains fail_substring)
 *   list     every stored reference, one image each; ids and repo digests are derived from the reference
 *            (so nothing but the reference is stored: about 100 bytes per image)
 *   remove   forgets exactly the reference
 *   fs info  capacity_bytes with image_bytes_each per stored image in use
 *   containers, pins: set by the test helpers below
 * Thread safe (one mutex per store). */
#ifndef AGENT_SIMRT_H
#define AGENT_SIMRT_H

#include <stddef.h>
#include <stdint.h>

#include "agent_runtime.h"

struct agent_simrt_opts {
	int64_t pull_latency_ms;
	const char *fail_substring;  /* NULL or "" = no failures; copied */
	uint64_t image_bytes_each;   /* 0 = 1 MiB */
	uint64_t capacity_bytes;     /* 0 = 100 GiB */
	int pinning;                 /* 1: the runtime can pin (reported as "Pinned", pins recorded) */
};

struct agent_runtime *agent_simrt_new(const struct agent_simrt_opts *o);

/* Test helpers (rt must come from agent_simrt_new). */
void agent_simrt_drop(struct agent_runtime *rt, const char *ref);         /* removed behind the agent's back */
void agent_simrt_put(struct agent_runtime *rt, const char *ref);          /* present before the agent came */
int agent_simrt_has(struct agent_runtime *rt, const char *ref);
uint64_t agent_simrt_pulls(struct agent_runtime *rt);                     /* pull calls so far */
void agent_simrt_add_container(struct agent_runtime *rt, const char *image); /* a container using image */
void agent_simrt_add_spent_puller(struct agent_runtime *rt, const char *image); /* an exited "imagepuller" */
void agent_simrt_set_pinned(struct agent_runtime *rt, const char *ref, int pinned); /* pinned by the runtime */
void agent_simrt_set_fail(struct agent_runtime *rt, const char *substring, int code, const char *message);
void agent_simrt_set_used(struct agent_runtime *rt, uint64_t used_bytes); /* fixed fs usage (disk tests) */

#endif
