#!/usr/bin/env python3
"""The WAN benchmark's driver (run it through scripts/bench-wan, which builds and sets paths).

GRIN = the fake GRIN with a per-connection throttle, a first-byte delay, a global bandwidth cap
and a request-rate limit (fault rules). Storage = Swift (scripts/s3-server) behind
tests/bench/wan_proxy.py (one-way delay per direction, bandwidth cap). Per set and RTT, side by
side: grin-jobs sync, and a reference-style client (per book a new process and TLS session for
every request; storage HEAD, GRIN HEAD, GRIN GET to a file, gpg --decrypt to a file, storage PUT,
in sequence per worker; 4 workers, a shared 5 requests/s limit on GRIN). Two ideals are computed:
the wire ideal, slots x per-connection rate (capped by GRIN's global cap, storage's cap and the
request rate), and the slot-promise ideal, slots x size / (first byte + size / rate): the most a
client that never has more than `slots` GETs open at GRIN can reach. --baseline-grin-jobs runs a
second grin-jobs binary (e.g. an older commit's) side by side with the same settings.
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

MiB = 1 << 20


def log(*a):
    print(*a, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Fake:
    """A grin-fake process for one set of books."""

    def __init__(self, a, work, label, n, size):
        self.dir = os.path.join(work, "fake-" + label)
        os.makedirs(self.dir, exist_ok=True)
        cache = os.path.join(a.cache_dir, f"{size}")
        os.makedirs(cache, exist_ok=True)
        pages = 4
        self.proc = subprocess.Popen(
            [a.fake, "--books", str(max(n * 5, 50)), "--pages-min", str(pages),
             "--pages-max", str(pages), "--image-bytes", str(size // pages),
             "--threads", "64", "--state-dir", self.dir, "--cache-dir", cache,
             "--port-file", os.path.join(self.dir, "port")],
            stdout=open(os.path.join(self.dir, "log"), "w"), stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.exists(os.path.join(self.dir, "port")):
                break
            time.sleep(0.05)
        self.port = int(open(os.path.join(self.dir, "port")).read())
        self.base = f"https://127.0.0.1:{self.port}"
        self.ca = os.path.join(self.dir, "ca.pem")
        self.ctx = ssl.create_default_context(cafile=self.ca)
        self.token = self.control("GET", "/_fake/token")["access_token"]
        with open(os.path.join(self.dir, "auth.cfg"), "w") as f:
            f.write(f'header = "Authorization: Bearer {self.token}"\n')
        os.chmod(os.path.join(self.dir, "auth.cfg"), 0o600)
        with open(os.path.join(self.dir, "gpg_passphrase.asc"), "w") as f:
            f.write("fake passphrase for TEST\n")
        os.chmod(os.path.join(self.dir, "gpg_passphrase.asc"), 0o600)
        body = self.get_text("/libraries/TEST/_converted?format=text")
        names = sorted(x[:-len(".tar.gz.gpg")] for x in body.split() if x.endswith(".tar.gz.gpg"))
        self.barcodes = names[:n]
        self.control_conns = 0

    def request(self, method, path, body=None, auth=False):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=600)
        h = {"Authorization": "Bearer " + self.token} if auth else {}
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data, r

    def control(self, method, path, body=None):
        st, data, _ = self.request(method, path, body)
        if st != 200:
            raise RuntimeError(f"fake {path}: {st} {data[:200]!r}")
        return json.loads(data)

    def get_text(self, path):
        st, data, _ = self.request("GET", path, auth=True)
        if st != 200:
            raise RuntimeError(f"fake {path}: {st}")
        return data.decode()

    def warm(self):
        """Generates every archive (HEAD makes the fake build and cache it) and learns sizes."""
        self.sizes = {}
        lock = threading.Lock()
        todo = list(self.barcodes)

        def work():
            while True:
                with lock:
                    if not todo:
                        return
                    b = todo.pop()
                st, _, r = self.request("HEAD", f"/libraries/TEST/{b}.tar.gz.gpg", auth=True)
                if st != 200:
                    raise RuntimeError(f"HEAD {b}: {st}")
                with lock:
                    self.sizes[b] = int(r.getheader("Content-Length"))
        ts = [threading.Thread(target=work) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Proxy:
    def __init__(self, a, work, name, target_port, rtt_ms, bps):
        self.dir = os.path.join(work, "proxy-" + name)
        os.makedirs(self.dir, exist_ok=True)
        pf = os.path.join(self.dir, "port")
        if os.path.exists(pf):
            os.unlink(pf)
        self.stats_file = os.path.join(self.dir, "stats.json")
        self.proc = subprocess.Popen(
            [sys.executable, a.proxy, "--target", f"127.0.0.1:{target_port}",
             "--delay-ms", str(rtt_ms / 2.0), "--up-bps", str(bps), "--down-bps", str(bps),
             "--port-file", pf, "--stats-file", self.stats_file],
            stdout=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(pf):
                break
            time.sleep(0.05)
        self.port = int(open(pf).read())

    def stats(self):
        return json.load(open(self.stats_file))

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        return self.stats()


class RateLimiter:
    """Shared across the reference client's workers: at most `rps` GRIN requests per second."""

    def __init__(self, rps):
        self.interval = 1.0 / rps if rps > 0 else 0
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self):
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            t = max(now, self.next)
            self.next = t + self.interval
        if t > now:
            time.sleep(t - now)


