/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memlaned driven by libmemcached, the C client most memcached users link:
 * every storage, retrieval and arithmetic call, multi-get with
 * memcached_mget() and memcached_fetch_result(), and the error codes
 * libmemcached derives from the server's replies. Every test runs three
 * times: with blocking and with non-blocking I/O
 * (MEMCACHED_BEHAVIOR_NO_BLOCK), and over the binary protocol
 * (MEMCACHED_BEHAVIOR_BINARY_PROTOCOL).
 *
 * The test starts the server itself: the binary named by $MEMLANED, with
 * two worker cores, on a free loopback port in 20000-29999, and stops it
 * by its PID at the end; the server must then exit with status 0.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <libmemcached/memcached.h>

#define LM_HOST	     "127.0.0.1"
#define LM_PORT_LO   20000
#define LM_PORT_SPAN 10000
#define LM_START_MS  20000
#define LM_STOP_MS   15000
#define LM_MGET_KEYS 200
#define LM_LARGE     (512 * 1024)

/* The server under test; a signal handler reads the PID. */
static volatile pid_t lm_pid = -1;
static int lm_port;

/* ------------------------------------------------------------------------
 * The server process
 * ---------------------------------------------------------------------- */

static void lm_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static bool lm_bind_ok(int type, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, type, 0);
	bool ok;

	if (fd < 0)
		return false;
	inet_pton(AF_INET, LM_HOST, &sa.sin_addr);
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* A port free for TCP and UDP. A running server's SO_REUSEPORT socket
 * makes a plain bind fail, so a port in use by another test is skipped. */
static int lm_free_port(void)
{
	int i;

	for (i = 0; i < 500; i++) {
		int port = LM_PORT_LO + rand() % LM_PORT_SPAN;

		if (lm_bind_ok(SOCK_STREAM, port) &&
		    lm_bind_ok(SOCK_DGRAM, port))
			return port;
	}
	return -1;
}

static bool lm_can_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	inet_pton(AF_INET, LM_HOST, &sa.sin_addr);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Runs in the child: the server's command line, then exec. */
static void lm_exec(const char *path, int port)
{
	char pbuf[16];
	const char *argv[16];
	const char *base = strrchr(path, '/');
	int n = 0;

	snprintf(pbuf, sizeof(pbuf), "%d", port);
	argv[n++] = path;
	argv[n++] = "-p";
	argv[n++] = pbuf;
	argv[n++] = "-l";
	argv[n++] = LM_HOST;
	argv[n++] = "-t";
	argv[n++] = "2";
	argv[n++] = "-m";
	argv[n++] = "64";
	/* as root, memlaned and memcached alike want to be told which user
	 * to run as */
	(void)base;
	if (geteuid() == 0) {
		argv[n++] = "-u";
		argv[n++] = "root";
	}
	argv[n] = NULL;
	execv(path, (char *const *)argv);
	fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
	_exit(127);
}

/* Stops the server: SIGTERM, then SIGKILL if it lingers. Returns its
 * wait status, or -1 when it had to be killed. */
static int lm_stop(void)
{
	pid_t pid = lm_pid;
	int status = 0;
	long waited;

	if (pid <= 0)
		return 0;
	kill(pid, SIGTERM);
	for (waited = 0; waited < LM_STOP_MS; waited += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			lm_pid = -1;
			return status;
		}
		lm_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	lm_pid = -1;
	return -1;
}

