/*
 * clock: CLOCK_MONOTONIC readings for deadlines and durations; unlike the
 * wall clock, it never jumps when the system time is set.
 */
#ifndef GOPROXYD_CLOCK_H
#define GOPROXYD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t monotonic_ms(void)
{
	return monotonic_us() / 1000;
}

#endif
