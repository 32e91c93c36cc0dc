"""Case file uploads (issue 17) against a real ``bangban serve`` on SQLite: memory and throughput.

1. **RSS growth during a 20 MB upload**: the server's resident set (``VmRSS`` of its process, sampled every 2 ms
   from ``/proc``) while one 20 MB PDF is uploaded through the materials page (multipart, as a browser sends it),
   against its idle RSS after a 1 MB warm-up upload. The upload is streamed (waitress and Werkzeug spool the body to
   disk, the file store copies it in 64 KB chunks), so the growth must stay under 2 MB.
2. **Throughput**: 100 clients at once, each uploading one distinct 1 MB PDF to the same case (each a new version of
   one material: the case row serialises them), over their own connections; wall time, uploads/s, MB/s, latency
   percentiles; then ``bangban audit verify`` of the case (every file's hash checked on disk).

    python bench/bench_files.py [--threads 8] [--clients 100] [--big-mb 20] [--keep-tmp]
"""
from __future__ import annotations

import argparse
import html
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import DEMO_PASSWORD, HOST, ROOT, bangban_cmd, free_port, percentile  # noqa: E402

MB = 1024 * 1024
ITEM, MATERIAL = "", ""
BOUNDARY = "----bangbanBench" + uuid.uuid4().hex[:16]


def pdf_parts(size: int, seed: bytes):
    """A PDF of exactly ``size`` bytes, produced in 64 KB pieces (never whole in the client's memory)."""
    head = b"%PDF-1.4\n% " + seed + b"\n"
    tail = b"\n%%EOF\n"
    left = size - len(head) - len(tail)
    yield head
    block = (b"%" + seed)[:1] * (64 * 1024)
    while left > 0:
        n = min(left, len(block))
        yield block[:n]
        left -= n
    yield tail


def multipart(fields: dict[str, str], filename: str, size: int, seed: bytes) -> tuple[list, int]:
    pre = b"".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                   for k, v in fields.items())
    pre += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/pdf\r\n\r\n").encode()
    post = f"\r\n--{BOUNDARY}--\r\n".encode()

    def body():
        yield pre
        yield from pdf_parts(size, seed)
        yield post
    return body, len(pre) + size + len(post)


