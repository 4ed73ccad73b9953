/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cluster as this node sees it: the members and their weights, and
 * the ring built from them. A change makes a whole new ring off the
 * cores' path, with the next epoch; the dataplane publishes it and hands
 * back the one it replaced, which is freed here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_internal.h"

int ctl_rebuild(struct ctl *c, char *err, size_t errlen)
{
	struct ring_member rm[CTL_MEMBER_MAX];
	struct ring_params rp = {
		.members = rm, .nmembers = c->nmembers, .epoch = c->epoch + 1};
	struct ring *r, *old;
	int rc;

	for (unsigned i = 0; i < c->nmembers; i++) {
		memset(&rm[i], 0, sizeof(rm[i]));
		snprintf(rm[i].host, sizeof(rm[i].host), "%s",
			 c->members[i].host);
		rm[i].port = c->members[i].port;
		/* the dead, the left, and those we cannot reach own nothing */
		rm[i].weight = c->view[i].state <= GOSSIP_SUSPECT &&
					       c->view[i].resolved
				       ? c->members[i].weight
				       : 0;
	}
	rc = ring_create(&rp, &r);
	if (rc) {
		snprintf(err, errlen, "cannot build the ring: %s",
			 rc == -EINVAL ? "no member would own a key"
				       : strerror(-rc));
		return rc;
	}
	old = c->ops->publish(c->ops->arg, r);
	ctl_handoff_plan(c, old, r);
	ring_free(old);
	c->ring = r;
	c->epoch++;
	return 0;
}

int ctl_set_weight(struct ctl *c, unsigned member, uint32_t weight)
{
	char err[128];
	uint32_t was;
	int rc;

	pthread_mutex_lock(&c->lock);
	if (member >= c->nmembers) {
		pthread_mutex_unlock(&c->lock);
		return -EINVAL;
	}
	was = c->members[member].weight;
	c->members[member].weight = weight;
	rc = ctl_rebuild(c, err, sizeof(err));
	if (rc)
		c->members[member].weight = was;
	else if (c->verbose)
		fprintf(stderr, "memlaned: ring epoch %llu: %s:%u weight %u\n",
			(unsigned long long)c->epoch, c->members[member].host,
			c->members[member].port, weight);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

uint64_t ctl_epoch(const struct ctl *c)
{
	return c->epoch;
}

uint16_t ctl_admin_port(const struct ctl *c)
{
	return c->port;
}

int ctl_start(const struct ctl_params *p, struct ctl **out, char *err,
	      size_t errlen)
{
	struct ctl *c;
	int rc;

	if (p->nmembers == 0 || p->nmembers > CTL_MEMBER_MAX ||
	    p->self >= p->nmembers) {
		snprintf(err, errlen, "bad cluster: %u members", p->nmembers);
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	memcpy(c->members, p->members, sizeof(*p->members) * p->nmembers);
	c->nmembers = p->nmembers;
	c->self = p->self;
	c->ops = p->ops;
	c->verbose = p->verbose;
	snprintf(c->token, sizeof(c->token), "%s", p->token ? p->token : "");
	for (unsigned i = 0; i < c->nmembers; i++) {
		c->view[i].state = GOSSIP_ALIVE;
		c->view[i].resolved = true; /* the dataplane resolved them */
	}
	rc = ctl_rebuild(c, err, errlen);
	if (!rc && p->gossip.on)
		rc = ctl_gossip_start(c, p, err, errlen);
	if (!rc && p->admin_addr)
		rc = ctl_admin_start(c, p, err, errlen);
	if (rc) {
		ctl_stop(c);
		return rc;
	}
	*out = c;
	return 0;
}

void ctl_stop(struct ctl *c)
{
	if (!c)
		return;
	ctl_admin_stop(c);
	ctl_gossip_stop(c);
	if (c->ring)
		ring_free(c->ops->publish(c->ops->arg, NULL));
	pthread_mutex_destroy(&c->lock);
	free(c);
}
