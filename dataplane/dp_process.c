/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlaned as a Unix process, the way memcached is one: the refusal to
 * run as root without -u, the core file limit (-r), the log file of an
 * options file, daemonizing (-d), locked memory (-k), the pid file (-P)
 * and the identity taken once every socket is open (-u).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "dataplane.h"
#include "dp_process.h"

static int failc(int code, char *err, size_t errlen, const char *msg,
		 const char *arg)
{
	snprintf(err, errlen, msg, arg, strerror(errno));
	return -code;
}

/* Output to the options file's log file, appended, as Debian's init
 * script sends memcached's. */
static int open_log(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return failc(EX_CANTCREAT, err, errlen,
			     "cannot open the log file %s: %s", path);
	if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
		close(fd);
		return failc(EX_OSERR, err, errlen, "log file %s: %s", path);
	}
	close(fd);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return 0;
}

/* Into the background: a child of init in its own session, in /, its
 * input and (unless -v or a log file keeps them) output on /dev/null. */
static int daemonize(const struct dp_config *cfg, char *err, size_t errlen)
{
	int fd;

	switch (fork()) {
	case -1:
		return failc(EX_OSERR, err, errlen, "fork: %s%s", "");
	case 0:
		break;
	default:
		_exit(EXIT_SUCCESS);
	}
	if (setsid() < 0)
		return failc(EX_OSERR, err, errlen, "setsid: %s%s", "");
	if (chdir("/") != 0)
		return failc(EX_OSERR, err, errlen, "chdir /: %s%s", "");
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return failc(EX_OSERR, err, errlen, "/dev/null: %s%s", "");
	dup2(fd, STDIN_FILENO);
	if (!cfg->verbose && !cfg->logfile[0]) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

int dp_process_start(const struct dp_config *cfg, char *err, size_t errlen)
{
	int rc;

	if ((getuid() == 0 || geteuid() == 0) && !cfg->user[0]) {
		snprintf(err, errlen,
			 "can't run as root without the -u switch");
		return -EX_USAGE;
	}
	if (cfg->user[0] && geteuid() == 0 && !getpwnam(cfg->user)) {
		snprintf(err, errlen, "can't find the user %s to switch to",
			 cfg->user);
		return -EX_NOUSER;
	}
	if (cfg->coredumps) {
		struct rlimit rl;

		/* the most the hard limit allows, raised first when root */
		if (getrlimit(RLIMIT_CORE, &rl) == 0) {
			struct rlimit want = {RLIM_INFINITY, RLIM_INFINITY};

			if (setrlimit(RLIMIT_CORE, &want) != 0) {
				rl.rlim_cur = rl.rlim_max;
				setrlimit(RLIMIT_CORE, &rl);
			}
		}
	}
	if (cfg->logfile[0] && (rc = open_log(cfg->logfile, err, errlen)))
		return rc;
	if (cfg->daemonize && !cfg->foreground &&
	    (rc = daemonize(cfg, err, errlen)))
		return rc;
	if (cfg->lock_memory && mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
		fprintf(stderr,
			"memlaned: warning: -k: mlockall() failed: %s; "
			"proceeding without\n",
			strerror(errno));
	return 0;
}

static int write_pidfile(const char *path, const struct passwd *pw, char *err,
			 size_t errlen)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (fd < 0)
		return failc(EX_CANTCREAT, err, errlen,
			     "cannot write the pid file %s: %s", path);
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return failc(EX_IOERR, err, errlen, "pid file %s: %s", path);
	}
	/* owned by the identity taken, so that it may remove it */
	if (pw && fchown(fd, pw->pw_uid, pw->pw_gid) != 0)
		(void)0;
	close(fd);
	return 0;
}

int dp_process_ready(const struct dp_config *cfg, char *err, size_t errlen)
{
	struct passwd *pw = NULL;
	int rc;

	if (cfg->user[0] && geteuid() == 0 && !(pw = getpwnam(cfg->user))) {
		snprintf(err, errlen, "can't find the user %s to switch to",
			 cfg->user);
		return -EX_NOUSER;
	}
	if (cfg->pidfile[0] &&
	    (rc = write_pidfile(cfg->pidfile, pw, err, errlen)))
		return rc;
	if (!pw || pw->pw_uid == 0)
		return 0;
	if (cfg->unix_path[0] &&
	    chown(cfg->unix_path, pw->pw_uid, pw->pw_gid) != 0)
		return failc(EX_OSERR, err, errlen, "chown %s: %s",
			     cfg->unix_path);
	if (setgroups(0, NULL) != 0)
		return failc(EX_OSERR, err, errlen,
			     "failed to drop supplementary groups: %s%s", "");
	if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
		return failc(EX_OSERR, err, errlen,
			     "failed to assume identity of user %s: %s",
			     cfg->user);
	return 0;
}

void dp_process_end(const struct dp_config *cfg)
{
	/* as memcached: a daemon takes its pid file away as it ends */
	if (cfg->pidfile[0] && cfg->daemonize && !cfg->foreground)
		unlink(cfg->pidfile);
}
