"""ringloop.Loop: the C loop (ringloop._ext.Loop) plus asyncio's cold paths.

The hot paths (scheduling, the run loop, Handle objects, fd watches) are C.
What is here runs once per run or per rare event and follows asyncio's
BaseEventLoop / _UnixSelectorEventLoop line by line, with public APIs only:
run_until_complete, close, tasks, the exception handler, async generators,
executors and signals.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import errno
import logging
import os
import signal
import socket
import sys
import threading
import traceback
import warnings
import weakref
from typing import Any, Callable

from . import _ext
from ._compat import _set_result_unless_cancelled
from ._net import NetMixin
from ._proc import ProcMixin
from ._sendfile import SendfileMixin
from ._servers import ServerMixin
from ._transports import TransportMixin

logger = logging.getLogger("asyncio")

_DEBUG_STACK_DEPTH = 10  # asyncio.constants.DEBUG_STACK_DEPTH
_PY311 = sys.version_info >= (3, 11)
_PY312 = sys.version_info >= (3, 12)


def _is_debug_mode() -> bool:
    # asyncio.coroutines._is_debug_mode()
    return sys.flags.dev_mode or (not sys.flags.ignore_environment and
                                  bool(os.environ.get("PYTHONASYNCIODEBUG")))


def _run_until_complete_cb(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            # run_forever() already finished, no need to stop it.
            return
    fut.get_loop().stop()


def _sighandler_noop(signum: int, frame: Any) -> None:
    """Dummy signal handler: the signal number arrives via the wakeup fd."""


class Loop(_ext.Loop, NetMixin, ServerMixin, TransportMixin, SendfileMixin,
           ProcMixin, asyncio.AbstractEventLoop):
    """An asyncio event loop on ringloop's core (io_uring or epoll).

    ``backend`` is ``"uring"``, ``"epoll"`` or None: the RINGLOOP_BACKEND
    environment variable, else io_uring when the kernel allows it.
    """

    def __init__(self, backend: str | None = None) -> None:
        super().__init__(backend)
        self._task_factory: Callable[..., Any] | None = None
        self._exception_handler: Callable[..., Any] | None = None
        self._default_executor: Any = None
        self._executor_shutdown_called = False
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth: int | None = None
        self._signal_handlers: dict[int, tuple[Any, ...]] = {}
        self._ssock: socket.socket | None = None
        self._csock: socket.socket | None = None
        self._child_pidfds: set[int] = set()
        self._debug = _is_debug_mode()

    def __repr__(self) -> str:
        return (f"<{self.__class__.__name__} running={self.is_running()} "
                f"closed={self.is_closed()} debug={self.get_debug()}>")

    def __del__(self, _warn: Any = warnings.warn) -> None:
        try:
            closed = self.is_closed()
        except AttributeError:  # __init__ failed
            return
        if not closed:
            _warn(f"unclosed event loop {self!r}", ResourceWarning,
                  source=self)
            if not self.is_running():
                self.close()

    # ---- running ---------------------------------------------------------

    def _check_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if asyncio._get_running_loop() is not None:
            raise RuntimeError(
                "Cannot run the event loop while another loop is running")

    def run_forever(self) -> None:
        """Run until stop() is called."""
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        old_agen_hooks = sys.get_asyncgen_hooks()
        try:
            sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                                   finalizer=self._asyncgen_finalizer_hook)
            asyncio._set_running_loop(self)
            self._run_forever_impl()
        finally:
            asyncio._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def run_until_complete(self, future: Any) -> Any:
        """Run until the future (or coroutine) is done; return its result."""
        self._check_closed()
        self._check_running()
        new_task = not asyncio.isfuture(future)
        future = asyncio.ensure_future(future, loop=self)
        if new_task:
            # An exception is raised if the future didn't complete, so there
            # is no need to log the "destroy pending task" message.
            future._log_destroy_pending = False
        future.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                # The coroutine raised a BaseException. Consume the exception
                # to not log a warning: the caller can't reach the task.
                future.exception()
            raise
        finally:
            future.remove_done_callback(_run_until_complete_cb)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def close(self) -> None:
        """Close the loop: drop pending callbacks, shut the executor down.

        The loop must not be running. Idempotent.
        """
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._close_impl()
        self._close_child_watches()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)
        if not sys.is_finalizing():
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
        elif self._signal_handlers:
            warnings.warn(f"Closing the loop {self!r} on interpreter shutdown "
                          f"stage, skipping signal handlers removal",
                          ResourceWarning, source=self)
            self._signal_handlers.clear()
        self._close_signal_socks()

    # ---- debug -----------------------------------------------------------

    def set_debug(self, enabled: bool) -> None:
        self._debug = enabled
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking,
                                      enabled)

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = (
                sys.get_coroutine_origin_tracking_depth())
            sys.set_coroutine_origin_tracking_depth(_DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(
                self._coroutine_origin_tracking_saved_depth or 0)
        self._coroutine_origin_tracking_enabled = enabled

    # ---- tasks -----------------------------------------------------------

    # create_task() is C (ringloop._ext.Loop): servers call it per request.
    # It reads the factory from the _task_factory attribute, a C slot.

    def set_task_factory(self, factory: Callable[..., Any] | None) -> None:
        """Set the factory create_task() uses; None for the default."""
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Callable[..., Any] | None:
        return self._task_factory

    # ---- exception handler -----------------------------------------------

    def get_exception_handler(self) -> Callable[..., Any] | None:
        return self._exception_handler

    def set_exception_handler(self,
                              handler: Callable[..., Any] | None) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, "
                            f"got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log the context as asyncio's default handler does."""
        message = context.get("message")
        if not message:
            message = "Unhandled exception in event loop"
        exception = context.get("exception")
        if exception is not None:
            exc_info: Any = (type(exception), exception,
                             exception.__traceback__)
        else:
            exc_info = False
        current = self._current_handle
        if ("source_traceback" not in context and current is not None and
                current._source_traceback):
            context["handle_traceback"] = current._source_traceback
        log_lines = [message]
        for key in sorted(context):
            if key in {"message", "exception"}:
                continue
            value = context[key]
            if key == "source_traceback":
                tb = "".join(traceback.format_list(value))
                value = "Object created at (most recent call last):\n"
                value += tb.rstrip()
            elif key == "handle_traceback":
                tb = "".join(traceback.format_list(value))
                value = "Handle created at (most recent call last):\n"
                value += tb.rstrip()
            else:
                value = repr(value)
            log_lines.append(f"{key}: {value}")
        logger.error("\n".join(log_lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Call the exception handler set, or the default one."""
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                # The default handler must not fail: don't loop on it.
                logger.error("Exception in default exception handler",
                             exc_info=True)
            return
        try:
            ctx = None
            if _PY312:
                thing = context.get("task")
                if thing is None:
                    thing = context.get("future")
                if thing is None:
                    thing = context.get("handle")
                if thing is not None and hasattr(thing, "get_context"):
                    ctx = thing.get_context()
            if ctx is not None and hasattr(ctx, "run"):
                ctx.run(self._exception_handler, self, context)
            else:
                self._exception_handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler({
                    "message": "Unhandled error in exception handler",
                    "exception": exc,
                    "context": context,
                })
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler "
                             "while handling an unexpected error "
                             "in custom exception handler",
                             exc_info=True)

    # ---- async generators ------------------------------------------------

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                f"loop.shutdown_asyncgens() call",
                ResourceWarning, source=self)
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self) -> None:
        """Shut down all active asynchronous generators."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing_agens = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(
            *[ag.aclose() for ag in closing_agens], return_exceptions=True)
        for result, agen in zip(results, closing_agens):
            if isinstance(result, Exception):
                self.call_exception_handler({
                    "message": f"an error occurred during closing of "
                               f"asynchronous generator {agen!r}",
                    "exception": result,
                    "asyncgen": agen,
                })

    # ---- executors -------------------------------------------------------

    def run_in_executor(self, executor: Any, func: Callable[..., Any],
                        *args: Any) -> asyncio.Future[Any]:
        """Run func(*args) in executor (None: the default thread pool)."""
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(
                    thread_name_prefix="asyncio")
                self._default_executor = executor
        return asyncio.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor: Any) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            if _PY311:
                raise TypeError(
                    "executor must be ThreadPoolExecutor instance")
            warnings.warn(
                "Using the default executor that is not an instance of "
                "ThreadPoolExecutor is deprecated and will be prohibited "
                "in Python 3.9", DeprecationWarning, 2)
        self._default_executor = executor

    async def shutdown_default_executor(self,
                                        timeout: float | None = None) -> None:
        """Shut down the default executor, waiting for its threads.

        With a timeout (seconds), stop waiting after it and warn.
        """
        self._executor_shutdown_called = True
        if self._default_executor is None:
            return
        future = self.create_future()
        thread = threading.Thread(target=self._do_shutdown, args=(future,))
        thread.start()
        try:
            done, _ = await asyncio.wait({future}, timeout=timeout)
            if not done:
                warnings.warn("The executor did not finishing joining "
                              f"its threads within {timeout} seconds.",
                              RuntimeWarning, stacklevel=2)
                self._default_executor.shutdown(wait=False)
            else:
                thread.join()
        finally:
            if not future.done():
                future.cancel()

    def _do_shutdown(self, future: asyncio.Future[None]) -> None:
        try:
            assert self._default_executor is not None
            self._default_executor.shutdown(wait=True)
            if not self.is_closed():
                self.call_soon_threadsafe(_set_result_unless_cancelled,
                                          future, None)
        except Exception as ex:
            if not self.is_closed() and not future.cancelled():
                self.call_soon_threadsafe(future.set_exception, ex)

    def _check_callback(self, callback: Any, method: str) -> None:
        from ._support import check_callback
        check_callback(callback, method)

    # ---- signals (asyncio's unix loop) ------------------------------------

    def add_signal_handler(self, sig: int, callback: Callable[..., Any],
                           *args: Any) -> None:
        """Call callback(*args) from the loop when signal sig arrives.

        Main thread only; raises RuntimeError if sig cannot be caught.
        """
        from ._support import is_coroutine_callback
        if is_coroutine_callback(callback):
            raise TypeError("coroutines cannot be used "
                            "with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        self._open_signal_socks()
        assert self._csock is not None
        try:
            # set_wakeup_fd() raises ValueError if this is not the main
            # thread: a loop running in another thread cannot add handlers.
            signal.set_wakeup_fd(self._csock.fileno())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))

        self._signal_handlers[sig] = (callback, args,
                                      contextvars.copy_context())
        try:
            # A dummy Python handler makes CPython write the signal number
            # to the wakeup fd, which the loop reads (_read_signals).
            signal.signal(sig, _sighandler_noop)
            # Set SA_RESTART to limit EINTR occurrences.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                try:
                    signal.set_wakeup_fd(-1)
                except (ValueError, OSError) as nexc:
                    logger.info("set_wakeup_fd(-1) failed: %s", nexc)
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught")
            raise

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler for sig. Return True if there was one."""
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        if sig == signal.SIGINT:
            handler: Any = signal.default_int_handler
        else:
            handler = signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught")
            raise
        if not self._signal_handlers:
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError) as exc:
                logger.info("set_wakeup_fd(-1) failed: %s", exc)
        return True

    def _check_signal(self, sig: int) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def _open_signal_socks(self) -> None:
        if self._ssock is not None:
            return
        self._ssock, self._csock = socket.socketpair()
        self._ssock.setblocking(False)
        self._csock.setblocking(False)
        self.add_reader(self._ssock.fileno(), self._read_signals)

    def _close_signal_socks(self) -> None:
        if self._ssock is None:
            return
        self.remove_reader(self._ssock.fileno())
        self._ssock.close()
        assert self._csock is not None
        self._csock.close()
        self._ssock = self._csock = None

    def _read_signals(self) -> None:
        assert self._ssock is not None
        while True:
            try:
                data = self._ssock.recv(4096)
                if not data:
                    break
            except InterruptedError:
                continue
            except BlockingIOError:
                break
            for signum in data:
                if signum:
                    self._handle_signal(signum)

    def _handle_signal(self, sig: int) -> None:
        entry = self._signal_handlers.get(sig)
        if entry is None:
            return  # Assume it's some race condition.
        callback, args, context = entry
        self.call_soon(callback, *args, context=context)

