"""The comparative benchmark: `python -m ringloop.bench [--quick]`.

For each loop (asyncio's default selector loop, uvloop, ringloop on epoll,
ringloop on io_uring), in the same run:

- echo servers in four styles (Protocol, BufferedProtocol, streams, sock_*)
  with 1, 50 and 500 connections and 1 KiB and 64 KiB messages, driven by
  ringloop-loadgen, which checks every echoed byte;
- an HTTP hello-world server on httptools, driven by wrk, with keep-alive,
  with 16 pipelined requests, and with a new connection per request
  (Connection: close: the accept and connection set-up path);
- application servers under wrk with 50 and 500 connections: uvicorn
  (httptools) serving a bare ASGI hello world, FastAPI returning a small
  JSON object, aiohttp.web's hello world; and uvicorn with a new connection
  per request (_apps.py);
- the raw liburing echo server in C (bench/echo_raw_uring.c) as one more
  row of the 1 KiB Protocol echo scenarios, the floor for ringloop-uring;
- in-process microbenchmarks: call_soon, call_later+cancel and
  call_soon_threadsafe;
- the files group (_files.py): ringloop.files on each backend against
  aiofiles and run_in_executor on uvloop and asyncio: random 4 KiB reads by
  64 tasks (page cache, then O_DIRECT), a sequential read in 1 MiB chunks,
  small files written and fsynced; ops/s and the process's CPU per op,
  with issue 15's targets (ratios to aiofiles on uvloop).

Each server is a process of its own (_server.py) pinned to one CPU; the load
generator runs pinned to the other. Output: a table per scenario with
requests/s, server CPU µs/request, p50/p99 latency and the ratio to uvloop,
a summary of ratios, the targets of issues 6, 14 and 15 (each with its
measured ratio and met or missed, never asserted), results.json with every
raw number and the machine, and a bar chart (bench.png). `--help` lists the
options.
"""

from ._cli import main

__all__ = ["main"]
