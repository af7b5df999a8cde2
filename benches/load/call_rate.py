#!/usr/bin/env python3
"""Call-rate load test: SIPp's `uac` (INVITE, 200, ACK, hold, BYE) against the
release `hotline` binary on 127.0.0.1, 60 s of calls at a fixed rate.

    benches/load/call_rate.py [--rate 300] [--duration 60] [--hold-ms 3000]
    benches/load/call_rate.py --find-max [--rates 100,200,300,...]

Builds nothing: pass --binary or set CARGO_TARGET_DIR (default
target/release/hotline). Each run gets a fresh server (temp dir, SQLite,
admission limits raised because every call comes from 127.0.0.1, RTP timeout
off because SIPp's uac sends no RTP; the server still streams the greeting to
SIPp's media port for the whole 3 s of every call). A run passes when SIPp
exits 0, every call succeeded, and the server counted every one as answered.

Every SIPp run is bounded by -timeout (duration + hold + 20 s) and a hard
kill, so one step takes at most ~85 s plus server start; --find-max steps
through --rates, stops at the first rate that fails, and stops stepping after
--max-total-s. Runs in a private loopback-only network namespace when
`unshare -n` is allowed (root); --no-netns to skip. See RESULTS.md for the
numbers and for the options that shape the environment (--server-cpus,
--load-cpus, --server-rt, --wait-quiet).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadlib as L  # noqa: E402

DEFAULT_RATES = [100, 200, 300, 400, 500, 600, 700, 800, 1000, 1200, 1500, 2000]


def server_sections(rate: int, hold_ms: int) -> dict:
    concurrent = rate * hold_ms / 1000
    wide = concurrent * 1.3 > 4900
    sections = {
        "sip": {
            # One call per RTP port pair: past that the server refuses with 503.
            "max_calls": 25000 if wide else 5000,
            # All SIPp traffic comes from one IP: lift the per-IP limit far above the test.
            "invite_rate_per_ip": 1_000_000.0,
            "invite_burst_per_ip": 1_000_000.0,
        },
        # SIPp's uac sends no RTP: no RTP timeout.
        "media": {"rtp_timeout_secs": 0},
        "greeting": {"idle_hangup_secs": 3600},
    }
    # 20000-29999 holds 5000 calls; widen it when more may be up at once
    # (a finished call's port goes to the back of the queue).
    if wide:
        sections["media"].update({"rtp_port_min": 10000, "rtp_port_max": 59999})
    return sections


def run_once(args, rate: int) -> dict:
    calls = rate * args.duration
    hold_s = args.hold_ms / 1000
    work = Path(tempfile.mkdtemp(prefix=f"hotline-rate{rate}-"))
    server = L.Server(args.binary, server_sections(rate, args.hold_ms), workdir=work / "server", log_filter=args.log_filter)
    server.start()
    sampler = L.Sampler(server, period=1.0)
    sampler.start()
    time.sleep(1.5)
    idle_rss = L.proc_rss_kb(server.pid)
    m0 = server.metrics()
    udp0 = L.udp_counters()

    sdir = work / "sipp"
    sdir.mkdir()
    port = L.free_udp_port(1)
    media_port = L.free_udp_port(4)
    stat = sdir / "stat.csv"
    limit_s = int(args.duration + hold_s + 20)
    cmd = L.load_prefix() + [
        "sipp", "-sn", "uac",
        "-i", "127.0.0.1", "-mi", "127.0.0.1",
        "-p", str(port), "-mp", str(media_port),
        "-s", "12345",
        "-r", str(rate), "-rp", "1000",
        "-d", str(args.hold_ms),
        "-m", str(calls),
        "-nostdin",
        "-timeout", f"{limit_s}s", "-timeout_error",
        "-trace_stat", "-stf", str(stat), "-fd", "1",
        "-trace_err", "-error_file", str(sdir / "errors.log"),
        "-trace_screen", "-screen_file", str(sdir / "screen.log"),
        server.sip,
    ]
    t0 = time.monotonic()
    sipp = L.track(subprocess.Popen(cmd, cwd=sdir, stdin=subprocess.DEVNULL, stdout=open(sdir / "stdout.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True))
    sampler.add_pid("sipp", sipp.pid)
    try:
        rc = sipp.wait(timeout=limit_s + 20)
    except subprocess.TimeoutExpired:
        L.stop(sipp)
        rc = "killed"
    t1 = time.monotonic()
    time.sleep(1.5)  # let the last BYEs and records land
    m1 = server.metrics()
    udp1 = L.udp_counters()
    # Datagrams the server's SIP socket dropped because its receive buffer was full.
    sip_drops = L.udp_socket_drops(int(server.sip.rsplit(":", 1)[1]))
    sampler.stop()

    st = L.parse_sipp_stats(stat)
    # When did SIPp finish creating calls? First stats row with all created.
    created_at = None
    if stat.exists():
        lines = [l.rstrip(";").split(";") for l in stat.read_text(errors="replace").splitlines() if l.strip()]
        head = lines[0]
        if "TotalCallCreated" in head and "ElapsedTime(C)" in head:
            ci, ei = head.index("TotalCallCreated"), head.index("ElapsedTime(C)")
            for row in lines[1:]:
                try:
                    if int(row[ci]) >= calls:
                        created_at = L.sipp_time_ms(row[ei]) / 1000
                        break
                except (ValueError, IndexError, TypeError):
                    continue

    def delta(name):
        return m1.get(name, 0) - m0.get(name, 0)

    answered = delta('hotline_calls_total{result="answered"}')
    other = {k.split('"')[1]: delta(k) for k in m1 if k.startswith("hotline_calls_total{") and "answered" not in k and delta(k)}
    ok_calls = L.sipp_int(st, "SuccessfulCall(C)")
    failed = L.sipp_int(st, "FailedCall(C)")
    # Steady state: every call of the run is arriving and ending.
    s0, s1 = t0 + hold_s + 1, t0 + args.duration
    if s1 - s0 < 3:  # short smoke runs: the whole run
        s0, s1 = t0, t1
    result = {
        "rate": rate,
        "calls": calls,
        "sipp_exit": rc,
        "successful": ok_calls,
        "failed": failed,
        "failed_by_cause": {k: v for k, v in st.items() if k.startswith("Failed") and k.endswith("(C)") and v not in ("0", "")},
        "retransmissions": L.sipp_int(st, "Retransmissions(C)"),
        "out_of_call_msgs": L.sipp_int(st, "OutOfCallMsgs(C)"),
        "dead_call_msgs": L.sipp_int(st, "DeadCallMsgs(C)"),
        "invite_to_200_ms_mean": L.sipp_time_ms(st.get("ResponseTime1(C)")),
        "invite_to_200_ms_stdev": L.sipp_time_ms(st.get("ResponseTime1StDev(C)")),
        "invite_to_200_buckets_ms": L.sipp_rtd_buckets(st),
        "invite_to_200_p99_bucket_ms": L.bucket_percentile(L.sipp_rtd_buckets(st), 99),
        "achieved_rate": round(calls / created_at, 1) if created_at else None,
        "server_answered": int(answered),
        "server_other_results": other,
        "server_cpu_pct": _r(sampler.cpu_percent("server", s0, s1)),
        "server_threads_pct": sampler.threads_percent(s0, s1),
        "server_sched": sampler.sched_stats(s0, s1),
        "ksoftirqd_cpu_pct": _r(sampler.softirqd_percent(s0, s1)),
        "vm_steal_pct": _r(sampler.steal_percent(s0, s1)),
        "sipp_cpu_pct": _r(sampler.cpu_percent("sipp", s0, s1)),
        "machine_busy_pct": _r(sampler.machine_percent(s0, s1)),
        "other_processes_cpu_pct": _r(sampler.others_percent(s0, s1)),
        "server_rss_idle_mb": _mb(idle_rss),
        "server_rss_peak_mb": _mb(sampler.rss_peak_kb("server")),
        "rtp_packets_sent": int(delta("hotline_rtp_packets_sent_total")),
        "media_tick_overruns": int(delta("hotline_media_tick_overruns_total")),
        "records_written": int(delta("hotline_call_records_written_total")),
        "wall_s": round(t1 - t0, 1),
        # Namespace-wide (the server, SIPp): RcvbufErrors = datagrams dropped
        # because a socket's receive buffer was full (a reader fell behind).
        "udp": L.udp_delta(udp0, udp1),
        "server_sip_socket_drops": sip_drops,
        "sipp_errors": L.sipp_error_lines(sdir),
        "server_log": server.log_summary(),
        "workdir": str(work),
    }
    result["passed"] = rc == 0 and failed == 0 and ok_calls == calls and int(answered) == calls
    server.stop()
    if result["passed"] and not args.keep:
        subprocess.run(["rm", "-rf", str(work)])
    return result


def _r(v, d=1):
    return None if v is None else round(v, d)


def _mb(kb):
    return None if kb is None else round(kb / 1024, 1)


def line(r: dict) -> str:
    return (
        f"rate {r['rate']:>5}/s  {'PASS' if r['passed'] else 'FAIL'}  "
        f"ok {r['successful']}/{r['calls']} failed {r['failed']} (server answered {r['server_answered']})  "
        f"achieved {L.fmt(r['achieved_rate'])}/s  retrans {r['retransmissions']}  "
        f"INVITE->200 mean {L.fmt(r['invite_to_200_ms_mean'], 1)} ms p99 {r['invite_to_200_p99_bucket_ms']} ms  "
        f"server CPU {L.fmt(r['server_cpu_pct'])}%  SIPp CPU {L.fmt(r['sipp_cpu_pct'])}%  machine {L.fmt(r['machine_busy_pct'])}% (others {L.fmt(r['other_processes_cpu_pct'])}%, ksoftirqd {L.fmt(r['ksoftirqd_cpu_pct'])}%, VM steal {L.fmt(r['vm_steal_pct'])}%)  "
        f"RSS idle {L.fmt(r['server_rss_idle_mb'])} MB peak {L.fmt(r['server_rss_peak_mb'])} MB  "
        f"overruns {r['media_tick_overruns']}  SIP socket drops {r['server_sip_socket_drops']}"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=300, help="calls per second (default 300)")
    ap.add_argument("--duration", type=int, default=60, help="seconds of new calls (default 60)")
    ap.add_argument("--hold-ms", type=int, default=3000, help="call length after ACK (default 3000)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per rate (medians reported)")
    ap.add_argument("--find-max", action="store_true", help="step through --rates, stop at the first failure")
    ap.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    ap.add_argument("--max-total-s", type=int, default=1800, help="stop stepping after this long (default 1800)")
    args = L.start(ap, "call-rate")
    rates = [int(x) for x in args.rates.split(",")] if args.find_max else [args.rate]
    started = time.monotonic()
    results = []
    best = None
    for rate in rates:
        runs = []
        for i in range(args.repeat):
            r = L.measured_run(args, run_once, rate, i + 1)
            print(line(r), flush=True)
            if not r["passed"]:
                print(f"  sipp errors: {r['sipp_errors']}\n  failed by cause: {r['failed_by_cause']}\n"
                      f"  server other results: {r['server_other_results']}\n  server log: {r['server_log']}\n  kept: {r['workdir']}", flush=True)
            runs.append(r)
            results.append(r)
        all_pass = all(r["passed"] for r in runs)
        if args.repeat > 1:
            med = {k: L.median([r[k] for r in runs]) for k in ("server_cpu_pct", "sipp_cpu_pct", "server_rss_peak_mb", "invite_to_200_ms_mean", "machine_busy_pct")}
            print(f"  median of {args.repeat}: " + ", ".join(f"{k} {L.fmt(v, 2)}" for k, v in med.items()), flush=True)
        if all_pass:
            best = rate
        elif args.find_max:
            break
        if args.find_max and time.monotonic() - started > args.max_total_s:
            print(f"# stopping: over --max-total-s {args.max_total_s}")
            break
    if args.find_max:
        print(f"# highest rate with 0 failed calls for {args.duration} s: {best if best else 'none'} calls/s")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results, "best": best}, indent=1))
    sys.exit(0 if (best if args.find_max else all(r["passed"] for r in results)) else 1)


if __name__ == "__main__":
    main()
