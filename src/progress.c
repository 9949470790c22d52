/* progress: see include/progress.h.  Main thread of a subcommand. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "progress.h"

#define BAR_WIDTH 24

void progress_bytes(char *buf, size_t n, double bytes)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (bytes >= 1024 && u + 1 < sizeof unit / sizeof unit[0]) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

void progress_init(struct progress *p, FILE *out, const char *what)
{
	p->out = out;
	p->tty = isatty(fileno(out)) == 1;
	p->what = what;
	p->start_ms = p->last_ms = monotonic_ms();
}

/* "12/40 files, 1.2 MiB, 300.0 KiB/s, 0:07 left" */
static void describe(const struct progress *p, char *buf, size_t n, unsigned done,
                     unsigned total, uint64_t bytes, int64_t now)
{
	double secs = (double)(now - p->start_ms) / 1000.0;
	char b[32], rate[32], left[32] = "--:--";

	progress_bytes(b, sizeof b, (double)bytes);
	progress_bytes(rate, sizeof rate, secs > 0 ? (double)bytes / secs : 0);
	if (done > 0 && total >= done) {
		unsigned s = (unsigned)(secs / done * (total - done) + 0.5);

		snprintf(left, sizeof left, "%u:%02u", s / 60, s % 60);
	}
	snprintf(buf, n, "%u/%u files, %s, %s/s, %s left", done, total, b, rate, left);
}

static void draw(struct progress *p, unsigned done, unsigned total, uint64_t bytes, int64_t now)
{
	char line[256], bar[BAR_WIDTH + 1];
	unsigned fill = total ? (unsigned)((uint64_t)done * BAR_WIDTH / total) : 0;

	describe(p, line, sizeof line, done, total, bytes, now);
	if (!p->tty) {
		fprintf(p->out, "%s: %s\n", p->what, line);
		fflush(p->out);
		return;
	}
	memset(bar, '#', fill);
	memset(bar + fill, '.', BAR_WIDTH - fill);
	bar[BAR_WIDTH] = '\0';
	fprintf(p->out, "\r%s [%s] %s\033[K", p->what, bar, line);
	fflush(p->out);
}

void progress_tick(struct progress *p, unsigned done, unsigned total, uint64_t bytes)
{
	int64_t now = monotonic_ms();

	if (now - p->last_ms < (p->tty ? PROGRESS_BAR_MS : PROGRESS_LINE_MS))
		return;
	p->last_ms = now;
	draw(p, done, total, bytes, now);
}

void progress_end(struct progress *p, unsigned done, unsigned total, uint64_t bytes)
{
	draw(p, done, total, bytes, monotonic_ms());
	if (p->tty) {
		fputc('\n', p->out);
		fflush(p->out);
	}
}
