/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memcached's text-protocol authentication (-Y FILE): a connection's
 * first command must be a set whose data is "user password", matched
 * against the file's user:password lines; until then every request is
 * answered CLIENT_ERROR unauthenticated, as memcached answers it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_internal.h"

#define AUTH_FILE_MAX (1024 * 1024)

struct auth_entry {
	char *user, *pass;
	size_t ulen, plen;
};

static struct auth_entry *entries;
static unsigned nentries;
static char *auth_text;

static const char msg_unauth[] = "CLIENT_ERROR unauthenticated\r\n";
static const char msg_format[] =
	"CLIENT_ERROR bad authentication token format\r\n";
static const char msg_failure[] = "CLIENT_ERROR authentication failure\r\n";
static const char msg_stored[] = "STORED\r\n";

bool dp_auth_on;

void dp_auth_free(void)
{
	free(entries);
	free(auth_text);
	entries = NULL;
	auth_text = NULL;
	nentries = 0;
	dp_auth_on = false;
}

int dp_auth_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	size_t n;
	unsigned cap = 0;

	if (!f) {
		snprintf(err, errlen,
			 "Could not open authfile [%s] for reading: %s", path,
			 strerror(errno));
		return -EINVAL;
	}
	auth_text = malloc(AUTH_FILE_MAX + 1);
	if (!auth_text) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	n = fread(auth_text, 1, AUTH_FILE_MAX + 1, f);
	fclose(f);
	if (n > AUTH_FILE_MAX) {
		snprintf(err, errlen, "authfile [%s] is larger than 1 MiB",
			 path);
		dp_auth_free();
		return -EINVAL;
	}
	auth_text[n] = '\0';
	for (char *save, *l = strtok_r(auth_text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(l, ':');
		size_t len = strlen(l);

		if (len && l[len - 1] == '\r')
			l[--len] = '\0';
		if (!len)
			continue;
		if (!colon || colon == l) {
			snprintf(err, errlen,
				 "Authfile [%s] has a malformed entry. Should "
				 "be 'user:password'",
				 path);
			dp_auth_free();
			return -EINVAL;
		}
		if (nentries == cap) {
			struct auth_entry *e;

			cap = cap ? 2 * cap : 8;
			e = realloc(entries, cap * sizeof(*e));
			if (!e) {
				snprintf(err, errlen, "out of memory");
				dp_auth_free();
				return -ENOMEM;
			}
			entries = e;
		}
		*colon = '\0';
		entries[nentries].user = l;
		entries[nentries].ulen = (size_t)(colon - l);
		entries[nentries].pass = colon + 1;
		entries[nentries].plen = len - (size_t)(colon - l) - 1;
		nentries++;
	}
	dp_auth_on = true;
	return 0;
}

/* Equal, in a time that depends on the lengths only. */
static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char d = alen != blen;

	for (size_t i = 0; i < alen && i < blen; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* The next space-separated word of [*p, end), or false at the end. */
static bool next_word(const char **p, const char *end, const char **w,
		      size_t *len)
{
	while (*p < end && **p == ' ')
		(*p)++;
	if (*p == end)
		return false;
	*w = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	*len = (size_t)(*p - *w);
	return true;
}

/* memcached reads the token as words: the user, the password, and
 * whatever follows left unread. */
static bool token_ok(const char *tok, size_t len, bool *format)
{
	const char *p = tok, *end = tok + len, *user, *pass;
	size_t ulen, plen;
	bool ok = false;

	*format = next_word(&p, end, &user, &ulen) &&
		  next_word(&p, end, &pass, &plen);
	if (!*format)
		return false;
	/* every entry compared, both halves, whatever matched: the time
	 * says nothing of which user or password came near */
	for (unsigned i = 0; i < nentries; i++) {
		unsigned u = same(user, ulen, entries[i].user, entries[i].ulen);
		unsigned w = same(pass, plen, entries[i].pass, entries[i].plen);

		ok |= (u & w) != 0;
	}
	return ok;
}

void dp_auth_gate(struct dp_conn *k, const char *buf, struct proto_req *req)
{
	const char *reply = msg_unauth;
	bool format;

	if (req->cmd == PROTO_SET && !req->binary) {
		if (token_ok(buf + req->data_off, req->data_len, &format)) {
			k->authed = true;
			reply = msg_stored;
		} else {
			reply = format ? msg_failure : msg_format;
		}
	} else if (req->cmd == PROTO_ERR && req->klen) {
		/* a set too large to be a token, its data swallowed */
		reply = msg_failure;
	}
	/* a binary frame gets the text answer, as memcached gives it */
	req->binary = false;
	req->cmd = PROTO_ERR;
	req->klen = 0;
	req->noreply = false;
	req->err = reply;
}
