#!/usr/bin/env python3
"""Self-test of tests/bench/wan_proxy.py: the delay and the cap are applied (a few seconds).

  wan_proxy_test.py              the checks (run by ctest)
  wan_proxy_test.py --ceiling    the proxy's own throughput ceiling: MB/s through it with no
                                 delay and no cap, one and four connections (for benchmarks)

An echo/sink server runs in this process on a thread; the proxy runs as a child process.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def serve(listener):
    """Per connection: 'E' echoes one line back; 'S<n>\\n' sends n bytes; 'R<n>\\n' reads n bytes
    then answers 'ok\\n'."""
    def one(conn):
        with conn, conn.makefile("rb") as f:
            while True:
                line = f.readline()
                if not line:
                    return
                cmd, arg = line[:1], line[1:].strip()
                if cmd == b"E":
                    conn.sendall(line)
                elif cmd == b"S":
                    n = int(arg)
                    block = b"x" * (1 << 20)
                    while n > 0:
                        conn.sendall(block[:min(n, len(block))])
                        n -= min(n, len(block))
                elif cmd == b"R":
                    n = int(arg)
                    while n > 0:
                        n -= len(f.read1(min(n, 1 << 20)))
                    conn.sendall(b"ok\n")

    while True:
        try:
            c, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=one, args=(c,), daemon=True).start()


def start_proxy(tmp, target_port, *extra):
    pf = os.path.join(tmp, "port")
    if os.path.exists(pf):
        os.unlink(pf)
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "wan_proxy.py"),
                          "--target", f"127.0.0.1:{target_port}", "--port-file", pf,
                          "--stats-file", os.path.join(tmp, "stats.json"), *extra],
                         stdout=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(pf):
            return p, int(open(pf).read())
        time.sleep(0.05)
    p.kill()
    raise SystemExit("wan_proxy did not start")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s, s.makefile("rb")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    return cond


def checks(tmp, port):
    ok = True
    d = 0.1  # one-way delay, seconds
    proxy, pport = start_proxy(tmp, port, "--delay-ms", "100", "--down-bps", "2000000")
    try:
        t0 = time.monotonic()
        s, f = connect(pport)
        s.sendall(b"E hello\n")
        first = f.readline()
        t1 = time.monotonic()
        s.sendall(b"E again\n")
        f.readline()
        t2 = time.monotonic()
        # New connection: handshake RTT + request RTT = 4 one-way delays; then 2.
        ok &= check(first == b"E hello\n", "bytes pass through unchanged")
        ok &= check(4 * d <= t1 - t0 < 4 * d + 0.25,
                    f"first reply on a new connection after 2 RTT: {t1 - t0:.3f} s")
        ok &= check(2 * d <= t2 - t1 < 2 * d + 0.15,
                    f"a reply on the open connection after 1 RTT: {t2 - t1:.3f} s")
        # Down cap 2 MB/s: 1.5 MB takes >= 0.75 s (plus one RTT).
        n = 1_500_000
        t3 = time.monotonic()
        s.sendall(f"S{n}\n".encode())
        got = 0
        while got < n:
            got += len(f.read1(n - got))
        t4 = time.monotonic()
        ok &= check(n / 2e6 + 2 * d - 0.05 <= t4 - t3 < n / 2e6 + 2 * d + 0.5,
                    f"1.5 MB down at a 2 MB/s cap: {t4 - t3:.3f} s")
        # Up is not capped: 1.5 MB up is quick.
        t5 = time.monotonic()
        s.sendall(f"R{n}\n".encode())
        s.sendall(b"y" * n)
        ok &= check(f.readline() == b"ok\n", "upload acknowledged")
        t6 = time.monotonic()
        ok &= check(t6 - t5 < 2 * d + 0.5, f"1.5 MB up, no cap: {t6 - t5:.3f} s")
        # Two connections share the down cap: 2 x 1 MB takes >= 1 s.
        s2, f2 = connect(pport)
        s2.sendall(b"E x\n")
        f2.readline()
        t7 = time.monotonic()
        for sock in (s, s2):
            sock.sendall(b"S1000000\n")
        for ff in (f, f2):
            got = 0
            while got < 1_000_000:
                got += len(ff.read1(1_000_000 - got))
        t8 = time.monotonic()
        ok &= check(t8 - t7 >= 1.0 - 0.05, f"two connections share the cap: {t8 - t7:.3f} s")
        for x in (f, f2, s, s2):  # a makefile keeps its socket open until it closes too
            x.close()
        for _ in range(40):  # closes travel through the delays too
            time.sleep(0.1)
            st = json.load(open(os.path.join(tmp, "stats.json")))
            if st["open"] == 0 and st["bytes_down"] >= 3_500_000:
                break
        ok &= check(st["connections"] == 2 and st["open"] == 0 and st["bytes_down"] >= 3_500_000,
                    f"stats counted: {st}")
    finally:
        proxy.terminate()
        proxy.wait()
    return ok


def ceiling(tmp, port):
    proxy, pport = start_proxy(tmp, port)
    try:
        for conns in (1, 4):
            n = 512 << 20
            socks = [connect(pport) for _ in range(conns)]
            t0 = time.monotonic()
            for s, _ in socks:
                s.sendall(f"S{n}\n".encode())

            def drain(f):
                got = 0
                while got < n:
                    got += len(f.read1(1 << 20))
            ts = [threading.Thread(target=drain, args=(f,)) for _, f in socks]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            dt = time.monotonic() - t0
            print(f"wan_proxy ceiling: {conns} connection(s) {conns * n / dt / 1e6:.0f} MB/s")
            for s, _ in socks:
                s.close()
    finally:
        proxy.terminate()
        proxy.wait()


def main():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    threading.Thread(target=serve, args=(listener,), daemon=True).start()
    port = listener.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        if "--ceiling" in sys.argv:
            ceiling(tmp, port)
            return 0
        return 0 if checks(tmp, port) else 1


if __name__ == "__main__":
    sys.exit(main())
