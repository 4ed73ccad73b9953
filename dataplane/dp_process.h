/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlaned as a Unix process: memcached's -u, -d, -P, -r and -k.
 */
#ifndef MEMLANE_DP_PROCESS_H
#define MEMLANE_DP_PROCESS_H

#include <stddef.h>

#include "dataplane.h"

/*
 * Before any thread starts: refuses root without -u (memcached's
 * message, EX_USAGE) and an unknown user (EX_NOUSER), raises the core
 * limit (-r), sends output to the options file's log file, daemonizes
 * (-d, unless --foreground) and locks memory (-k). Returns 0 or minus
 * the exit code, with err.
 */
int dp_process_start(const struct dp_config *cfg, char *err, size_t errlen);

/*
 * Once every socket is open: writes the pid file (-P) and, when run as
 * root, takes -u's identity for good. Returns 0 or minus the exit code.
 */
int dp_process_ready(const struct dp_config *cfg, char *err, size_t errlen);

/* At a clean end: a daemon's pid file is removed. */
void dp_process_end(const struct dp_config *cfg);

#endif /* MEMLANE_DP_PROCESS_H */
