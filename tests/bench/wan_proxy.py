#!/usr/bin/env python3
"""A WAN-emulating TCP proxy for benchmarks: one-way delay per direction and a bandwidth cap.

  wan_proxy.py --target HOST:PORT [--listen 127.0.0.1:0] [--delay-ms D | --up-delay-ms U
               --down-delay-ms W] [--up-bps B] [--down-bps B] [--port-file F] [--stats-file F]

Bytes are relayed at TCP level (TLS passes through untouched; the client still verifies the
server's certificate, which must name the proxy's address, 127.0.0.1 here). "up" is client to
target, "down" target to client.

- Delay: every chunk read from one side is written to the other `delay` later. A new connection
  also pays the TCP handshake: the client's connect() completes at once here, so its first bytes
  are held until 2 x delay after the accept (SYN, SYN-ACK) plus the one-way delay. A request on
  a new connection therefore takes 2 RTT before its reply starts, as on a real link.
- Cap: each direction has one token bucket shared by all connections (the link's bandwidth):
  a chunk of n bytes leaves when the link has sent the previous ones plus n / bps. 0 = no cap.
- Buffering: at most --window-mb bytes (default 16 MiB) are held per direction per connection;
  beyond it the proxy stops reading that side (TCP back-pressure). So one connection moves at
  most window / delay bytes per second (160 MB/s at 100 ms): a well-tuned long fat pipe, without
  TCP slow start.

Stats (JSON, rewritten atomically when a connection opens or closes, every second, and on
SIGUSR1/exit):
connections, open, bytes_up, bytes_down. SIGTERM/SIGINT stop it.
"""
import argparse
import asyncio
import json
import os
import signal
import socket
import sys

CHUNK = 256 * 1024


class Link:
    """One direction of the emulated link: its delay and its shared bandwidth budget."""

    def __init__(self, delay_s, bps):
        self.delay = delay_s
        self.bps = bps
        self.next_free = 0.0  # loop time when the link has sent everything reserved so far

    async def transmit(self, loop, n):
        if self.bps <= 0:
            return
        start = max(loop.time(), self.next_free)
        self.next_free = start + n / self.bps
        wait = self.next_free - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)


class Proxy:
    def __init__(self, args):
        th, tp = args.target.rsplit(":", 1)
        self.target = (th, int(tp))
        self.up = Link(args.up_delay_ms / 1000.0, args.up_bps)
        self.down = Link(args.down_delay_ms / 1000.0, args.down_bps)
        self.window = int(args.window_mb * 1024 * 1024)
        self.stats_file = args.stats_file
        self.stats = {"connections": 0, "open": 0, "bytes_up": 0, "bytes_down": 0}

    def write_stats(self):
        if not self.stats_file:
            return
        tmp = self.stats_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.stats, f)
        os.replace(tmp, self.stats_file)

    async def pump(self, reader, writer, link, key, not_before):
        """Relays reader -> writer: each chunk written `link.delay` after it was read (and not
        before `not_before`), paced by the link's bandwidth."""
        loop = asyncio.get_running_loop()
        q = asyncio.Queue()
        held = 0
        room = asyncio.Event()
        room.set()

        async def rx():
            nonlocal held
            try:
                while True:
                    data = await reader.read(CHUNK)
                    due = max(loop.time(), not_before) + link.delay
                    q.put_nowait((due, data))
                    if not data:
                        return
                    held += len(data)
                    if held >= self.window:
                        room.clear()
                        await room.wait()
            except (ConnectionError, OSError):
                q.put_nowait((loop.time(), None))

        async def tx():
            nonlocal held
            while True:
                due, data = await q.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:  # the reading side broke: reset this side too
                    writer.transport.abort()
                    return
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                await link.transmit(loop, len(data))
                writer.write(data)
                await writer.drain()
                self.stats[key] += len(data)
                held -= len(data)
                if held < self.window:
                    room.set()

        t = asyncio.ensure_future(rx())
        try:
            await tx()
        finally:
            t.cancel()

    async def handle(self, creader, cwriter):
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        self.stats["connections"] += 1
        self.stats["open"] += 1
        self.write_stats()
        try:
            sreader, swriter = await asyncio.open_connection(*self.target)
        except OSError:
            cwriter.transport.abort()
            self.stats["open"] -= 1
            self.write_stats()
            return
        for w in (cwriter, swriter):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The client's first bytes leave after the emulated SYN / SYN-ACK round trip.
        handshake_done = accepted + self.up.delay + self.down.delay
        try:
            await asyncio.gather(
                self.pump(creader, swriter, self.up, "bytes_up", handshake_done),
                self.pump(sreader, cwriter, self.down, "bytes_down", 0.0))
        except (ConnectionError, OSError):
            pass
        finally:
            for w in (cwriter, swriter):
                try:
                    w.close()
                except Exception:  # noqa: BLE001 - closing a broken socket
                    pass
            self.stats["open"] -= 1
            self.write_stats()


async def main_async(args):
    proxy = Proxy(args)
    lh, lp = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(proxy.handle, lh, int(lp), backlog=512)
    port = server.sockets[0].getsockname()[1]
    proxy.write_stats()
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"wan_proxy listening on {lh}:{port} -> {args.target} up {args.up_delay_ms} ms "
          f"{args.up_bps} B/s down {args.down_delay_ms} ms {args.down_bps} B/s", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, proxy.write_stats)
    async def flush():  # keeps the byte counts in the stats file fresh
        while True:
            await asyncio.sleep(1.0)
            proxy.write_stats()
    flusher = asyncio.ensure_future(flush())
    await stop.wait()
    flusher.cancel()
    server.close()
    proxy.write_stats()
    # Open relays are simply dropped with the process (their peers see the connection close).
    sys.stdout.flush()
    os._exit(0)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target", required=True, help="HOST:PORT to relay to")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--delay-ms", type=float, default=None, help="one-way delay, both directions")
    p.add_argument("--up-delay-ms", type=float, default=0.0)
    p.add_argument("--down-delay-ms", type=float, default=0.0)
    p.add_argument("--up-bps", type=float, default=0.0, help="client->target cap, bytes/s")
    p.add_argument("--down-bps", type=float, default=0.0, help="target->client cap, bytes/s")
    p.add_argument("--window-mb", type=float, default=16.0)
    p.add_argument("--port-file")
    p.add_argument("--stats-file")
    a = p.parse_args(argv)
    if a.delay_ms is not None:
        a.up_delay_ms = a.down_delay_ms = a.delay_ms
    if min(a.up_delay_ms, a.down_delay_ms, a.up_bps, a.down_bps) < 0 or a.window_mb <= 0:
        p.error("delays and caps must be >= 0, the window > 0")
    return a


if __name__ == "__main__":
    try:
        asyncio.run(main_async(parse(sys.argv[1:])))
    except KeyboardInterrupt:
        pass
