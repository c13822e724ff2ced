/* LD_PRELOAD shim for S11 (new TLS handshakes per second without resumption).
 *
 * wrk and h2load both resume TLS sessions when they reconnect: they keep the SSL
 * object of the closed connection (wrk: SSL_clear; h2load: SSL_set_connect_state on the
 * same object), and OpenSSL keeps its session in it, so the next handshake offers that
 * session (TLS 1.3 PSK / TLS 1.2 ticket) and the server resumes it. Both attach every new
 * connection with SSL_set_fd: here that first drops the SSL object's session, so every
 * connection does a full handshake. bench/run.py builds this with `cc -shared` and checks
 * the effect against nginx's $ssl_session_reused.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/ssl.h>

int SSL_set_fd(SSL *s, int fd)
{
    static int (*real_set_fd)(SSL *, int);
    static int (*real_set_session)(SSL *, SSL_SESSION *);
    if (!real_set_fd) {
        real_set_fd = (int (*)(SSL *, int))dlsym(RTLD_NEXT, "SSL_set_fd");
        real_set_session = (int (*)(SSL *, SSL_SESSION *))dlsym(RTLD_NEXT, "SSL_set_session");
    }
    if (real_set_session)
        real_set_session(s, NULL);
    return real_set_fd(s, fd);
}
