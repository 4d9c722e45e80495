/*
 * An echo server on ringloop's C API, shared by echo_ringloop (the
 * standalone server) and the ping-pong microbenchmark: one multishot accept,
 * one multishot recv per connection (data from the loop's buffer pool) and
 * one send in flight per connection, with what arrives meanwhile queued
 * behind it.
 */
#ifndef RL_BENCH_ECHO_H
#define RL_BENCH_ECHO_H

#include "ringloop.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rl_echo_server;

/*
 * Start accepting on lfd (a listening socket; the server does not own it),
 * or with lfd < 0 serve only what rl_echo_server_adopt() hands it.
 * Returns 0 and sets *out, or -errno.
 */
int rl_echo_server_start(rl_loop *loop, int lfd, struct rl_echo_server **out);

/* Serve an accepted connection (the server owns fd from here, and closes
 * it on failure). Loop thread only. 0 or -errno. */
int rl_echo_server_adopt(struct rl_echo_server *s, int fd);

/*
 * Stop accepting and close every connection. The server frees itself once
 * the loop has delivered the final completion of each of its ops, so keep
 * running the loop until rl_loop_pending() is 0.
 */
void rl_echo_server_stop(struct rl_echo_server *s);

/* Connections open now, and the bytes echoed so far. */
unsigned rl_echo_server_conns(const struct rl_echo_server *s);
unsigned long long rl_echo_server_bytes(const struct rl_echo_server *s);

#ifdef __cplusplus
}
#endif

#endif /* RL_BENCH_ECHO_H */
