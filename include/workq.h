/*
 * workq: a pool of threads running queued tasks in order of submission.
 * The store (disk work), the verifier (checksum-database checks) and the
 * checksum-database locator each run one, so a task that blocks on the
 * disk or the network holds a thread of its own pool and never one of
 * another.  The pool grows when a task is queued and no thread is idle,
 * up to its maximum, so a task does not wait behind one that blocks; a
 * thread beyond the minimum ends after 10 s without work.
 *
 * Contract: workq_submit() never blocks on a task and is safe from any
 * thread, including a pool's own; it refuses (returns -1) once
 * workq_stop() has begun, and the caller then still owns arg.
 * workq_stop() runs every task already queued, then joins the threads and
 * frees the pool; it must not be called from one of the pool's threads.
 * Tasks decide themselves what to do when the daemon stops (see
 * workq_stopping()).
 */
#ifndef GOPROXYD_WORKQ_H
#define GOPROXYD_WORKQ_H

#include <stdbool.h>

struct workq;

typedef void (*workq_fn)(void *arg);

/* A pool of min to max threads (max at least 1); NULL on failure. */
struct workq *workq_start(unsigned min, unsigned max);
int workq_submit(struct workq *q, workq_fn fn, void *arg);
/* True once workq_stop(q) has begun: tasks still queued may end early. */
bool workq_stopping(const struct workq *q);
void workq_stop(struct workq *q);

#endif