class Client:
    def __init__(self, port: int):
        self.port, self.cookie = port, ""
        self.conn = http.client.HTTPConnection(HOST, port, timeout=300)

    def call(self, method: str, path: str, body=None, headers: dict | None = None) -> tuple[int, dict, bytes]:
        h = dict(headers or {})
        if self.cookie:
            h["Cookie"] = self.cookie
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                self.cookie = v.split(";", 1)[0]
        return r.status, dict(r.getheaders()), data

    def login(self, username: str) -> None:
        status, _, data = self.call("POST", "/api/login", json.dumps({"username": username, "password": DEMO_PASSWORD}),
                                    {"Content-Type": "application/json"})
        assert status == 200, data[:300]

    def upload(self, case_no: str, token: str, size: int, seed: bytes) -> tuple[int, bytes]:
        body, length = multipart({"csrf_token": token, "item": ITEM, "material": MATERIAL}, "报告书.pdf", size, seed)
        status, _, data = self.call("POST", f"/cases/{case_no}/materials", body(),
                                    {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                                     "Content-Length": str(length)})
        return status, data


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--big-mb", type=int, default=20)
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_files_"))
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}", BANGBAN_FILES_DIR=str(tmp / "files"),
               BANGBAN_SECRET_KEY=secrets.token_hex(16), PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    env.pop("BANGBAN_FILE_MAX_MB", None)
    env.pop("BANGBAN_CASE_FILES_MAX_MB", None)
    server = None
    try:
        demo = subprocess.run(bangban_cmd() + ["demo"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        port = free_port()
        log = open(tmp / "server.log", "w")
        server = subprocess.Popen(bangban_cmd() + ["serve", "--host", HOST, "--port", str(port), "--threads",
                                                   str(args.threads), "--no-worker", "--connection-limit", "200"],
                                  env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for _ in range(300):
            try:
                http.client.HTTPConnection(HOST, port, timeout=1).request("GET", "/login")
                break
            except OSError:
                time.sleep(0.1)
        c = Client(port)
        c.login("huarui")
        _, _, data = c.call("GET", "/api/cases?status=active")
        case_no = next(x["case_no"] for x in json.loads(data)["cases"])
        _, _, page = c.call("GET", f"/cases/{case_no}/materials")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
        global ITEM, MATERIAL       # the first material of the case's first item
        ITEM = re.search(rb'name="item" value="([^"]+)"', page).group(1).decode()
        MATERIAL = html.unescape(re.search(rb'name="material" value="([^"]+)"', page).group(1).decode())

        # 1. memory during one big upload ----------------------------------------------------------------------
        status, data = c.upload(case_no, token, 1 * MB, b"warm")
        assert status == 302, (status, re.sub(r"<[^>]+>", " ", data.decode(errors="replace"))[-800:])
        c.call("GET", f"/cases/{case_no}/materials")
        time.sleep(0.5)
        idle = rss_kb(server.pid)
        peak, stop = [idle], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(server.pid))
                time.sleep(0.002)
        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        status, data = c.upload(case_no, token, args.big_mb * MB, b"big")
        big_s = time.perf_counter() - started
        time.sleep(0.2)
        stop.set()
        sampler.join()
        assert status == 302, (status, re.sub(r"<[^>]+>", " ", data.decode(errors="replace"))[-800:])
        after = rss_kb(server.pid)
        growth_mb = (peak[0] - idle) / 1024

        # 2. many uploads at once -------------------------------------------------------------------------------
        clients = []
        for _ in range(args.clients):
            k = Client(port)
            k.cookie = c.cookie
            clients.append(k)
        times: list[float] = []
        failures: list[str] = []
        barrier = threading.Barrier(args.clients)

        def one(i: int) -> None:
            barrier.wait()
            t0 = time.perf_counter()
            try:
                s, d = clients[i].upload(case_no, token, 1 * MB, f"c{i:03d}".encode())
            except Exception as exc:  # noqa: BLE001 - a failed upload is a finding
                failures.append(f"{i}: {exc}")
                return
            times.append(time.perf_counter() - t0)
            if s != 302:
                failures.append(f"{i}: HTTP {s} {d[:200].decode(errors='replace')}")
        threads = [threading.Thread(target=one, args=(i,)) for i in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        times.sort()
        verify = subprocess.run(bangban_cmd() + ["audit", "verify", case_no], env=env, cwd=ROOT, capture_output=True,
                                text=True, timeout=600)
        load = os.getloadavg()
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        print(f"bench_files  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  commit {commit}  "
              f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs  SQLite, waitress {args.threads} threads")
        print(f"1. one {args.big_mb} MB upload: {big_s * 1000:.0f} ms; server RSS idle {idle / 1024:.1f} MB, "
              f"peak {peak[0] / 1024:.1f} MB (growth {growth_mb:.2f} MB, target < 2 MB: "
              f"{'OK' if growth_mb < 2 else 'OVER'}), after {after / 1024:.1f} MB")
        ok = len(times) - sum(1 for f in failures if "HTTP" in f)
        print(f"2. {args.clients} concurrent 1 MB uploads to one case: {ok} stored, {len(failures)} failed; wall "
              f"{wall:.2f} s = {ok / wall:.1f} uploads/s, {ok / wall:.1f} MB/s; latency median "
              f"{percentile(times, 50) * 1000:.0f} ms, p90 {percentile(times, 90) * 1000:.0f} ms, "
              f"max {times[-1] * 1000 if times else 0:.0f} ms")
        said = verify.stdout.strip().splitlines()[-1] if verify.stdout.strip() else verify.stderr.strip()
        print(f"   audit verify {case_no}: {said}")
        for f in failures[:5]:
            print("   failure:", f)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep_tmp:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