static void lm_on_signal(int sig)
{
	if (lm_pid > 0)
		kill(lm_pid, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int lm_start(void)
{
	const char *path = getenv("MEMLANED");
	int attempt;

	if (!path || !*path) {
		fprintf(stderr, "MEMLANED is not set\n");
		return -EINVAL;
	}
	for (attempt = 0; attempt < 5; attempt++) {
		int status;
		long waited;
		pid_t pid;

		lm_port = lm_free_port();
		if (lm_port < 0)
			return -EADDRINUSE;
		pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0)
			lm_exec(path, lm_port);
		lm_pid = pid;
		for (waited = 0; waited < LM_START_MS; waited += 20) {
			/* a connect may reach another test's server that took
			 * the port first: ours must still run a moment later,
			 * since it exits at once when it cannot listen */
			if (lm_can_connect(lm_port)) {
				lm_sleep_ms(200);
				if (waitpid(pid, &status, WNOHANG) != pid)
					return 0;
				lm_pid = -1;
				break;
			}
			if (waitpid(pid, &status, WNOHANG) == pid) {
				lm_pid = -1;
				if (WIFEXITED(status) &&
				    WEXITSTATUS(status) == 127)
					return -ENOENT; /* exec failed */
				break;
			}
			lm_sleep_ms(20);
		}
		if (lm_pid > 0) {
			/* Running but not listening: give up. */
			lm_stop();
			return -ETIMEDOUT;
		}
		/* It exited (a port taken meanwhile?): another port. */
	}
	return -ECHILD;
}

static int lm_group_setup(void **state)
{
	int rc;

	(void)state;
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	signal(SIGTERM, lm_on_signal);
	signal(SIGINT, lm_on_signal);
	rc = lm_start();
	if (rc) {
		fprintf(stderr, "cannot start the server: %s\n", strerror(-rc));
		return -1;
	}
	return 0;
}

static int lm_group_teardown(void **state)
{
	int status;

	(void)state;
	status = lm_stop();
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr,
			"the server did not exit cleanly on SIGTERM"
			" (wait status %d)\n",
			status);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Clients
 * ---------------------------------------------------------------------- */

/* How the client talks: blocking or non-blocking sockets. */
struct lm_mode {
	bool noblock;
	bool binary;
};

static const struct lm_mode lm_blocking = {false, false};
static const struct lm_mode lm_nonblocking = {true, false};
static const struct lm_mode lm_binary = {false, true};

/* Keys are prefixed with the mode so the two runs never share one. */
static char lm_keybuf[4][300];

static const char *lm_key(void **state, int slot, const char *fmt, ...)
{
	const struct lm_mode *m = *state;
	char tail[260];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tail, sizeof(tail), fmt, ap);
	va_end(ap);
	snprintf(lm_keybuf[slot], sizeof(lm_keybuf[slot]), "%c:%s",
		 m->binary    ? 'x'
		 : m->noblock ? 'n'
			      : 'b',
		 tail);
	return lm_keybuf[slot];
}

static bool lm_bin(void **state)
{
	return ((const struct lm_mode *)*state)->binary;
}

/* The client lives in a static: cmocka's state points at the mode. */
static memcached_st *lm_mc;

