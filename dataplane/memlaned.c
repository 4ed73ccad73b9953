/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlaned: one node of a memlane cluster.
 *
 * Parses memcached's flags, becomes the process memcached would be (see
 * dp_process.h), starts DPDK's EAL unprivileged (no huge pages, no PCI,
 * no shared config) with one lcore per worker core, and runs the node
 * until SIGTERM, SIGINT or SIGUSR1.
 */
#include <errno.h>
#include <stdbool.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "dataplane.h"
#include "dp_process.h"

#define EAL_ARGS_MAX 64

/* EAL options that, given in --eal, replace a default of memlaned's. */
static const char *const eal_mem_opts[] = {
	"--no-huge", "-m", "--socket-mem", "--huge-dir", "--in-memory", NULL};
static const char *const eal_pci_opts[] = {"--no-pci", "-a",	  "--allow",
					   "-b",       "--block", NULL};
static const char *const eal_shconf_opts[] = {"--no-shconf", "--in-memory",
					      "--file-prefix", NULL};

/* Whether args (split at spaces) hold one of opts, alone or as opt=... */
static bool eal_given(const char *args, const char *const *opts)
{
	char buf[sizeof(((struct dp_config *)0)->eal_extra)];

	snprintf(buf, sizeof(buf), "%s", args);
	for (char *save, *t = strtok_r(buf, " ", &save); t;
	     t = strtok_r(NULL, " ", &save))
		for (const char *const *o = opts; *o; o++) {
			size_t n = strlen(*o);

			if (strncmp(t, *o, n) == 0 && (!t[n] || t[n] == '='))
				return true;
		}
	return false;
}

/* Whether the free 2 MiB huge pages hold mb megabytes. */
static bool huge_pages_for(unsigned mb)
{
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/"
			"free_hugepages",
			"r");
	unsigned long n = 0;

	if (f) {
		if (fscanf(f, "%lu", &n) != 1)
			n = 0;
		fclose(f);
	}
	if (n * 2 < mb)
		fprintf(stderr,
			"memlaned: warning: -L: %lu huge pages free, %u MB "
			"wanted; the EAL's memory stays on normal pages\n",
			n, mb);
	return n * 2 >= mb;
}

static void on_signal(int sig)
{
	(void)sig;
	dp_stop();
}

/* "--lcores=0@c0,1@c1,...": worker i runs on the i-th CPU allowed,
 * wrapping when there are more workers than CPUs. */
static int lcores_arg(unsigned n, char *buf, size_t len)
{
	cpu_set_t set;
	int cpus[CPU_SETSIZE], ncpu = 0;
	size_t off;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -errno;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			cpus[ncpu++] = i;
	if (!ncpu)
		return -EINVAL;
	off = (size_t)snprintf(buf, len, "--lcores=");
	for (unsigned i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%u@%d",
					i ? "," : "", i, cpus[i % ncpu]);
	return off < len ? 0 : -ENOSPC;
}

int main(int argc, char **argv)
{
	static char out[4096], err[512], lcores[1024], extra[512], mem[16];
	char *eal[EAL_ARGS_MAX];
	int neal = 0, rc;
	struct dp_config cfg;
	struct sigaction sa;

	rc = dp_config_parse(argc, argv, &cfg, err, sizeof(err), out,
			     sizeof(out));
	if (rc < 0) {
		fprintf(stderr, "memlaned: %s\n", err);
		return -rc;
	}
	if (rc > 0) {
		fputs(out, stdout);
		return 0;
	}
	fputs(cfg.warnings, stderr);
	if ((rc = dp_process_start(&cfg, err, sizeof(err)))) {
		fprintf(stderr, "memlaned: %s\n", err);
		return -rc;
	}
	if (lcores_arg(cfg.ncores, lcores, sizeof(lcores))) {
		fprintf(stderr, "memlaned: cannot list the CPUs allowed\n");
		return 1;
	}
	if (cfg.dataplane == DP_BACKEND_DPDK &&
	    dp_dpdk_prepare(&cfg, err, sizeof(err))) {
		fprintf(stderr, "memlaned: %s\n", err);
		return EX_OSERR;
	}
	eal[neal++] = argv[0];
	/* unprivileged defaults, unless --eal chose otherwise: a DPDK port
	 * on a real NIC names it (-a) and may want huge pages */
	if (!eal_given(cfg.eal_extra, eal_mem_opts)) {
		unsigned mb = dp_eal_memory_mb(&cfg);

		snprintf(mem, sizeof(mem), "%u", mb);
		/* -L with DPDK: the EAL's memory on huge pages, when enough
		 * are free ("try", as memcached's -L says) */
		if (!cfg.largepages || cfg.dataplane != DP_BACKEND_DPDK ||
		    !huge_pages_for(mb))
			eal[neal++] = "--no-huge";
		else if (cfg.verbose)
			fprintf(stderr, "memlaned: -L: EAL memory on huge "
					"pages\n");
		eal[neal++] = "-m";
		eal[neal++] = mem;
	}
	if (!eal_given(cfg.eal_extra, eal_pci_opts))
		eal[neal++] = "--no-pci";
	if (!eal_given(cfg.eal_extra, eal_shconf_opts))
		eal[neal++] = "--no-shconf";
	eal[neal++] = "--no-telemetry";
	eal[neal++] = cfg.verbose > 1 ? "--log-level=lib.eal:info"
				      : "--log-level=lib.eal:error";
	eal[neal++] = lcores;
	strcpy(extra, cfg.eal_extra);
	for (char *save, *t = strtok_r(extra, " ", &save); t;
	     t = strtok_r(NULL, " ", &save)) {
		if (neal == EAL_ARGS_MAX - 1) {
			fprintf(stderr,
				"memlaned: --eal: too many arguments\n");
			return 2;
		}
		eal[neal++] = t;
	}
	eal[neal] = NULL;
	if (rte_eal_init(neal, eal) < 0) {
		fprintf(stderr, "memlaned: cannot start the EAL: %s\n",
			rte_strerror(rte_errno));
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* memcached's graceful stop; every stop here is graceful */
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* as memcached, a hang-up does not end the node */
	signal(SIGHUP, SIG_IGN);

	rc = dp_run(&cfg, err, sizeof(err));
	if (rc)
		fprintf(stderr, "memlaned: %s\n", err);
	rte_eal_cleanup();
	if (!rc)
		dp_process_end(&cfg);
	/* as memcached: EX_OSERR when a port or address cannot be had */
	if (rc == -EADDRINUSE)
		return EX_OSERR;
	if (rc == -EX_NOUSER || rc == -EX_OSERR || rc == -EX_CANTCREAT ||
	    rc == -EX_IOERR || rc == -EX_USAGE)
		return -rc;
	return rc ? 1 : 0;
}
