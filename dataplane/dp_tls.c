/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TLS on the socket backend's TCP connections (-Z), with OpenSSL and
 * memcached's -o ssl_... options. One server context for the process;
 * each connection has its own SSL object, driven without blocking by the
 * core that owns the connection: a read or write that OpenSSL cannot
 * finish now says EAGAIN, as the socket would, and the connection waits
 * in epoll for what OpenSSL asked for.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "dp_internal.h"

static SSL_CTX *ctx;

static int tls_fail(char *err, size_t errlen, const char *what,
		    const char *file)
{
	char why[256];

	ERR_error_string_n(ERR_get_error(), why, sizeof(why));
	snprintf(err, errlen, "%s %s: %s", what, file, why);
	ERR_clear_error();
	return -EX_USAGE; /* memcached's exit code for it */
}

int dp_tls_setup(const struct dp_config *cfg, char *err, size_t errlen)
{
	static const int versions[] = {TLS1_VERSION, TLS1_1_VERSION,
				       TLS1_2_VERSION, TLS1_3_VERSION};
	static const int modes[] = {
		SSL_VERIFY_NONE,
		SSL_VERIFY_PEER,
		SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
		SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE,
	};
	const char *key = cfg->ssl_key[0] ? cfg->ssl_key : cfg->ssl_chain_cert;

	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return tls_fail(err, errlen, "TLS:", "no context");
	if (!SSL_CTX_set_min_proto_version(ctx,
					   versions[cfg->ssl_min_version & 3]))
		return tls_fail(err, errlen, "ssl_min_version", "");
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->ssl_chain_cert) != 1)
		return tls_fail(err, errlen,
				"Error loading the certificate chain:",
				cfg->ssl_chain_cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		return tls_fail(err, errlen, "Error loading the key:", key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return tls_fail(
			err, errlen,
			"Error validating the certificate and key:", key);
	if (cfg->ssl_ca_cert[0]) {
		STACK_OF(X509_NAME) *names =
			SSL_load_client_CA_file(cfg->ssl_ca_cert);

		if (!names || SSL_CTX_load_verify_locations(
				      ctx, cfg->ssl_ca_cert, NULL) != 1)
			return tls_fail(err, errlen, "Error loading the CA:",
					cfg->ssl_ca_cert);
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	if (cfg->ssl_ciphers[0] &&
	    SSL_CTX_set_cipher_list(ctx, cfg->ssl_ciphers) != 1)
		return tls_fail(err, errlen,
				"Error setting the ciphers:", cfg->ssl_ciphers);
	SSL_CTX_set_verify(ctx, modes[cfg->ssl_verify_mode & 3], NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	if (cfg->ssl_session_cache)
		SSL_CTX_set_session_id_context(ctx, (const void *)"memlane", 7);
	else
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return 0;
}

void dp_tls_free(void)
{
	SSL_CTX_free(ctx);
	ctx = NULL;
}

int dp_tls_accept(struct dp_conn *k)
{
	k->tls = SSL_new(ctx);
	if (!k->tls || SSL_set_fd(k->tls, k->fd) != 1) {
		SSL_free(k->tls);
		k->tls = NULL;
		return -ENOMEM;
	}
	SSL_set_accept_state(k->tls);
	return 0;
}

/* What an SSL call that did not finish means, as a socket's errno:
 * EAGAIN with the direction OpenSSL waits for, or ECONNRESET. */
static ssize_t tls_again(struct dp_conn *k, int rc)
{
	switch (SSL_get_error(k->tls, rc)) {
	case SSL_ERROR_WANT_READ:
		k->tls_wants_write = false;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		k->tls_wants_write = true;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0; /* the peer's close_notify: the end of input */
	default:
		/* a failed handshake (no TLS, a certificate refused) or a
		 * broken record: the connection ends, nothing answered */
		ERR_clear_error();
		errno = ECONNRESET;
		return -1;
	}
}

ssize_t dp_tls_read(struct dp_conn *k, void *buf, size_t len)
{
	int n;

	ERR_clear_error();
	n = SSL_read(k->tls, buf, (int)ML_MIN(len, (size_t)INT32_MAX));
	if (n > 0) {
		k->tls_wants_write = false;
		return n;
	}
	return tls_again(k, n);
}

ssize_t dp_tls_write(struct dp_conn *k, const void *buf, size_t len)
{
	int n;

	ERR_clear_error();
	n = SSL_write(k->tls, buf, (int)ML_MIN(len, (size_t)INT32_MAX));
	if (n > 0)
		return n;
	if (n == 0)
		n = -1;
	return tls_again(k, n);
}

bool dp_tls_pending(const struct dp_conn *k)
{
	return k->tls && SSL_pending(k->tls) > 0;
}

void dp_tls_close(struct dp_conn *k)
{
	if (!k->tls)
		return;
	/* one close_notify if the socket takes it now; no waiting */
	if (SSL_is_init_finished(k->tls))
		SSL_shutdown(k->tls);
	ERR_clear_error();
	SSL_free(k->tls);
	k->tls = NULL;
}
