/* grace: see grace.h. */
#include "role/grace.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

struct retired {
	struct list_link link;        /* in grace's items */
	struct grace *g;
	struct relay_counters *counters;   /* one reference */
	struct timer end;
	char label[];
};

static void retired_free(struct retired *r)
{
	list_remove(&r->g->items, &r->link);
	loop_timer_stop(r->g->loop, &r->end);
	relay_counters_unref(r->counters);
	loop_defer(r->g->loop, free, r);
}

static void retired_on_end(struct loop *loop, struct timer *t)
{
	struct retired *r = t->data;
	size_t n = relay_set_close_counted(r->g->relays, r->counters);
	if (n)
		log_info("service %s: %zu connection%s still open %llu s after the reload that retired the service; closed",
			 r->label, n, n == 1 ? "" : "s", (unsigned long long)(r->g->ms / 1000));
	retired_free(r);
}

void grace_init(struct grace *g, struct loop *loop, struct relay_set *relays, uint64_t ms)
{
	memset(g, 0, sizeof(*g));
	g->loop = loop;
	g->relays = relays;
	g->ms = ms;
}

void grace_retire(struct grace *g, struct relay_counters *c, const char *label)
{
	if (g->closing || !c || c->relays_active == 0)
		return;
	size_t ll = strlen(label);
	struct retired *r = calloc(1, sizeof(*r) + ll + 1);
	if (!r)
		return;   /* they run to their end, unbounded, as rathole's do */
	memcpy(r->label, label, ll + 1);
	r->g = g;
	r->counters = relay_counters_ref(c);
	loop_timer_init(&r->end, retired_on_end, r);
	list_push_back(&g->items, &r->link);
	log_info("service %s: %llu connection%s keep running for at most %llu s",
		 label, (unsigned long long)c->relays_active, c->relays_active == 1 ? "" : "s",
		 (unsigned long long)(g->ms / 1000));
	loop_timer_start(g->loop, &r->end, g->ms);
}

void grace_fini(struct grace *g)
{
	g->closing = true;
	while (list_first(&g->items))
		retired_free(list_first_entry(&g->items, struct retired, link));
}
