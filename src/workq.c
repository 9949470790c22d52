/* workq: see include/workq.h.  Runs on the caller's thread (submit, stop)
 * and on the pool's own threads (tasks). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "workq.h"

struct task {
	struct task *next;
	workq_fn fn;
	void *arg;
};

struct workq {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct task *head, **tail;   /* under lock */
	atomic_bool stopping;
	unsigned n_threads;
	pthread_t threads[];
};

static struct task *next_task(struct workq *q)
{
	struct task *t;

	pthread_mutex_lock(&q->lock);
	while (q->head == NULL && !atomic_load(&q->stopping))
		pthread_cond_wait(&q->cond, &q->lock);
	if ((t = q->head) != NULL) {
		if ((q->head = t->next) == NULL)
			q->tail = &q->head;
	}
	pthread_mutex_unlock(&q->lock);
	return t;   /* NULL: stopping, and nothing left */
}

static void *worker_main(void *arg)
{
	struct workq *q = arg;
	struct task *t;

	while ((t = next_task(q)) != NULL) {
		t->fn(t->arg);
		free(t);
	}
	return NULL;
}

struct workq *workq_start(unsigned n)
{
	struct workq *q = calloc(1, sizeof *q + n * sizeof q->threads[0]);

	if (q == NULL || n == 0) {
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->tail = &q->head;
	for (; q->n_threads < n; q->n_threads++)
		if (pthread_create(&q->threads[q->n_threads], NULL, worker_main, q) != 0) {
			workq_stop(q);
			return NULL;
		}
	return q;
}

int workq_submit(struct workq *q, workq_fn fn, void *arg)
{
	struct task *t = malloc(sizeof *t);

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
	pthread_cond_signal(&q->cond);
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
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->n_threads; i++)
		pthread_join(q->threads[i], NULL);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q);
}
