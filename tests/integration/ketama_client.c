/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A memcached client as ketama users run one: libmemcached with
 * MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA and weighted ketama, given
 * every node of a cluster. The cluster test drives it:
 *
 *   ketama_client owners SERVERS PREFIX N   prints, per key PREFIXi, the
 *                                           index of the server it maps to
 *   ketama_client set SERVERS PREFIX N      stores PREFIXi = "v:PREFIXi"
 *   ketama_client get SERVERS PREFIX N      reads them back (mget), and
 *                                           fails unless every one matches
 *
 * SERVERS is host:port[:weight],... in the order the nodes were given.
 * Exit status: 0 when every operation succeeded, 1 otherwise (what failed
 * on stderr), 2 for a bad command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmemcached/memcached.h>

static memcached_st *client(char *servers)
{
	memcached_st *mc = memcached_create(NULL);

	if (!mc)
		return NULL;
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_DISTRIBUTION,
			       MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
	for (char *s = strtok(servers, ","); s; s = strtok(NULL, ",")) {
		char *port = strchr(s, ':'), *weight;
		unsigned w = 1;

		if (!port)
			return NULL;
		*port++ = 0;
		weight = strchr(port, ':');
		if (weight) {
			*weight++ = 0;
			w = (unsigned)atoi(weight);
		}
		if (memcached_server_add_with_weight(mc, s,
						     (in_port_t)atoi(port),
						     w) != MEMCACHED_SUCCESS)
			return NULL;
	}
	return mc;
}

static int do_get(memcached_st *mc, const char *prefix, long n)
{
	long bad = 0, got = 0;

	for (long i = 0; i < n; i += 100) {
		char keys[100][64], want[80];
		const char *kp[100];
		size_t kl[100];
		long m = n - i < 100 ? n - i : 100;
		memcached_result_st *r;
		memcached_return_t rc;

		for (long j = 0; j < m; j++) {
			snprintf(keys[j], sizeof(keys[j]), "%s%ld", prefix,
				 i + j);
			kp[j] = keys[j];
			kl[j] = strlen(keys[j]);
		}
		rc = memcached_mget(mc, kp, kl, (size_t)m);
		if (rc != MEMCACHED_SUCCESS) {
			fprintf(stderr, "mget: %s\n",
				memcached_strerror(mc, rc));
			return 1;
		}
		while ((r = memcached_fetch_result(mc, NULL, &rc))) {
			snprintf(want, sizeof(want), "v:%.*s",
				 (int)memcached_result_key_length(r),
				 memcached_result_key_value(r));
			if (memcached_result_length(r) != strlen(want) ||
			    memcmp(memcached_result_value(r), want,
				   strlen(want))) {
				fprintf(stderr, "%s: wrong value\n", want + 2);
				bad++;
			}
			got++;
			memcached_result_free(r);
		}
	}
	if (got != n)
		fprintf(stderr, "get: %ld of %ld keys found\n", got, n);
	return bad || got != n;
}

int main(int argc, char **argv)
{
	memcached_st *mc;
	long n;
	int rc = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: ketama_client owners|set|get "
				"host:port[:weight],... PREFIX N\n");
		return 2;
	}
	n = atol(argv[4]);
	mc = client(argv[2]);
	if (!mc) {
		fprintf(stderr, "bad server list\n");
		return 2;
	}
	for (long i = 0; i < n && !strcmp(argv[1], "owners"); i++) {
		char key[64];

		snprintf(key, sizeof(key), "%s%ld", argv[3], i);
		printf("%u\n", memcached_generate_hash(mc, key, strlen(key)));
	}
	for (long i = 0; i < n && !strcmp(argv[1], "set"); i++) {
		char key[64], val[80];
		memcached_return_t r;

		snprintf(key, sizeof(key), "%s%ld", argv[3], i);
		snprintf(val, sizeof(val), "v:%s", key);
		r = memcached_set(mc, key, strlen(key), val, strlen(val), 0, 0);
		if (r != MEMCACHED_SUCCESS) {
			fprintf(stderr, "set %s: %s\n", key,
				memcached_strerror(mc, r));
			rc = 1;
		}
	}
	if (!strcmp(argv[1], "get"))
		rc = do_get(mc, argv[3], n);
	memcached_free(mc);
	return rc;
}
