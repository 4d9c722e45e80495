# The C test programs, one per concept (included by tests/c/CMakeLists.txt).
# GENERIC programs run once per backend: NAME.epoll and NAME.uring.

rl_test(test_loop test_loop.c GENERIC)
rl_test(test_timer test_timer.c GENERIC)
rl_test(test_threadsafe test_threadsafe.c GENERIC)
rl_test(test_tcp test_tcp.c GENERIC)
rl_test(test_udp test_udp.c GENERIC)
rl_test(test_file test_file.c GENERIC)
rl_test(test_cancel test_cancel.c GENERIC)
rl_test(test_errors test_errors.c GENERIC)
rl_test(test_bufring test_bufring.c GENERIC)
rl_test(test_poll test_poll.c GENERIC)
rl_test(test_fork test_fork.c GENERIC)
rl_test(test_stats test_stats.c GENERIC)
rl_test(test_drain test_drain.c GENERIC)
# File ops (issue 15) and the worker pool; test_pool sets the hook below
# itself, so its io_uring run exercises the pool too.
rl_test(test_fileops test_fileops.c GENERIC)
rl_test(test_pool test_pool.c GENERIC)
# io_uring as if its kernel lacked every file opcode (a test-only hook):
# the same file ops through the pool.
add_test(NAME test_fileops.uring.pool COMMAND test_fileops)
set_tests_properties(test_fileops.uring.pool PROPERTIES
  ENVIRONMENT "RINGLOOP_BACKEND=uring;RINGLOOP_TEST_NO_OPCODES=openat,fsync,fallocate,ftruncate,statx,rename,unlink,mkdir"
  SKIP_RETURN_CODE 77 LABELS "uring" TIMEOUT 120)
rl_test(test_msgring test_msgring.c GENERIC)
rl_test(test_datapath test_datapath.c GENERIC)
# Large reads by readiness (multishot recv leaving the ring and back,
# RL_F_AT_READY).
rl_test(test_readiness test_readiness.c GENERIC)
# Chooses backends itself (explicit, RINGLOOP_BACKEND, auto, seccomp).
rl_test(test_select test_select.c)

# Each io_uring fast path switched off in turn: the fallback must behave
# exactly like the fast path. The words are rl_feature_name()'s, in bit
# order; test_select checks that this list matches the library.
set(RL_FEATURE_WORDS
  multishot_accept multishot_recv bufring defer_taskrun
  coop_taskrun multishot_poll cancel_fd ext_arg bufring_inc ring_fd
  recv_bundle msg_ring)

# rl_test_disabled(PROGRAM WORD): PROGRAM.uring.no_WORD
function(rl_test_disabled prog word)
  set(name ${prog}.uring.no_${word})
  add_test(NAME ${name} COMMAND ${prog})
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "RINGLOOP_BACKEND=uring;RINGLOOP_DISABLE=${word}"
    SKIP_RETURN_CODE 77 LABELS "uring;disable" TIMEOUT 120)
endfunction()

foreach(word IN LISTS RL_FEATURE_WORDS)
  rl_test_disabled(test_tcp ${word})
  rl_test_disabled(test_bufring ${word})
endforeach()
# The programs that exercise the remaining switches most directly.
rl_test_disabled(test_poll multishot_poll)
rl_test_disabled(test_cancel cancel_fd)
rl_test_disabled(test_cancel multishot_accept)
rl_test_disabled(test_cancel multishot_recv)
rl_test_disabled(test_readiness bufring)
rl_test_disabled(test_readiness multishot_recv)
rl_test_disabled(test_readiness bufring_inc)
rl_test_disabled(test_timer ext_arg)
rl_test_disabled(test_threadsafe ext_arg)
rl_test_disabled(test_threadsafe defer_taskrun)
# The pool's completions come back through the thread-safe wakeup.
rl_test_disabled(test_pool defer_taskrun)
rl_test_disabled(test_pool ext_arg)
rl_test_disabled(test_msgring msg_ring)
rl_test_disabled(test_msgring defer_taskrun)
foreach(word send_zc recv_bundle fixed_files bufring_inc)
  rl_test_disabled(test_datapath ${word})
endforeach()
# The opt-in data-path features switched on (send_zc for every size).
foreach(prog test_tcp test_bufring test_cancel test_fork test_udp)
  add_test(NAME ${prog}.uring.opt_in_data COMMAND ${prog})
  set_tests_properties(${prog}.uring.opt_in_data PROPERTIES
    ENVIRONMENT "RINGLOOP_BACKEND=uring;RINGLOOP_ENABLE=send_zc,fixed_files;RINGLOOP_ZC_MIN=1"
    SKIP_RETURN_CODE 77 LABELS "uring;disable" TIMEOUT 120)
endforeach()
# Registered ring fd, SQPOLL and NAPI, each on and off (sets its own
# environment, like test_select).
rl_test(test_features test_features.c)
rl_test_disabled(test_threadsafe ring_fd)
