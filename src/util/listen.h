/* listen.h - a listening TCP socket for a server (the webhook's HTTPS, the /metrics HTTP server). */
#ifndef KF_LISTEN_H
#define KF_LISTEN_H

#include "strbuf.h"

/* Binds and listens on addr:port (addr NULL or "" = every interface: IPv6 dual-stack where the host has
 * IPv6, else IPv4; port 0 = any free port). Returns the socket (close-on-exec) with the bound port in
 * *port_out, or -1 with err naming the address. */
int kf_listen_tcp(const char *addr, int port, int *port_out, struct strbuf *err);

/* Splits a Go-style bind address "host:port", ":port" or "[v6]:port" into host (malloc'd, "" for any) and
 * port. Returns 0, or -1 with err naming the value. */
int kf_split_host_port(const char *s, char **host, int *port, struct strbuf *err);

#endif
