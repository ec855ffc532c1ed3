/* wh_tls.h - the serving certificate of the webhook, replaceable while the server runs.
 *
 * libmicrohttpd cannot swap the certificate of a running daemon, but it can ask for one per handshake
 * (MHD_OPTION_HTTPS_CERT_CALLBACK, GnuTLS's certificate-retrieve callback). wh_tls keeps the current
 * key pair parsed into GnuTLS objects and hands it out from that callback; wh_tls_set() installs a new
 * pair atomically, so a rotated certificate is served from the next handshake on, with no restart and no
 * dropped connection. Established connections keep their session. The chosen alternative, restarting the
 * daemon on a shared listening socket, would have cut in-flight requests.
 *
 * A replaced pair is retired, not freed: a handshake that picked it may still be running. Retired pairs
 * are freed an hour later (a handshake is bounded by the connection idle timeout, far shorter) or by
 * wh_tls_free().
 *
 * Sources: wh_tls_set() (e.g. from a Secret), or wh_tls_watch_files(), a thread that polls the files
 * every interval (stat: inode, size, mtime, ctime; a Kubernetes Secret volume's ..data symlink swap
 * changes the inode) and reloads both when either changed. A pair that does not load (half-written,
 * key not matching) is logged and skipped; the previous one stays in service.
 *
 * GnuTLS's callback has no user pointer, so the callback serves the wh_tls registered with
 * wh_tls_register(): one serving identity per process (the webhook has one). */
#ifndef WH_TLS_H
#define WH_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/strbuf.h"

struct wh_tls;

struct wh_tls *wh_tls_new(void);
/* Stops the file watcher if any and frees every pair. Call after the server using it has stopped. */
void wh_tls_free(struct wh_tls *t);

/* Parses cert_pem (leaf first, chain may follow) and key_pem (PKCS#8, PKCS#1 or SEC1), checks that they
 * belong together and installs them. 0, or -1 with err set (the current pair is kept). */
int wh_tls_set(struct wh_tls *t, const char *cert_pem, const char *key_pem, struct strbuf *err);
/* 1 once a pair is installed. */
int wh_tls_ready(struct wh_tls *t);
/* How many pairs were installed so far (tests wait on it). */
uint64_t wh_tls_generation(struct wh_tls *t);
/* SHA-256 fingerprint (hex) and notAfter of the certificate now served; "" / 0 before the first. */
void wh_tls_current(struct wh_tls *t, char fp[65], int64_t *not_after);

/* Loads the files once (error: -1 with err), then starts the watcher thread. */
int wh_tls_watch_files(struct wh_tls *t, const char *cert_file, const char *key_file, int64_t interval_ms,
		       struct strbuf *err);

/* Makes t the pair served by wh_tls_cert_callback(); NULL unregisters. Returns -1 if another is registered. */
int wh_tls_register(struct wh_tls *t);
/* The gnutls_certificate_retrieve_function2 for MHD_OPTION_HTTPS_CERT_CALLBACK; cast it back to that type
 * (a generic function pointer here keeps GnuTLS out of this header). */
typedef void (*wh_fnptr)(void);
wh_fnptr wh_tls_cert_callback(void);

#endif