def cpu_of_children():
    r = os.times()
    return r.children_user + r.children_system


def aws_s3(env, *args):
    return subprocess.run(["aws", "--endpoint-url", env["GRIN_S3_ENDPOINT"], "--ca-bundle",
                           env["GRIN_S3_CA_FILE"], "--region", env["GRIN_S3_REGION"], "s3", *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env={**os.environ, "AWS_SHARED_CREDENTIALS_FILE": env["aws_creds"]})


def steady(gets, t0_us, t1_us):
    """The steady-state window: from the moment 10 % of the bytes were served to 90 %, with
    bytes spread uniformly over each GET's [first byte, end]. Returns (start, end, bytes)."""
    total = sum(g["bytes"] for g in gets)
    # Piecewise linear cumulative bytes at time t.
    def served(t):
        s = 0.0
        for g in gets:
            a, b = g["first_byte_us"], g["end_us"]
            if t >= b:
                s += g["bytes"]
            elif t > a:
                s += g["bytes"] * (t - a) / max(1, b - a)
        return s

    def when(frac):
        lo, hi = t0_us, t1_us
        for _ in range(40):
            mid = (lo + hi) / 2
            if served(mid) < frac * total:
                lo = mid
            else:
                hi = mid
        return hi
    a, b = when(0.1), when(0.9)
    return a, b, served(b) - served(a)


def slot_figures(gets, slots, a, b):
    """Over [a, b]: mean GETs open (arrived..end), mean GETs moving bytes (first byte..end)."""
    T = max(1.0, b - a)
    open_s = moving = 0.0
    for g in gets:
        open_s += max(0.0, min(b, g["end_us"]) - max(a, g["arrived_us"]))
        moving += max(0.0, min(b, g["end_us"]) - max(a, g["first_byte_us"]))
    return open_s / T, moving / T


def analyse(name, gets, wall, t0_us, t1_us, books, ideal, slots, extra):
    gets = [g for g in gets if g["first_byte_us"] >= 0 and g["end_us"] >= 0]
    nbytes = sum(g["bytes"] for g in gets)
    a, b, sbytes = steady(gets, t0_us, t1_us)
    rate_steady = sbytes / max(1e-6, (b - a) / 1e6)
    open_mean, moving_mean = slot_figures(gets, slots, a, b)
    ttfb = sorted((g["first_byte_us"] - g["arrived_us"]) / 1e3 for g in gets)
    r = {"client": name, "books": books, "wall_s": wall, "books_per_s": books / wall,
         "grin_bytes": nbytes, "grin_MBps": nbytes / wall / 1e6,
         "steady_MBps": rate_steady / 1e6, "util_steady": rate_steady / ideal["after_first_byte"],
         "util_steady_vs_ttfb_ideal": rate_steady / ideal["with_first_byte"],
         "util_overall": nbytes / wall / ideal["after_first_byte"],
         "slots_open_mean": open_mean, "slots_moving_mean": moving_mean,
         "slot_idle_frac": max(0.0, 1 - open_mean / slots),
         "server_ttfb_ms_median": ttfb[len(ttfb) // 2] if ttfb else 0,
         "gets": len(gets)}
    r.update(extra)
    return r


def run_grin_jobs(a, env, fake, barcodes, rtt, label, storage_port, grin_base, workers, binary,
                  tag):
    run = os.path.join(a.work, f"run-{label}-{rtt}-{workers}-{tag}")
    bucket = f"wan-{label}-{rtt}-{workers}-{tag}".replace("_", "-").lower()
    s3 = f"https://127.0.0.1:{storage_port}"
    subprocess.run([binary, "init", "--run-dir", run, "--library-directory", "TEST",
                    "--grin-base-url", grin_base + "/libraries/", "--storage", "s3",
                    "--storage-config", f"endpoint_url={s3}",
                    "--storage-config", f"region={env['GRIN_S3_REGION']}",
                    "--storage-config", f"ca_file={env['GRIN_S3_CA_FILE']}",
                    "--storage-config", "path_style=true",
                    "--storage-config", f"credentials_file={env['aws_creds']}",
                    "--storage-config", f"bucket_raw={bucket}-raw",
                    "--storage-config", f"bucket_meta={bucket}-meta",
                    "--storage-config", f"bucket_full={bucket}-full"],
                   check=True, stdout=subprocess.DEVNULL)
    cfgp = os.path.join(run, "run_config.json")
    c = json.load(open(cfgp))
    c.update(grin_token_url=grin_base + "/token", credentials_dir=fake.dir, ca_file=fake.ca)
    json.dump(c, open(cfgp, "w"))
    bf = os.path.join(run, "barcodes.txt")
    open(bf, "w").write("\n".join(barcodes) + "\n")
    for suffix in ("raw", "meta", "full"):
        aws_s3(env, "mb", f"s3://{bucket}-{suffix}")
    cmd = [binary, "sync", "--run-dir", run, "--barcodes-file", bf, "--skip-csv-export",
           "--skip-extract-ocr", "--skip-extract-marc", "--workers", str(workers),
           "--download-concurrency", str(a.slots), "--grin-rate", str(a.grin_rps)]
    cmd += a.grin_jobs_args
    cpu0 = cpu_of_children()
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=open(os.path.join(run, "stdout"), "w"), stderr=subprocess.STDOUT)
    wall = time.monotonic() - t0
    cpu = cpu_of_children() - cpu0
    if p.returncode != 0:
        log(f"  grin-jobs exited {p.returncode}; tail of its output:")
        log(open(os.path.join(run, "stdout")).read()[-2000:])
    try:
        summ = json.load(open(os.path.join(run, "process_summary.json")))
    except OSError:
        summ = {"hosts": [], "sync": {}}
    hosts = {h["host"]: h for h in summ["hosts"]}
    g = hosts.get(grin_base.split("//")[1], {})
    st = hosts.get(f"127.0.0.1:{storage_port}", {})
    out = {"exit": p.returncode, "cpu_s": cpu,
           "tls_grin": g.get("tls_handshakes", 0), "tls_storage": st.get("tls_handshakes", 0),
           "client_ttfb_ms": g.get("first_byte_us", 0) / max(1, g.get("attempts", 1)) / 1e3,
           "grin_requests_client": g.get("requests", 0), "throttled": g.get("throttled", 0),
           "synced": summ["sync"].get("books_synced", 0)}
    for suffix in ("raw", "meta", "full"):
        aws_s3(env, "rb", "--force", f"s3://{bucket}-{suffix}")
    shutil.rmtree(run, ignore_errors=True)
    return wall, out


def run_reference(a, env, fake, barcodes, rtt, label, storage_port, grin_base):
    """Per book, in sequence per worker: storage HEAD, GRIN HEAD, GRIN GET to a file, gpg, PUT;
    every request a new curl process (a new TLS session)."""
    bucket = f"wan-ref-{label}-{rtt}".replace("_", "-").lower()
    aws_s3(env, "mb", f"s3://{bucket}")
    s3 = f"https://127.0.0.1:{storage_port}"
    stage = tempfile.mkdtemp(dir=a.work, prefix="ref-")
    gnupg = os.path.join(stage, "gnupg")
    os.makedirs(gnupg, mode=0o700)
    limiter = RateLimiter(a.grin_rps)
    todo = list(barcodes)
    lock = threading.Lock()
    counts = {"grin": 0, "storage": 0, "failed": 0, "ttfb": []}
    s3cfg = os.path.join(stage, "s3.cfg")
    with open(s3cfg, "w") as f:
        f.write(f'user = "{env["GRIN_S3_ACCESS_KEY"]}:{env["GRIN_S3_SECRET_KEY"]}"\n')
    os.chmod(s3cfg, 0o600)
    s3curl = ["curl", "-sf", "--cacert", env["GRIN_S3_CA_FILE"], "-K", s3cfg, "--aws-sigv4",
              f"aws:amz:{env['GRIN_S3_REGION']}:s3", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    gcurl = ["curl", "-sf", "--cacert", fake.ca, "-K", os.path.join(fake.dir, "auth.cfg")]

    def book(b):
        url = f"{grin_base}/libraries/TEST/{b}.tar.gz.gpg"
        enc, plain = os.path.join(stage, b + ".gpg"), os.path.join(stage, b + ".tar.gz")
        # CHECK: the stored object (404 = new), then GRIN's HEAD.
        subprocess.run(s3curl + ["-I", f"{s3}/{bucket}/{b}.tar.gz", "-o", "/dev/null"])
        limiter.wait()
        h = subprocess.run(gcurl + ["-I", url, "-o", "/dev/null"])
        limiter.wait()
        g = subprocess.run(gcurl + [url, "-o", enc, "-w", "%{time_starttransfer}"],
                           capture_output=True, text=True)
        d = subprocess.run(["gpg", "--batch", "--quiet", "--homedir", gnupg, "--pinentry-mode",
                            "loopback", "--passphrase-file",
                            os.path.join(fake.dir, "gpg_passphrase.asc"), "--output", plain,
                            "--decrypt", enc], stderr=subprocess.DEVNULL)
        u = subprocess.run(s3curl + ["-T", plain, f"{s3}/{bucket}/{b}.tar.gz", "-o", "/dev/null"])
        for f in (enc, plain):
            if os.path.exists(f):
                os.unlink(f)
        with lock:
            counts["grin"] += 2
            counts["storage"] += 2
            ok = h.returncode == 0 and g.returncode == 0 and d.returncode == 0 and u.returncode == 0
            counts["failed"] += 0 if ok else 1
            try:
                counts["ttfb"].append(float(g.stdout) * 1e3)
            except ValueError:
                pass

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                b = todo.pop(0)
            book(b)
    cpu0 = cpu_of_children()
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(a.ref_workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.monotonic() - t0
    cpu = cpu_of_children() - cpu0
    aws_s3(env, "rb", "--force", f"s3://{bucket}")
    shutil.rmtree(stage, ignore_errors=True)
    tt = sorted(counts["ttfb"])
    return wall, {"exit": counts["failed"], "cpu_s": cpu, "tls_grin": counts["grin"],
                  "tls_storage": counts["storage"],
                  "client_ttfb_ms": tt[len(tt) // 2] if tt else 0}


def one_set(a, env, label, n, size):
    log(f"--- set {label}: {n} books of {size / MiB:.0f} MiB ---")
    fake = Fake(a, a.work, label, n, size)
    try:
        t = time.monotonic()
        fake.warm()
        avg = sum(fake.sizes.values()) / len(fake.sizes)
        log(f"  archives ready ({time.monotonic() - t:.0f} s); {len(fake.barcodes)} books, "
            f"{avg / MiB:.2f} MiB each on average")
        if a.warm_only:
            return [], {}, avg
        rules = [
            {"endpoint": "archive_get", "action": "throttle", "rate_bps": int(a.conn_bps)},
            {"endpoint": "archive_get", "action": "slow_first_byte", "delay_ms": a.first_byte_ms},
            {"endpoint": "grin", "action": "rate_limit", "rate_rps": a.grin_rps,
             "burst": a.grin_burst, "retry_after": "1"},
        ]
        if a.global_bps > 0:
            rules.append({"endpoint": "archive_get", "action": "global_throttle",
                          "rate_bps": int(a.global_bps)})
        fake.control("POST", "/_fake/faults", json.dumps(rules))
        slots = a.slots
        caps = {"slots x per-connection": slots * a.conn_bps,
                "GRIN global cap": a.global_bps or float("inf"),
                "storage cap": a.storage_bps or float("inf"),
                "request rate (1 per book)": a.grin_rps * avg}
        after = min(caps.values())
        per_slot_book = a.first_byte_ms / 1e3 + avg / a.conn_bps
        with_ttfb = min(slots * avg / per_slot_book, *list(caps.values())[1:])
        ideal = {"after_first_byte": after, "with_first_byte": with_ttfb,
                 "binding": min(caps, key=caps.get)}
        # Two ideals. The wire ideal: every slot moves bytes all the time, which needs the next
        # GET's first-byte wait to overlap the current transfer, i.e. more GETs open at GRIN than
        # --download-concurrency promises. The slot-promise ideal: what any client keeping at
        # most `slots` GETs open can reach: each slot spends the first-byte time, then the
        # transfer, per book.
        log(f"  wire ideal (slots x per-connection rate): {after / 1e6:.2f} MB/s "
            f"({ideal['binding']} binds: "
            + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in caps.items()) + f"); "
            f"slot-promise ideal (slots x size / ({a.first_byte_ms} ms first byte + size / rate)): "
            f"{with_ttfb / 1e6:.2f} MB/s")
        results = []
        nref = max(a.ref_workers, int(round(len(fake.barcodes) * a.ref_fraction)))
        for rtt in a.rtts:
            sp = Proxy(a, a.work, f"s3-{label}-{rtt}", env["tls_port"], rtt, a.storage_bps)
            gp = None
            grin_base = fake.base
            if a.grin_rtt:
                gp = Proxy(a, a.work, f"grin-{label}-{rtt}", fake.port, rtt, 0)
                grin_base = f"https://127.0.0.1:{gp.port}"
            try:
                # More workers only at the first RTT: the GRIN request count per book does not
                # depend on the RTT.
                extra_w = a.extra_workers if rtt == a.rtts[0] else []
                runs = [("grin-jobs", a.workers, a.grin_jobs, "grin-jobs")]
                if a.baseline_grin_jobs:
                    runs.append(("grin-jobs", a.workers, a.baseline_grin_jobs, a.baseline_label))
                runs += [("grin-jobs", w, a.grin_jobs, f"grin-jobs w{w}") for w in extra_w]
                if not a.skip_reference:
                    runs.append(("reference", a.ref_workers, None, "reference"))
                for client, workers, binary, name in runs:
                    fake.control("POST", "/_fake/reset_stats")
                    st0 = sp.stats()
                    t0_us = (time.monotonic() - 0) * 1e6
                    if client == "grin-jobs":
                        books = fake.barcodes
                        wall, out = run_grin_jobs(a, env, fake, books, rtt, label, sp.port,
                                                  grin_base, workers, binary,
                                                  "b" if binary != a.grin_jobs else "n")
                    else:
                        books = fake.barcodes[:nref]
                        wall, out = run_reference(a, env, fake, books, rtt, label, sp.port,
                                                  grin_base)
                    stats = fake.control("GET", "/_fake/stats")
                    gets = fake.control("GET", "/_fake/gets")
                    st1 = sp.stats()
                    eps = stats["endpoints"]
                    grin_reqs = sum(v["requests"] for k, v in eps.items()
                                    if k not in ("token", "auth"))
                    archive_reqs = sum(eps.get(k, {}).get("requests", 0)
                                       for k in ("archive_head", "archive_get"))
                    r429 = sum(v["by_status"].get("429", 0) for v in eps.values())
                    extra = dict(out)
                    extra.update(
                        rtt_ms=rtt, set=label, workers=workers,
                        server_grin_connections=stats["connections"] - 1,  # minus our stats request
                        server_storage_connections=st1["connections"] - st0["connections"],
                        grin_requests=grin_reqs, archive_requests=archive_reqs,
                        archive_heads=eps.get("archive_head", {}).get("requests", 0),
                        http_429=r429)
                    t_end = max((g["end_us"] for g in gets), default=1)
                    t_start = min((g["arrived_us"] for g in gets), default=0)
                    r = analyse(name, gets, wall, t_start, t_end,
                                len(books), ideal, slots if client == "grin-jobs" else a.ref_workers,
                                extra)
                    results.append(r)
                    log(fmt(r))
            finally:
                sp.stop()
                if gp:
                    gp.stop()
        return results, ideal, avg
    finally:
        fake.stop()


def fmt(r):
    return (f"  rtt {r['rtt_ms']:>3} ms {r['client']:<14} {r['books']:>4} books "
            f"{r['wall_s']:7.1f} s {r['books_per_s']:6.2f} books/s  GRIN {r['grin_MBps']:6.2f} MB/s "
            f"(steady {r['steady_MBps']:6.2f}: {r['util_steady']:.3f} of the wire ideal, "
            f"{r['util_steady_vs_ttfb_ideal']:.3f} of the slot-promise ideal)  TLS grin/storage "
            f"{r['tls_grin']}/{r['tls_storage']} (servers saw {r['server_grin_connections']}/"
            f"{r['server_storage_connections']} connections)  TTFB client {r['client_ttfb_ms']:.0f} "
            f"ms, server {r['server_ttfb_ms_median']:.0f} ms  slots open {r['slots_open_mean']:.2f}, "
            f"moving bytes {r['slots_moving_mean']:.2f}, idle {r['slot_idle_frac']:.3f}  "
            f"GRIN requests {r['grin_requests']} ({r['archive_heads']} HEAD, "
            f"{r['archive_requests'] - r['archive_heads']} GET) 429s {r['http_429']}  "
            f"client CPU {r['cpu_s']:.1f} s  exit {r['exit']}")


def summary(all_results, baseline_label=None):
    log("\n=== summary: per set and RTT ===")
    log("| set | RTT ms | client | books/s | GRIN MB/s steady | util (wire ideal) "
        "| util (slot-promise ideal) | slot idle | TLS grin / storage | TTFB ms client / server "
        "| GRIN req/book | x reference | x baseline |")
    log("|---|---:|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|")
    for label, results in all_results:
        ref = {r["rtt_ms"]: r for r in results if r["client"] == "reference"}
        base = {r["rtt_ms"]: r for r in results if r["client"] == baseline_label}
        for r in results:
            x = xb = ""
            if r["client"] != "reference" and r["rtt_ms"] in ref:
                x = f"{r['books_per_s'] / ref[r['rtt_ms']]['books_per_s']:.2f}"
            if r["client"] not in ("reference", baseline_label) and r["rtt_ms"] in base:
                xb = f"{r['steady_MBps'] / base[r['rtt_ms']]['steady_MBps']:.2f}"
            log(f"| {label} | {r['rtt_ms']} | {r['client']} | {r['books_per_s']:.2f} | "
                f"{r['steady_MBps']:.2f} | {r['util_steady']:.3f} | "
                f"{r['util_steady_vs_ttfb_ideal']:.3f} | {r['slot_idle_frac']:.3f} | "
                f"{r['tls_grin']} / {r['tls_storage']} | {r['client_ttfb_ms']:.0f} / "
                f"{r['server_ttfb_ms_median']:.0f} | {r['grin_requests'] / r['books']:.2f} | {x} "
                f"| {xb} |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--grin-jobs", required=True)
    p.add_argument("--fake", required=True)
    p.add_argument("--proxy", required=True)
    p.add_argument("--s3-env", required=True, help="scripts/s3-server's env file")
    p.add_argument("--work", required=True)
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--sets", default="300x8,40x100", help="COUNTxMiB,...")
    p.add_argument("--rtts", default="0,25,50,100")
    p.add_argument("--conn-mbps", type=float, default=8.0, help="per-connection MiB/s")
    p.add_argument("--global-mbps", type=float, default=48.0, help="GRIN global cap MiB/s (0 off)")
    p.add_argument("--storage-mbps", type=float, default=48.0, help="storage cap MiB/s each way")
    p.add_argument("--first-byte-ms", type=int, default=300)
    p.add_argument("--grin-rps", type=float, default=5.0)
    p.add_argument("--grin-burst", type=int, default=5)
    p.add_argument("--slots", type=int, default=4, help="grin-jobs --download-concurrency")
    p.add_argument("--workers", type=int, default=8, help="grin-jobs --workers")
    p.add_argument("--extra-workers", default="32",
                   help="more grin-jobs runs at these --workers (at the first RTT only)")
    p.add_argument("--ref-workers", type=int, default=4)
    p.add_argument("--ref-fraction", type=float, default=0.15)
    p.add_argument("--grin-rtt", action="store_true", help="GRIN behind a proxy at the same RTT")
    p.add_argument("--baseline-grin-jobs", metavar="BINARY",
                   help="also run this grin-jobs binary (e.g. an older commit's), side by side")
    p.add_argument("--baseline-label", default="baseline", help="its name in the report")
    p.add_argument("--skip-reference", action="store_true", help="no reference-style client runs")
    p.add_argument("--json", help="write all results here")
    p.add_argument("--warm-only", action="store_true", help="generate the archives and stop")
    p.add_argument("grin_jobs_args", nargs="*")
    a = p.parse_args()
    a.rtts = [int(x) for x in a.rtts.split(",") if x]
    a.extra_workers = [int(x) for x in a.extra_workers.split(",") if x]
    a.conn_bps = a.conn_mbps * MiB
    a.global_bps = a.global_mbps * MiB
    a.storage_bps = a.storage_mbps * MiB
    env = {}
    for line in open(a.s3_env):
        if "=" in line:
            k, v = line.strip().split("=", 1)
            env[k] = v
    env["tls_port"] = int(env["GRIN_S3_ENDPOINT"].rsplit(":", 1)[1])
    creds = os.path.join(a.work, "aws_credentials")
    with open(creds, "w") as f:
        f.write(f"[default]\naws_access_key_id = {env['GRIN_S3_ACCESS_KEY']}\n"
                f"aws_secret_access_key = {env['GRIN_S3_SECRET_KEY']}\n")
    os.chmod(creds, 0o600)
    env["aws_creds"] = creds
    log(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"per-connection {a.conn_mbps} MiB/s, first byte {a.first_byte_ms} ms, GRIN global cap "
        f"{a.global_mbps} MiB/s, GRIN {a.grin_rps} req/s (burst {a.grin_burst}), storage cap "
        f"{a.storage_mbps} MiB/s each way, slots {a.slots}, workers {a.workers}, reference "
        f"{a.ref_workers} workers on {a.ref_fraction:.0%} of each set; GRIN "
        f"{'behind the proxy too' if a.grin_rtt else 'direct (its latency = the first byte)'}")
    all_results = []
    for spec in a.sets.split(","):
        n, mib = spec.split("x")
        label = f"{n}x{mib}MiB"
        res, ideal, avg = one_set(a, env, label, int(n), int(float(mib) * MiB))
        all_results.append((label, res))
    summary(all_results, a.baseline_label if a.baseline_grin_jobs else None)
    if a.json:
        json.dump([{"set": l, "results": r} for l, r in all_results], open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
