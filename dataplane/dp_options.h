/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The parts of memlaned's command line that come from memcached's world:
 * the options file (--config, Debian's /etc/memcached.conf format) and
 * memcached's extended options (-o a,b=c,...).
 */
#ifndef MEMLANE_DP_OPTIONS_H
#define MEMLANE_DP_OPTIONS_H

#include <stddef.h>

#include "dataplane.h"

/* memcached's exit status for the mistakes it does not call EX_USAGE */
#define DP_EXIT_FAILURE 1

/* A command line: the options file's words first, then argv's. */
struct dp_args {
	int argc;
	char **argv;
	char *words; /* the file's words, NUL-separated; argv points in */
};

/*
 * Builds args from argv: when argv holds --config FILE (or
 * --config=FILE), FILE's options come first, so that the command line
 * overrides them. In FILE, '#' starts a comment, each line holds one
 * option and its value, and a line that does not start with '-' is a
 * directive: "logfile PATH" sets cfg->logfile, and any other is refused.
 * Returns 0, or minus an exit code with err saying why.
 */
int dp_args_build(int argc, char **argv, struct dp_args *args,
		  struct dp_config *cfg, char *err, size_t errlen);
void dp_args_free(struct dp_args *args);

/*
 * Applies one -o argument: comma-separated NAME or NAME=VALUE. Options
 * that have no counterpart in memlane are accepted with a line added to
 * cfg->warnings. Returns 0, or minus memcached's exit code with err.
 */
int dp_options_extended(struct dp_config *cfg, const char *arg, char *err,
			size_t errlen);

/* Adds a line to cfg->warnings. */
void dp_options_warn(struct dp_config *cfg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* MEMLANE_DP_OPTIONS_H */
