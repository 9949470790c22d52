/* workq: see include/workq.h.  Runs on the caller's thread (submit, stop)
 * and on the pool's own threads (tasks). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "workq.h"

#define IDLE_EXIT_S 10   /* a thread beyond the minimum idle this long ends */

struct task {
	struct task *next;
	workq_fn fn;
	void *arg;
};

struct workq {
	pthread_mutex_t lock;
	pthread_cond_t work;         /* a task was queued, or stopping */
	pthread_cond_t exited;       /* a thread ended (for workq_stop) */
	struct task *head, **tail;   /* the rest under lock too */
	unsigned queued;             /* tasks not yet taken */
	unsigned idle;               /* threads waiting for a task */
	unsigned n_threads, min, max;
	atomic_bool stopping;
};

/* Waits for a task; NULL when the thread should end (the pool stops, or
 * it has been idle too long while more than the minimum run).  Called and
 * returns with q->lock held. */
static struct task *next_task(struct workq *q)
{
	struct task *t;

	while (q->head == NULL && !atomic_load(&q->stopping)) {
		struct timespec until;
		int r;

		q->idle++;
		if (q->n_threads > q->min) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += IDLE_EXIT_S;
			r = pthread_cond_timedwait(&q->work, &q->lock, &until);
		} else
			r = pthread_cond_wait(&q->work, &q->lock);
		q->idle--;
		if (r == ETIMEDOUT && q->head == NULL && q->n_threads > q->min)
			return NULL;
	}
	if ((t = q->head) != NULL) {
		if ((q->head = t->next) == NULL)
			q->tail = &q->head;
		q->queued--;
	}
	return t;   /* NULL: stopping, and nothing left */
}

static void *worker_main(void *arg)
{
	struct workq *q = arg;
	struct task *t;

	pthread_mutex_lock(&q->lock);
	while ((t = next_task(q)) != NULL) {
		pthread_mutex_unlock(&q->lock);
		t->fn(t->arg);
		free(t);
		pthread_mutex_lock(&q->lock);
	}
	q->n_threads--;
	pthread_cond_signal(&q->exited);
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* One more thread; called with q->lock held.  Threads are detached:
 * workq_stop() waits for n_threads to reach 0 instead of joining. */
static int add_thread(struct workq *q)
{
	pthread_attr_t attr;
	pthread_t t;
	int r;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, worker_main, q);
	pthread_attr_destroy(&attr);
	if (r != 0)
		return -1;
	q->n_threads++;
	return 0;
}

struct workq *workq_start(unsigned min, unsigned max)
{
	struct workq *q = calloc(1, sizeof *q);

	if (q == NULL || max == 0 || min > max) {
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->exited, NULL);
	q->tail = &q->head;
	q->min = min;
	q->max = max;
	pthread_mutex_lock(&q->lock);
	while (q->n_threads < min)
		if (add_thread(q) < 0) {
			pthread_mutex_unlock(&q->lock);
			workq_stop(q);
			return NULL;
		}
	pthread_mutex_unlock(&q->lock);
	return q;
}

int workq_submit(struct workq *q, workq_fn fn, void *arg)
{
	struct task *t = malloc(sizeof *t);
	bool spawn;

	if (t == NULL)
		return -1;
	t->next = NULL;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_lock(&q->lock);
	if (atomic_load(&q->stopping)) {
		pthread_mutex_unlock(&q->lock);
		free(t);
		return -1;
	}
	*q->tail = t;
	q->tail = &t->next;
	q->queued++;
	/* Every idle thread already has a task to take: start another, so a
	 * task never waits behind one that blocks, up to the maximum. */
	spawn = q->queued > q->idle && q->n_threads < q->max;
	if (!spawn || add_thread(q) < 0)
		pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

bool workq_stopping(const struct workq *q)
{
	return atomic_load(&q->stopping);
}

void workq_stop(struct workq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	atomic_store(&q->stopping, true);
	pthread_cond_broadcast(&q->work);
	while (q->n_threads > 0)
		pthread_cond_wait(&q->exited, &q->lock);
	pthread_mutex_unlock(&q->lock);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->exited);
	free(q);
}