static int lm_test_setup(void **state)
{
	const struct lm_mode *m = *state;

	lm_mc = memcached_create(NULL);
	if (!lm_mc)
		return -1;
	if (memcached_server_add(lm_mc, LM_HOST, (in_port_t)lm_port) !=
	    MEMCACHED_SUCCESS)
		goto free_client;
	memcached_behavior_set(lm_mc, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
	memcached_behavior_set(lm_mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	memcached_behavior_set(lm_mc, MEMCACHED_BEHAVIOR_NO_BLOCK,
			       m->noblock ? 1 : 0);
	memcached_behavior_set(lm_mc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL,
			       m->binary ? 1 : 0);
	memcached_behavior_set(lm_mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 20000);
	memcached_behavior_set(lm_mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
			       10000);
	return 0;
free_client:
	memcached_free(lm_mc);
	lm_mc = NULL;
	return -1;
}

static int lm_test_teardown(void **state)
{
	(void)state;
	memcached_free(lm_mc);
	lm_mc = NULL;
	return 0;
}

#define LM_OK(expr) assert_int_equal((expr), MEMCACHED_SUCCESS)

static void lm_set(const char *key, const void *val, size_t len, uint32_t flags)
{
	LM_OK(memcached_set(lm_mc, key, strlen(key), val, len, 0, flags));
}

/* Asserts that key holds exactly val/len/flags. */
static void lm_expect(const char *key, const void *val, size_t len,
		      uint32_t flags)
{
	memcached_return_t rc;
	uint32_t got_flags = 0;
	size_t got_len = 0;
	char *got = memcached_get(lm_mc, key, strlen(key), &got_len, &got_flags,
				  &rc);

	if (rc != MEMCACHED_SUCCESS)
		fail_msg("get %s: %s", key, memcached_strerror(lm_mc, rc));
	assert_int_equal(got_len, len);
	assert_int_equal(got_flags, flags);
	/* libmemcached returns NULL for an empty value. */
	if (len) {
		assert_non_null(got);
		assert_memory_equal(got, val, len);
	}
	free(got);
}

static void lm_expect_missing(const char *key)
{
	memcached_return_t rc;
	uint32_t flags;
	size_t len;
	char *got = memcached_get(lm_mc, key, strlen(key), &len, &flags, &rc);

	assert_null(got);
	assert_int_equal(rc, MEMCACHED_NOTFOUND);
}

/* The code memcached_fetch_result() leaves when the results are done:
 * MEMCACHED_END, or MEMCACHED_NOTFOUND in libmemcached 1.1. */
static void lm_assert_end(memcached_return_t rc)
{
	if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND)
		fail_msg("after the last result: %s",
			 memcached_strerror(lm_mc, rc));
}

static uint64_t lm_cas_of(const char *key)
{
	const char *keys[1] = {key};
	size_t lens[1] = {strlen(key)};
	memcached_result_st *res;
	memcached_return_t rc;
	uint64_t cas;

	LM_OK(memcached_mget(lm_mc, keys, lens, 1));
	res = memcached_fetch_result(lm_mc, NULL, &rc);
	assert_non_null(res);
	cas = memcached_result_cas(res);
	memcached_result_free(res);
	assert_null(memcached_fetch_result(lm_mc, NULL, &rc));
	lm_assert_end(rc);
	return cas;
}

/* ------------------------------------------------------------------------
 * Tests
 * ---------------------------------------------------------------------- */

static void test_set_get(void **state)
{
	static char bin[70000];
	const char *k;
	size_t i;

	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (char)(i * 7 + i / 251);
	k = lm_key(state, 0, "plain");
	lm_set(k, "hello", 5, 0);
	lm_expect(k, "hello", 5, 0);
	lm_set(k, "again", 5, 0);
	lm_expect(k, "again", 5, 0);

	k = lm_key(state, 0, "empty");
	lm_set(k, "", 0, 0);
	lm_expect(k, "", 0, 0);

	k = lm_key(state, 0, "flags");
	lm_set(k, "f", 1, 0xfedcba98u);
	lm_expect(k, "f", 1, 0xfedcba98u);

	/* Every byte value, "\r\nEND\r\n" included, in a multi-packet value. */
	memcpy(bin + 100, "\r\nEND\r\n", 7);
	k = lm_key(state, 0, "binary");
	lm_set(k, bin, sizeof(bin), 1);
	lm_expect(k, bin, sizeof(bin), 1);

	lm_expect_missing(lm_key(state, 0, "never-set"));
}

static void test_add_replace_append_prepend(void **state)
{
	const char *k = lm_key(state, 0, "arap");
	const char *nk = lm_key(state, 1, "arap-new");

	lm_set(k, "mid", 3, 5);
	/* binary says "exists" where text says NOT_STORED, in memcached */
	assert_int_equal(memcached_add(lm_mc, k, strlen(k), "x", 1, 0, 0),
			 lm_bin(state) ? MEMCACHED_DATA_EXISTS
				       : MEMCACHED_NOTSTORED);
	lm_expect(k, "mid", 3, 5);
	LM_OK(memcached_add(lm_mc, nk, strlen(nk), "new", 3, 0, 0));
	lm_expect(nk, "new", 3, 0);

	LM_OK(memcached_append(lm_mc, k, strlen(k), "-end", 4, 0, 0));
	LM_OK(memcached_prepend(lm_mc, k, strlen(k), "begin-", 6, 0, 0));
	/* append and prepend keep the item's flags. */
	lm_expect(k, "begin-mid-end", 13, 5);

	LM_OK(memcached_replace(lm_mc, k, strlen(k), "repl", 4, 0, 9));
	lm_expect(k, "repl", 4, 9);

	k = lm_key(state, 0, "arap-missing");
	/* a replace of nothing: binary's "not found", text's NOT_STORED */
	assert_int_equal(memcached_replace(lm_mc, k, strlen(k), "x", 1, 0, 0),
			 lm_bin(state) ? MEMCACHED_NOTFOUND
				       : MEMCACHED_NOTSTORED);
	assert_int_equal(memcached_append(lm_mc, k, strlen(k), "x", 1, 0, 0),
			 MEMCACHED_NOTSTORED);
	assert_int_equal(memcached_prepend(lm_mc, k, strlen(k), "x", 1, 0, 0),
			 MEMCACHED_NOTSTORED);
	lm_expect_missing(k);
}

static void test_cas(void **state)
{
	const char *k = lm_key(state, 0, "cas");
	const char *mk = lm_key(state, 1, "cas-missing");
	uint64_t c1, c2;

	lm_set(k, "v1", 2, 0);
	c1 = lm_cas_of(k);
	assert_true(c1 != 0);
	LM_OK(memcached_cas(lm_mc, k, strlen(k), "v2", 2, 0, 0, c1));
	lm_expect(k, "v2", 2, 0);
	c2 = lm_cas_of(k);
	assert_true(c2 != c1);
	/* The old CAS no longer matches. */
	assert_int_equal(memcached_cas(lm_mc, k, strlen(k), "v3", 2, 0, 0, c1),
			 MEMCACHED_DATA_EXISTS);
	lm_expect(k, "v2", 2, 0);
	assert_int_equal(memcached_cas(lm_mc, mk, strlen(mk), "x", 1, 0, 0, 1),
			 MEMCACHED_NOTFOUND);
	lm_expect_missing(mk);
}

static void test_incr_decr(void **state)
{
	const char *k = lm_key(state, 0, "counter");
	const char *mk = lm_key(state, 1, "counter-missing");
	const char *tk = lm_key(state, 2, "counter-text");
	uint64_t v = 0;

	lm_set(k, "40", 2, 0);
	LM_OK(memcached_increment(lm_mc, k, strlen(k), 2, &v));
	assert_int_equal(v, 42);
	LM_OK(memcached_decrement(lm_mc, k, strlen(k), 40, &v));
	assert_int_equal(v, 2);
	/* decr stops at 0. */
	LM_OK(memcached_decrement(lm_mc, k, strlen(k), 100, &v));
	assert_int_equal(v, 0);
	lm_set(k, "18446744073709551615", 20, 0);
	/* incr wraps at 2^64. */
	LM_OK(memcached_increment(lm_mc, k, strlen(k), 3, &v));
	assert_int_equal(v, 2);

	assert_int_equal(memcached_increment(lm_mc, mk, strlen(mk), 1, &v),
			 MEMCACHED_NOTFOUND);
	assert_int_equal(memcached_decrement(lm_mc, mk, strlen(mk), 1, &v),
			 MEMCACHED_NOTFOUND);

	lm_set(tk, "text", 4, 0);
	/* binary status 6 (non-numeric), which libmemcached does not name */
	assert_int_equal(memcached_increment(lm_mc, tk, strlen(tk), 1, &v),
			 lm_bin(state) ? MEMCACHED_UNKNOWN_READ_FAILURE
				       : MEMCACHED_CLIENT_ERROR);
	/* The connection is still good after the error. */
	lm_expect(tk, "text", 4, 0);
}

static void test_touch_delete_flush(void **state)
{
	const char *k = lm_key(state, 0, "tdf");
	const char *mk = lm_key(state, 1, "tdf-missing");
	const char *ek = lm_key(state, 2, "tdf-expire");

	lm_set(k, "t", 1, 0);
	LM_OK(memcached_touch(lm_mc, k, strlen(k), 1000));
	lm_expect(k, "t", 1, 0);
	assert_int_equal(memcached_touch(lm_mc, mk, strlen(mk), 1000),
			 MEMCACHED_NOTFOUND);
	/* A negative TTL expires the item at once; in binary the TTL is
	 * unsigned, and -1 is as far ahead as it goes (memcached's too). */
	lm_set(ek, "e", 1, 0);
	LM_OK(memcached_touch(lm_mc, ek, strlen(ek), -1));
	if (lm_bin(state))
		lm_expect(ek, "e", 1, 0);
	else
		lm_expect_missing(ek);

	LM_OK(memcached_delete(lm_mc, k, strlen(k), 0));
	lm_expect_missing(k);
	assert_int_equal(memcached_delete(lm_mc, k, strlen(k), 0),
			 MEMCACHED_NOTFOUND);

	lm_set(k, "again", 5, 0);
	LM_OK(memcached_flush(lm_mc, 0));
	lm_expect_missing(k);
	lm_set(k, "after", 5, 0);
	lm_expect(k, "after", 5, 0);
}

static void test_mget_fetch_result(void **state)
{
	static char keys[LM_MGET_KEYS][32];
	static char vals[LM_MGET_KEYS][64];
	static bool seen[LM_MGET_KEYS];
	const char *kp[LM_MGET_KEYS];
	size_t kl[LM_MGET_KEYS];
	memcached_result_st *res;
	memcached_return_t rc;
	int i, hits = 0, want = 0;

	for (i = 0; i < LM_MGET_KEYS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%s",
			 lm_key(state, 0, "mget:%d", i));
		snprintf(vals[i], sizeof(vals[i]), "value %d %.*s", i, i % 40,
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		kp[i] = keys[i];
		kl[i] = strlen(keys[i]);
		seen[i] = false;
		/* Every third key is left out: a miss. */
		if (i % 3 == 2)
			continue;
		lm_set(keys[i], vals[i], strlen(vals[i]), (uint32_t)i);
		want++;
	}
	LM_OK(memcached_mget(lm_mc, kp, kl, LM_MGET_KEYS));
	while ((res = memcached_fetch_result(lm_mc, NULL, &rc))) {
		const char *key = memcached_result_key_value(res);
		size_t klen = memcached_result_key_length(res);
		int idx = -1;

		for (i = 0; i < LM_MGET_KEYS; i++) {
			if (kl[i] == klen && !memcmp(keys[i], key, klen)) {
				idx = i;
				break;
			}
		}
		if (idx < 0)
			fail_msg("mget returned a key not asked for: %.*s",
				 (int)klen, key);
		assert_false(seen[idx]);
		assert_int_not_equal(idx % 3, 2);
		seen[idx] = true;
		assert_int_equal(memcached_result_length(res),
				 strlen(vals[idx]));
		assert_memory_equal(memcached_result_value(res), vals[idx],
				    strlen(vals[idx]));
		assert_int_equal(memcached_result_flags(res), (uint32_t)idx);
		assert_true(memcached_result_cas(res) != 0);
		memcached_result_free(res);
		hits++;
	}
	lm_assert_end(rc);
	assert_int_equal(hits, want);

	/* The connection goes on after a multi-get. */
	lm_expect(keys[0], vals[0], strlen(vals[0]), 0);
}

static void test_large_values(void **state)
{
	const char *k = lm_key(state, 0, "large");
	char *big = malloc(LM_LARGE);
	memcached_return_t rc;
	uint32_t flags;
	size_t i, len;
	char *got;

	assert_non_null(big);
	for (i = 0; i < LM_LARGE; i++)
		big[i] = (char)('a' + i % 26);
	lm_set(k, big, LM_LARGE, 3);
	lm_expect(k, big, LM_LARGE, 3);
	LM_OK(memcached_append(lm_mc, k, strlen(k), "!", 1, 0, 0));
	LM_OK(memcached_prepend(lm_mc, k, strlen(k), "Z", 1, 0, 0));
	got = memcached_get(lm_mc, k, strlen(k), &len, &flags, &rc);
	LM_OK(rc);
	assert_non_null(got);
	assert_int_equal(len, LM_LARGE + 2);
	assert_int_equal(flags, 3);
	assert_int_equal(got[0], 'Z');
	assert_memory_equal(got + 1, big, LM_LARGE);
	assert_int_equal(got[LM_LARGE + 1], '!');
	free(got);
	free(big);
}

static void test_errors(void **state)
{
	size_t len = 2 * 1024 * 1024;
	char *huge = malloc(len);
	char longkey[300];
	const char *k = lm_key(state, 0, "after-errors");

	assert_non_null(huge);
	memset(huge, 'h', len);
	/* Over -I (1m): the server refuses it and stays usable. */
	assert_int_equal(memcached_set(lm_mc, "huge", 4, huge, len, 0, 0),
			 MEMCACHED_E2BIG);
	lm_expect_missing("huge");
	free(huge);

	/* A key over 250 bytes never reaches the server. */
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	assert_int_not_equal(memcached_set(lm_mc, longkey, 251, "x", 1, 0, 0),
			     MEMCACHED_SUCCESS);
	lm_set(k, "ok", 2, 0);
	lm_expect(k, "ok", 2, 0);
}

/* Sets sent with noreply, back to back with no reply in between, then
 * read back: the server applies them in order and answers the get that
 * follows. */
static void test_noreply_pipeline(void **state)
{
	char val[32];
	const char *k;
	int i;

	memcached_behavior_set(lm_mc, MEMCACHED_BEHAVIOR_NOREPLY, 1);
	for (i = 0; i < 500; i++) {
		k = lm_key(state, 0, "nr:%d", i % 50);
		snprintf(val, sizeof(val), "%d", i);
		assert_true(memcached_success(memcached_set(
			lm_mc, k, strlen(k), val, strlen(val), 0, 0)));
	}
	memcached_behavior_set(lm_mc, MEMCACHED_BEHAVIOR_NOREPLY, 0);
	for (i = 450; i < 500; i++) {
		k = lm_key(state, 0, "nr:%d", i % 50);
		snprintf(val, sizeof(val), "%d", i);
		lm_expect(k, val, strlen(val), 0);
	}
}

#define LM_T(fn, mode)                                                         \
	cmocka_unit_test_prestate_setup_teardown(                              \
		fn, lm_test_setup, lm_test_teardown, (void *)&(mode))

int main(void)
{
	const struct CMUnitTest blocking[] = {
		LM_T(test_set_get, lm_blocking),
		LM_T(test_add_replace_append_prepend, lm_blocking),
		LM_T(test_cas, lm_blocking),
		LM_T(test_incr_decr, lm_blocking),
		LM_T(test_touch_delete_flush, lm_blocking),
		LM_T(test_mget_fetch_result, lm_blocking),
		LM_T(test_large_values, lm_blocking),
		LM_T(test_errors, lm_blocking),
		LM_T(test_noreply_pipeline, lm_blocking),
	};
	const struct CMUnitTest nonblocking[] = {
		LM_T(test_set_get, lm_nonblocking),
		LM_T(test_add_replace_append_prepend, lm_nonblocking),
		LM_T(test_cas, lm_nonblocking),
		LM_T(test_incr_decr, lm_nonblocking),
		LM_T(test_touch_delete_flush, lm_nonblocking),
		LM_T(test_mget_fetch_result, lm_nonblocking),
		LM_T(test_large_values, lm_nonblocking),
		LM_T(test_errors, lm_nonblocking),
		LM_T(test_noreply_pipeline, lm_nonblocking),
	};
	const struct CMUnitTest binary[] = {
		LM_T(test_set_get, lm_binary),
		LM_T(test_add_replace_append_prepend, lm_binary),
		LM_T(test_cas, lm_binary),
		LM_T(test_incr_decr, lm_binary),
		LM_T(test_touch_delete_flush, lm_binary),
		LM_T(test_mget_fetch_result, lm_binary),
		LM_T(test_large_values, lm_binary),
		LM_T(test_errors, lm_binary),
		LM_T(test_noreply_pipeline, lm_binary),
	};
	int fails = 0;

	fails += cmocka_run_group_tests_name("libmemcached_blocking", blocking,
					     lm_group_setup, lm_group_teardown);
	fails += cmocka_run_group_tests_name("libmemcached_nonblocking",
					     nonblocking, lm_group_setup,
					     lm_group_teardown);
	fails += cmocka_run_group_tests_name("libmemcached_binary", binary,
					     lm_group_setup, lm_group_teardown);
	return fails ? 1 : 0;
}
