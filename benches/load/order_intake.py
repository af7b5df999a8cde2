#!/usr/bin/env python3
"""Order intake through the HTTP API for the release `hotline` binary.

    benches/load/order_intake.py [--db sqlite|postgres|sqlite,postgres] [--workers 4] [--orders 2000]

Starts the server (loadlib.Server: temporary config, SQLite in its work dir,
or with --db postgres a private database `hotline_bench_intake` on --pg,
made before and dropped after), adds an agent with `hotline users add
--config <the server's config>`, then --workers threads each POST --orders
orders to /api/v1/orders over one keep-alive connection (http.client), as
agents' desktops would: a submitted phone intake on a level-3 category of
sip-config/catalogue.toml in a division of sip-config/units.toml, each with
its own caller (emergency categories are dispatched at once, in the same
transaction, as the desk does).

Reports orders created per second (201 answers over the wall time from the
first request to the last answer), latency p50/p99/max, answers other than
201, the server's CPU (utime+stime, 100 % = one core) and RSS, and checks
that the database holds exactly the orders the API said it created.

Bounded: every request has a timeout (--timeout), the workers stop at
--limit-s, the server is stopped at exit. Runs on the host's 127.0.0.1 (no
network namespace: PostgreSQL lives on the host's loopback).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import loadlib as L

PG_DB = "hotline_bench_intake"


def catalogue() -> tuple[list[str], list[str]]:
    """Level-3 category codes and district/county division codes."""
    cat = tomllib.loads((L.REPO / "sip-config/catalogue.toml").read_text())
    leaves = []

    def walk(items):
        for c in items:
            kids = c.get("children", [])
            if kids:
                walk(kids)
            elif len(c["code"]) == 6:
                leaves.append(c["code"])

    walk(cat.get("category", []))
    units = tomllib.loads((L.REPO / "sip-config/units.toml").read_text())
    parent = {d["code"]: d.get("parent") for d in units.get("division", [])}
    counties = [c for c, p in parent.items() if p and parent.get(p)]
    return leaves, counties


def intake(rng: random.Random, leaves: list[str], divisions: list[str], n: int) -> dict:
    return {
        "channel": "phone",
        "citizen": {"name": rng.choice(["张三", "李四", "王芳", "刘洋"]), "phone": f"1{3_000_000_000 + n:010d}"},
        "appeal_type": rng.choices(["consultation", "help", "complaint", "suggestion", "report"], [25, 20, 35, 12, 8])[0],
        "category": rng.choice(leaves),
        "division": rng.choice(divisions),
        "location": f"某小区 {rng.randint(1, 40)} 号楼",
        "content": "市民来电反映问题，请尽快核实处理并答复。",
    }


def psql(pg: str, sql: str, database: str = "test") -> str:
    r = subprocess.run(["psql", f"{pg}/{database}", "-Atqc", sql], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"psql {sql!r}: {r.stderr.strip()}")
    return r.stdout.strip()


def add_agent(binary: Path, config: Path) -> str:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)  # the config's [store] database_url, as the server's
    r = subprocess.run([str(binary), "users", "add", "--name", "bench.agent", "--role", "agent", "--config", str(config)],
                       capture_output=True, text=True, timeout=60, env=env)
    if r.returncode != 0 or not r.stdout.strip():
        raise SystemExit(f"hotline users add failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout.strip()


class Worker(threading.Thread):
    def __init__(self, http: str, token: str, bodies: list[bytes], deadline: float, timeout: float, idem: str | None):
        super().__init__(daemon=True)
        self.host, _, port = http.rpartition(":")
        self.port = int(port)
        self.token, self.bodies, self.deadline, self.timeout, self.idem = token, bodies, deadline, timeout, idem
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.first_error: str | None = None
        self.t0 = self.t1 = None

    def count(self, key: str, detail: str | None = None) -> None:
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if detail and self.first_error is None:
            self.first_error = detail

    def run(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        self.t0 = time.monotonic()
        for i, body in enumerate(self.bodies):
            if time.monotonic() > self.deadline:
                self.count("not sent (time limit)")
                continue
            if self.idem:
                headers["Idempotency-Key"] = f"{self.idem}-{i}"
            t = time.monotonic()
            try:
                conn.request("POST", "/api/v1/orders", body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException) as e:
                self.count("transport error", repr(e))
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                continue
            took = time.monotonic() - t
            if r.status == 201:
                self.latencies.append(took)
                self.count("201")
            else:
                self.count(str(r.status), data[:300].decode(errors="replace"))
        self.t1 = time.monotonic()
        conn.close()


def orders_in_db(db: str, server: L.Server, pg: str) -> int:
    if db == "postgres":
        return int(psql(pg, "SELECT COUNT(*) FROM work_orders", PG_DB))
    with sqlite3.connect(server.dir / "hotline.db") as c:
        return c.execute("SELECT COUNT(*) FROM work_orders").fetchone()[0]


def run_once(args, db: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"hotline-intake-{db}-"))
    sections: dict[str, dict] = {}
    if db == "postgres":
        psql(args.pg, f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        psql(args.pg, f"CREATE DATABASE {PG_DB}")
        sections["store"] = {"database_url": f"{args.pg}/{PG_DB}"}
    server = L.Server(args.binary, sections, workdir=work / "server", log_filter=args.log_filter)
    result: dict = {"db": db, "workers": args.workers, "orders_per_worker": args.orders, "workdir": str(work)}
    try:
        server.start()
        token = add_agent(server.binary, server.config_path)
        leaves, divisions = catalogue()
        rng = random.Random(12345)
        bodies = [[json.dumps(intake(rng, leaves, divisions, w * args.orders + i)).encode() for i in range(args.orders)]
                  for w in range(args.workers)]
        time.sleep(1.0)
        cpu0, t0 = L.proc_cpu_ticks(server.pid), time.monotonic()
        deadline = t0 + args.limit_s
        workers = [Worker(server.http, token, b, deadline, args.timeout, f"bench-{w}" if args.idempotency_key else None)
                   for w, b in enumerate(bodies)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=max(1.0, deadline - time.monotonic()) + args.timeout + 5)
        t1, cpu1 = time.monotonic(), L.proc_cpu_ticks(server.pid)
        rss = L.proc_rss_kb(server.pid)
        statuses: dict[str, int] = {}
        for w in workers:
            for k, v in w.statuses.items():
                statuses[k] = statuses.get(k, 0) + v
        lat = sorted(x for w in workers for x in w.latencies)
        created = statuses.get("201", 0)
        wall = t1 - t0
        in_db = orders_in_db(db, server, args.pg)
        result.update({
            "created": created,
            "answers": statuses,
            "first_error": next((w.first_error for w in workers if w.first_error), None),
            "wall_s": round(wall, 2),
            "orders_per_s": round(created / wall, 1) if wall > 0 else None,
            "latency_ms": {"p50": round(L.percentile(lat, 50) * 1000, 2) if lat else None,
                           "p99": round(L.percentile(lat, 99) * 1000, 2) if lat else None,
                           "max": round(lat[-1] * 1000, 2) if lat else None},
            "server_cpu_pct": round(100.0 * (cpu1 - cpu0) / L.CLK_TCK / wall, 1) if cpu0 is not None and cpu1 is not None else None,
            "server_rss_mb": round(rss / 1024, 1) if rss else None,
            "orders_in_db": in_db,
            "hung_workers": sum(1 for w in workers if w.is_alive()),
        })
        result["passed"] = (created == args.workers * args.orders and in_db == created and result["hung_workers"] == 0)
        result["server_log"] = server.log_summary()
    finally:
        server.stop()
        if db == "postgres" and not args.keep:
            psql(args.pg, f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path, default=L.default_binary(),
                    help="release binary (default ${CARGO_TARGET_DIR:-target}/release/hotline)")
    ap.add_argument("--db", default="sqlite", help="sqlite, postgres, or both comma-separated (default sqlite)")
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432",
                    help="PostgreSQL server URL without a database (default %(default)s)")
    ap.add_argument("--workers", type=int, default=4, help="concurrent clients (default 4)")
    ap.add_argument("--orders", type=int, default=2000, help="orders each worker posts (default 2000)")
    ap.add_argument("--idempotency-key", action="store_true", help="send an Idempotency-Key with every order")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    ap.add_argument("--limit-s", type=float, default=300.0, help="stop posting after this many seconds (default 300)")
    ap.add_argument("--log-filter", default=None, help="HOTLINE_LOG for the server (default: its own, info)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the work dir and the PostgreSQL database")
    args = ap.parse_args()
    args.pg = args.pg.rstrip("/")
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    if not dbs or any(d not in ("sqlite", "postgres") for d in dbs):
        raise SystemExit("--db: sqlite, postgres or sqlite,postgres")
    print(f"# hotline order intake test: {args.binary}\n# {L.machine_note()}; {args.workers} workers x {args.orders} orders",
          flush=True)
    results = []
    for db in dbs:
        r = run_once(args, db)
        results.append(r)
        lat = r.get("latency_ms", {})
        print(f"{db:8s} {'PASS' if r.get('passed') else 'FAIL'}: {r.get('created')} orders in {r.get('wall_s')} s = "
              f"{r.get('orders_per_s')} orders/s; latency p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms, "
              f"max {lat.get('max')} ms; server CPU {r.get('server_cpu_pct')} %, RSS {r.get('server_rss_mb')} MB; "
              f"answers {r.get('answers')}; orders in the database {r.get('orders_in_db')}", flush=True)
        if not r.get("passed"):
            print(f"  first error: {r.get('first_error')}\n  server log: {r.get('server_log')}", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1))
    sys.exit(0 if all(r.get("passed") for r in results) else 1)


if __name__ == "__main__":
    main()
