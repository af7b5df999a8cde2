#!/usr/bin/env python3
"""Concurrent-calls-with-media load test for the release `hotline` binary.

    benches/load/concurrent_media.py [--calls 1000[,1500,2000]] [--hold 60] [--probes 50] [--rate 100]

Holds N calls up at once for --hold seconds while the server streams the
greeting to every caller (PCMA, 50 packets/s per call) and every caller streams
audio back:

  * N - K calls come from SIPp (scenario main.xml): INVITE offering PCMA only,
    then `rtp_stream` plays a looping A-law copy of the greeting
    (--caller-media stream, the default; SIPp -rtp_threadtasks 100), or SIPp
    echoes the server's RTP (--caller-media echo: one thread, falls behind);
  * K "probe" calls come from a second SIPp whose SDP points at K UDP sockets
    of a measuring receiver (this script, `_receiver` mode). The receiver takes
    each packet's kernel receive time (SO_TIMESTAMPNS: on loopback, the moment
    the server sent it, unaffected by the receiver's own scheduling) and its
    user-space time, and streams 20 ms A-law packets back from the same socket
    (symmetric RTP), so probe callers behave like phones too.
  Both SIPp instances ramp together at --rate calls/s in total, so the probe
  calls are spread evenly through the media workers' stream lists.

Packet-interval deviation is |arrival(n) - arrival(n-1) - 20 ms| for
consecutive sequence numbers of one stream, over the --hold window in which
all N calls are up (checked with hotline_active_calls). Also reported: server
CPU % (per thread kind, with run-queue wait and involuntary context switches
of the media threads), RSS per call ((RSS with N up - RSS idle) / N),
hotline_rtp_packets_sent/received rates, tick overruns, SIPp pass/fail counts,
other load on the machine and VM steal.

Verdict: PASS = all N up for the whole window, every call of both SIPp
instances succeeded, the server answered N and ended none itself, and p99
deviation < 5 ms; INCOMPLETE = the server part passed but the callers (SIPp)
returned under 95 % of their audio, so the load was lighter than asked; FAIL
otherwise. A list in --calls stops at the first FAIL.

Bounded: every process has a deadline (ramp + hold + ~100 s) and is killed at
exit. Runs in a private loopback-only network namespace when `unshare -n` is
allowed; --no-netns skips it.
"""

from __future__ import annotations

import argparse
import array
import heapq
import json
import os
import random
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadlib as L  # noqa: E402
from loadlib import caller_scenario as scenario, make_caller_audio  # noqa: E402

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux, all common arches
FRAME_NS = 20_000_000

# ------------------------------------------------------------------ receiver


def receiver_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="concurrent_media.py _receiver")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--csv", type=Path, required=True)
    ap.add_argument("--max-seconds", type=float, default=900)
    ap.add_argument("--no-send", action="store_true", help="do not stream audio back")
    a = ap.parse_args(argv)

    socks = []
    rtcp_socks = []  # port + 1 held, so the server's RTCP lands somewhere harmless
    while len(socks) < a.count:
        port = random.randrange(40000, 60000, 2)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
            c.bind(("127.0.0.1", port + 1))
        except OSError:
            s.close()
            c.close()
            continue
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        socks.append(s)
        rtcp_socks.append(c)
    a.csv.write_text("SEQUENTIAL\n" + "".join(f"{s.getsockname()[1]};\n" for s in socks))

    ep = select.epoll()
    by_fd = {}
    for i, s in enumerate(socks):
        ep.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = i
    stdin_fd = sys.stdin.fileno()
    os.set_blocking(stdin_fd, False)
    ep.register(stdin_fd, select.EPOLLIN)

    seqs = [array.array("H") for _ in socks]
    kns = [array.array("q") for _ in socks]  # kernel receive time, CLOCK_REALTIME ns
    uns = [array.array("q") for _ in socks]  # user-space receive time, CLOCK_REALTIME ns
    sources = [None] * a.count
    other_sources = [0] * a.count
    sent = [0] * a.count
    heap: list[tuple[int, int]] = []
    ssrc = [random.getrandbits(32) for _ in socks]
    out_seq = [random.getrandbits(16) for _ in socks]
    out_ts = [random.getrandbits(32) for _ in socks]
    payload = bytes([0xD5]) * 160  # A-law silence
    hdr = struct.Struct("!BBHII")
    ts_struct = struct.Struct("qq")
    cmsg_space = socket.CMSG_SPACE(16)
    deadline = time.monotonic_ns() + int(a.max_seconds * 1e9)
    print("READY", flush=True)
    window = None
    buf = b""
    while True:
        now = time.monotonic_ns()
        if now > deadline:
            break
        timeout = (heap[0][0] - now) / 1e9 if heap else 0.2
        events = ep.poll(max(0.0, min(timeout, 0.2)))
        for fd, _ev in events:
            if fd == stdin_fd:
                try:
                    chunk = os.read(stdin_fd, 4096)
                except BlockingIOError:
                    chunk = b""
                if not chunk and not buf:
                    window = window or "eof"
                buf += chunk
                if b"\n" in buf:
                    window = buf.split(b"\n", 1)[0].decode()
                continue
            i = by_fd[fd]
            s = socks[i]
            while True:
                try:
                    data, anc, _flags, addr = s.recvmsg(2048, cmsg_space)
                except BlockingIOError:
                    break
                except OSError:
                    break
                u = time.time_ns()
                if len(data) < 12 or data[0] >> 6 != 2 or 72 <= (data[1] & 0x7F) <= 76:
                    continue  # not RTP (RTCP is 200-204 with the marker bit folded in)
                k = 0
                for _lvl, typ, cdata in anc:
                    if typ == SO_TIMESTAMPNS and len(cdata) >= 16:
                        sec, nsec = ts_struct.unpack_from(cdata)
                        k = sec * 1_000_000_000 + nsec
                seqs[i].append((data[2] << 8) | data[3])
                kns[i].append(k or u)
                uns[i].append(u)
                if sources[i] is None:
                    sources[i] = addr
                    if not a.no_send:
                        # Staggered so the K streams do not all send in one burst.
                        heapq.heappush(heap, (time.monotonic_ns() + (i * FRAME_NS) // a.count, i))
                elif addr != sources[i]:
                    other_sources[i] += 1
        if window:
            break
        now = time.monotonic_ns()
        while heap and heap[0][0] <= now:
            t, i = heapq.heappop(heap)
            pkt = hdr.pack(0x80, 8, out_seq[i], out_ts[i], ssrc[i]) + payload
            try:
                socks[i].sendto(pkt, sources[i])
                sent[i] += 1
            except OSError:
                pass
            out_seq[i] = (out_seq[i] + 1) & 0xFFFF
            out_ts[i] = (out_ts[i] + 160) & 0xFFFFFFFF
            t += FRAME_NS
            if t < now - 5 * FRAME_NS:
                t = now + FRAME_NS  # fell far behind: resync rather than burst
            heapq.heappush(heap, (t, i))

    w0 = w1 = None
    if window and window.startswith("stop"):
        parts = window.split()
        if len(parts) == 3:
            w0, w1 = int(parts[1]), int(parts[2])
    print(json.dumps(interval_stats(seqs, kns, uns, w0, w1, sent, other_sources)), flush=True)


def _pcts(devs: list[int]) -> dict:
    devs.sort()
    ms = lambda v: None if v is None else round(v / 1e6, 3)  # noqa: E731
    n = len(devs)
    return {
        "intervals": n,
        "p50_ms": ms(L.percentile(devs, 50)),
        "p90_ms": ms(L.percentile(devs, 90)),
        "p99_ms": ms(L.percentile(devs, 99)),
        "p99_9_ms": ms(L.percentile(devs, 99.9)),
        "max_ms": ms(devs[-1] if devs else None),
        "over_5ms": sum(1 for d in devs if d > 5_000_000),
    }


def interval_stats(seqs, kns, uns, w0, w1, sent, other_sources) -> dict:
    dk: list[int] = []
    du: list[int] = []
    per_stream_p99 = []
    received = expected = gaps = reordered = 0
    streams = 0
    jitters = []
    for i in range(len(seqs)):
        idx = [j for j in range(len(seqs[i])) if (w0 is None or kns[i][j] >= w0) and (w1 is None or kns[i][j] <= w1)]
        if len(idx) < 2:
            continue
        streams += 1
        received += len(idx)
        first, last = seqs[i][idx[0]], seqs[i][idx[-1]]
        expected += ((last - first) & 0xFFFF) + 1
        local = []
        jitter = 0.0
        for a, b in zip(idx, idx[1:]):
            ds = (seqs[i][b] - seqs[i][a]) & 0xFFFF
            if ds != 1:
                if ds == 0 or ds > 0x8000:
                    reordered += 1
                else:
                    gaps += 1
                continue
            tk = kns[i][b] - kns[i][a]
            d = abs(tk - FRAME_NS)
            dk.append(d)
            local.append(d)
            du.append(abs(uns[i][b] - uns[i][a] - FRAME_NS))
            jitter += (d - jitter) / 16.0  # RFC 3550 interarrival jitter (ns)
        jitters.append(jitter / 1e6)
        local.sort()
        per_stream_p99.append(L.percentile(local, 99) / 1e6 if local else 0)
    return {
        "streams": streams,
        "window_s": None if w0 is None else round((w1 - w0) / 1e9, 1),
        "packets_received": received,
        "packets_per_stream_per_s": None if w0 is None or not streams else round(received / streams / ((w1 - w0) / 1e9), 2),
        "packets_expected": expected,
        "lost": expected - received,
        "gaps": gaps,
        "reordered_or_dup": reordered,
        "kernel_timestamps": _pcts(dk),
        "userspace_timestamps": _pcts(du),
        "worst_stream_p99_ms": round(max(per_stream_p99), 3) if per_stream_p99 else None,
        "rfc3550_jitter_ms_mean": round(sum(jitters) / len(jitters), 3) if jitters else None,
        "rfc3550_jitter_ms_max": round(max(jitters), 3) if jitters else None,
        "packets_sent_back": sum(sent),
        "packets_from_unexpected_source": sum(other_sources),
    }


# ------------------------------------------------------------------ driver


def sipp_cmd(server, scenario_file: Path, calls: int, rate: int, period_ms: int, port: int, media_port: int, sdir: Path, limit_s: int, extra: list[str]):
    """SIPp placing `calls` calls, `rate` of them per `period_ms`."""
    return L.load_prefix() + [
        "sipp", "-sf", str(scenario_file),
        "-i", "127.0.0.1", "-mi", "127.0.0.1",
        "-p", str(port), "-mp", str(media_port),
        "-s", "12345",
        "-r", str(rate), "-rp", str(period_ms),
        "-m", str(calls), "-l", str(calls),
        "-nostdin",
        "-timeout", f"{limit_s}s", "-timeout_error",
        "-trace_stat", "-stf", str(sdir / "stat.csv"), "-fd", "2",
        "-trace_err", "-error_file", str(sdir / "errors.log"),
        "-trace_screen", "-screen_file", str(sdir / "screen.log"),
        *extra,
        server.sip,
    ]


def run_once(args, n: int) -> dict:
    k, r, hold = min(args.probes, n), args.rate, args.hold
    m = n - k
    work = Path(tempfile.mkdtemp(prefix=f"hotline-media{n}-"))
    audio = make_caller_audio(work / "caller.al")
    server = L.Server(
        args.binary,
        {
            "sip": {
                "max_calls": n + 1000,
                "invite_rate_per_ip": 1_000_000.0,
                "invite_burst_per_ip": 1_000_000.0,
            },
            # Callers stream audio back, so the RTP timeout stays on: a caller
            # whose audio does not reach the server is hung up and counted.
            "media": {"rtp_timeout_secs": args.rtp_timeout},
            "greeting": {"idle_hangup_secs": 3600},
        },
        workdir=work / "server",
        log_filter=args.log_filter,
    )
    server.start()
    sampler = L.Sampler(server, period=1.0)
    sampler.start()
    time.sleep(2)
    idle_rss = L.proc_rss_kb(server.pid)
    m0 = server.metrics()
    udp0 = L.udp_counters()

    # Probe receiver.
    csv = work / "probe_ports.csv"
    recv = L.track(subprocess.Popen(
        L.load_prefix() + [sys.executable, __file__, "_receiver", "--count", str(k), "--csv", str(csv),
         "--max-seconds", str(n / r + hold + 240)] + (["--no-send"] if args.caller_media == "none" else []),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(work / "receiver.err", "wb"),
    ))
    sampler.add_pid("receiver", recv.pid)
    if recv.stdout.readline().strip() != b"READY":
        raise SystemExit("probe receiver did not start: " + (work / "receiver.err").read_text())

    # Timeline: both SIPp instances ramp together over N/r seconds, the probe
    # calls spread evenly among the others (so they sit all along the media
    # workers' stream lists, not just at the front of each tick); every call is
    # scheduled to stay up until `hold` + margin after the last one is up.
    margin = 8
    ramp_ms = max(1000, int(n / r * 1000))
    pause_ms = int(ramp_ms + (hold + margin) * 1000)
    limit_s = int(ramp_ms / 1000 + hold + margin + 90)

    sp_dir = work / "sipp-probe"
    sp_dir.mkdir()
    (sp_dir / "probe.xml").write_text(scenario("probe", "127.0.0.1", "[field0]", "", pause_ms + 2000))
    probe = L.track(subprocess.Popen(
        sipp_cmd(server, sp_dir / "probe.xml", k, k, ramp_ms, L.free_udp_port(1), L.free_udp_port(4), sp_dir, limit_s, ["-inf", str(csv)]),
        cwd=sp_dir, stdin=subprocess.DEVNULL, stdout=open(sp_dir / "stdout.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    ))
    sampler.add_pid("sipp_probe", probe.pid)
    t_start = time.monotonic()

    sm_dir = work / "sipp-main"
    sm_dir.mkdir()
    extra = ["-rtp_threadtasks", str(args.rtp_threadtasks)]
    if args.caller_media == "stream":
        (sm_dir / "caller.al").write_bytes(audio.read_bytes())
        after_ack = '  <nop><action><exec rtp_stream="caller.al,-1,8"/></action></nop>\n'
    elif args.caller_media == "echo":
        after_ack = ""
        extra = ["-rtp_echo"]
    else:
        after_ack = ""
    (sm_dir / "main.xml").write_text(scenario("main", "[media_ip]", "[media_port]", after_ack, pause_ms))
    main = L.track(subprocess.Popen(
        sipp_cmd(server, sm_dir / "main.xml", m, m, ramp_ms, L.free_udp_port(1), L.free_udp_port(4), sm_dir, limit_s, extra),
        cwd=sm_dir, stdin=subprocess.DEVNULL, stdout=open(sm_dir / "stdout.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    ))
    sampler.add_pid("sipp_main", main.pid)

    # Wait for all N up.
    up_deadline = time.monotonic() + ramp_ms / 1000 + 30
    all_up = None
    peak_active = 0
    while time.monotonic() < up_deadline:
        try:
            active = server.metrics().get("hotline_active_calls", 0)
        except Exception:
            active = 0
        peak_active = max(peak_active, active)
        if active >= n:
            all_up = time.monotonic()
            break
        if main.poll() is not None or probe.poll() is not None:
            break
        time.sleep(0.25)
    ramp_s = None if all_up is None else round(all_up - t_start, 1)

    # Hold: measure over [all_up + 1, all_up + 1 + hold].
    if all_up is not None:
        w_start_mono = all_up + 1
        time.sleep(max(0.0, w_start_mono - time.monotonic()))
        w_start_real = time.time_ns()
        time.sleep(hold)
        w_end_real = time.time_ns()
        w_end_mono = time.monotonic()
    else:
        w_start_mono = w_end_mono = time.monotonic()
        w_start_real = w_end_real = time.time_ns()

    rss_window = [s.rss.get(server.pid) for s in sampler.window(w_start_mono, w_end_mono) if s.rss.get(server.pid)]
    active_window = [s.metrics.get("hotline_active_calls") for s in sampler.window(w_start_mono, w_end_mono) if "hotline_active_calls" in s.metrics]
    try:
        recv.stdin.write(f"stop {w_start_real} {w_end_real}\n".encode())
        recv.stdin.flush()
        out = recv.stdout.readline()
        probe_stats = json.loads(out) if out.strip() else {"error": "no output"}
    except (BrokenPipeError, json.JSONDecodeError) as e:
        probe_stats = {"error": str(e)}
    L.stop(recv)

    # Let the calls end (BYE) within their deadline.
    rc_main, hung_main = L.wait_sipp(main, sm_dir / "stat.csv", m, limit_s)
    rc_probe, hung_probe = L.wait_sipp(probe, sp_dir / "stat.csv", k, limit_s)
    time.sleep(2)
    m1 = server.metrics()
    udp1 = L.udp_counters()
    sampler.stop()

    stats_main = L.parse_sipp_stats(sm_dir / "stat.csv")
    stats_probe = L.parse_sipp_stats(sp_dir / "stat.csv")

    def delta(name):
        return m1.get(name, 0) - m0.get(name, 0)

    def wdelta(name):
        return sampler.metric_delta(name, w_start_mono, w_end_mono)

    def wrate(name):
        v = sampler.metric_rate(name, w_start_mono, w_end_mono)
        return None if v is None else round(v)

    rss_at_n = L.median(rss_window)
    result = {
        "calls": n,
        "probes": k,
        "rate": r,
        "hold_s": hold,
        "caller_media": args.caller_media,
        "all_up": all_up is not None,
        "ramp_s": ramp_s,
        "peak_active_before_window": peak_active,
        "active_calls_in_window_min": min(active_window) if active_window else None,
        "active_calls_in_window_max": max(active_window) if active_window else None,
        "sipp_main": {"exit": rc_main, "hung_at_exit": hung_main, "ok": L.sipp_int(stats_main, "SuccessfulCall(C)"), "failed": L.sipp_int(stats_main, "FailedCall(C)"),
                      "retrans": L.sipp_int(stats_main, "Retransmissions(C)"), "invite_to_200_ms": L.sipp_time_ms(stats_main.get("ResponseTime1(C)"))},
        "sipp_probe": {"exit": rc_probe, "hung_at_exit": hung_probe, "ok": L.sipp_int(stats_probe, "SuccessfulCall(C)"), "failed": L.sipp_int(stats_probe, "FailedCall(C)")},
        "server_answered": int(delta('hotline_calls_total{result="answered"}')),
        "server_other_results": {kk.split('"')[1]: delta(kk) for kk in m1 if kk.startswith("hotline_calls_total{") and "answered" not in kk and delta(kk)},
        "server_cpu_pct": _r(sampler.cpu_percent("server", w_start_mono, w_end_mono)),
        "server_threads_pct": sampler.threads_percent(w_start_mono, w_end_mono),
        "server_sched": sampler.sched_stats(w_start_mono, w_end_mono),
        "ksoftirqd_cpu_pct": _r(sampler.softirqd_percent(w_start_mono, w_end_mono)),
        "vm_steal_pct": _r(sampler.steal_percent(w_start_mono, w_end_mono)),
        "sipp_main_cpu_pct": _r(sampler.cpu_percent("sipp_main", w_start_mono, w_end_mono)),
        "sipp_probe_cpu_pct": _r(sampler.cpu_percent("sipp_probe", w_start_mono, w_end_mono)),
        "receiver_cpu_pct": _r(sampler.cpu_percent("receiver", w_start_mono, w_end_mono)),
        "machine_busy_pct": _r(sampler.machine_percent(w_start_mono, w_end_mono)),
        "other_processes_cpu_pct": _r(sampler.others_percent(w_start_mono, w_end_mono)),
        "server_rss_idle_mb": _mb(idle_rss),
        "server_rss_at_n_mb": _mb(rss_at_n),
        "server_rss_peak_mb": _mb(sampler.rss_peak_kb("server")),
        "rss_per_call_kb": None if not rss_at_n or not idle_rss else round((rss_at_n - idle_rss) / n, 1),
        "rtp_sent_pps": wrate("hotline_rtp_packets_sent_total"),
        "rtp_received_pps": wrate("hotline_rtp_packets_received_total"),
        "expected_pps_each_way": n * 50,
        "media_tick_overruns_window": _int(wdelta("hotline_media_tick_overruns_total")),
        "media_tick_overruns_total": int(delta("hotline_media_tick_overruns_total")),
        "rtp_late_packets_window": _int(wdelta("hotline_rtp_late_packets_total")),
        "rtp_invalid_packets_window": _int(wdelta("hotline_rtp_invalid_packets_total")),
        "probe": probe_stats,
        "udp": L.udp_delta(udp0, udp1),
        "sipp_errors": L.sipp_error_lines(sm_dir) + L.sipp_error_lines(sp_dir),
        "server_log": server.log_summary(),
        "workdir": str(work),
    }
    # Did the callers really stream back? (SIPp can fall behind on a busy machine.)
    rx, due = result["rtp_received_pps"], result["expected_pps_each_way"]
    result["caller_audio_fraction"] = None if rx is None else round(rx / due, 3)
    p99 = (probe_stats.get("kernel_timestamps") or {}).get("p99_ms")
    server_ok = bool(
        all_up is not None
        and result["active_calls_in_window_min"] == n
        and (rc_main == 0 or (hung_main and result["sipp_main"]["ok"] == m and result["sipp_main"]["failed"] == 0))
        and (rc_probe == 0 or (hung_probe and result["sipp_probe"]["ok"] == k and result["sipp_probe"]["failed"] == 0))
        and result["server_answered"] == n
        and not result["server_other_results"]
        and p99 is not None and p99 < 5.0
    )
    load_complete = args.caller_media == "none" or (result["caller_audio_fraction"] or 0) >= 0.95
    # INCOMPLETE: the server held every call within target, but the callers
    # (SIPp) could not stream all their audio back, so the load was lighter.
    result["verdict"] = "PASS" if server_ok and load_complete else ("INCOMPLETE" if server_ok else "FAIL")
    result["passed"] = result["verdict"] == "PASS"
    server.stop()
    if result["passed"] and not args.keep:
        subprocess.run(["rm", "-rf", str(work)])
    return result


def _r(v, d=1):
    return None if v is None else round(v, d)


def _mb(kb):
    return None if kb is None else round(kb / 1024, 1)


def _int(v):
    return None if v is None else int(v)


def summary(r: dict) -> str:
    p = r["probe"]
    kt = p.get("kernel_timestamps", {})
    ut = p.get("userspace_timestamps", {})
    return (
        f"N={r['calls']} {r['verdict']}  all up {r['all_up']} (ramp {r['ramp_s']} s, active in window "
        f"{r['active_calls_in_window_min']}..{r['active_calls_in_window_max']})  "
        f"SIPp main ok {r['sipp_main']['ok']} failed {r['sipp_main']['failed']} exit {r['sipp_main']['exit']}, "
        f"probe ok {r['sipp_probe']['ok']} failed {r['sipp_probe']['failed']}  server answered {r['server_answered']} other {r['server_other_results']}\n"
        f"  interval deviation (kernel ts, {p.get('streams')} streams, {kt.get('intervals')} intervals): "
        f"p50 {kt.get('p50_ms')} p99 {kt.get('p99_ms')} p99.9 {kt.get('p99_9_ms')} max {kt.get('max_ms')} ms, >5ms {kt.get('over_5ms')}; "
        f"user-space ts p50 {ut.get('p50_ms')} p99 {ut.get('p99_ms')} max {ut.get('max_ms')} ms; "
        f"lost {p.get('lost')}/{p.get('packets_expected')}, {p.get('packets_per_stream_per_s')} packets/s per stream (50 due)\n"
        f"  server CPU {r['server_cpu_pct']}% {r['server_threads_pct']}  ksoftirqd {r['ksoftirqd_cpu_pct']}%  SIPp main {r['sipp_main_cpu_pct']}% probe {r['sipp_probe_cpu_pct']}% "
        f"receiver {r['receiver_cpu_pct']}%  machine {r['machine_busy_pct']}% (other processes {r['other_processes_cpu_pct']}%, VM steal {r['vm_steal_pct']}%)\n"
        f"  RSS idle {r['server_rss_idle_mb']} MB, with N up {r['server_rss_at_n_mb']} MB -> {r['rss_per_call_kb']} KB/call; "
        f"RTP sent {r['rtp_sent_pps']} pps received {r['rtp_received_pps']} pps (expect {r['expected_pps_each_way']}: callers' audio {r['caller_audio_fraction']}); "
        f"overruns {r['media_tick_overruns_window']} in window / {r['media_tick_overruns_total']} total; late {r['rtp_late_packets_window']}\n"
        f"  media threads: {(r['server_sched'] or {}).get('media-N')}"
    )


def _kernel_ts(key: str):
    return lambda r: r["probe"].get("kernel_timestamps", {}).get(key)


# Medians of the runs of one N (--repeat).
MEDIANS = [("p99", _kernel_ts("p99_ms")), ("p50", _kernel_ts("p50_ms")), ("max", _kernel_ts("max_ms")),
           ("cpu", lambda r: r["server_cpu_pct"]), ("rss_per_call_kb", lambda r: r["rss_per_call_kb"])]


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_receiver":
        receiver_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="1000", help="N, or a list like 1000,1500,2000 (stops at the first failure)")
    ap.add_argument("--hold", type=int, default=60, help="seconds all N calls are held (default 60)")
    ap.add_argument("--probes", type=int, default=50, help="calls whose media goes to the measuring receiver (default 50)")
    ap.add_argument("--rate", type=int, default=100, help="calls per second while ramping up (default 100)")
    ap.add_argument("--caller-media", choices=["stream", "echo", "none"], default="stream")
    ap.add_argument("--rtp-threadtasks", type=int, default=100,
                    help="SIPp -rtp_threadtasks: rtp_stream calls per SIPp thread (default 100; SIPp's own 20 makes SIPp "
                         "itself fall behind on 2 cores)")
    ap.add_argument("--rtp-timeout", type=int, default=30, help="server media.rtp_timeout_secs (default 30)")
    ap.add_argument("--repeat", type=int, default=1)
    args = L.start(ap, "concurrent-media")
    L.run_series(args, run_once, summary,
                 f"most concurrent calls held {args.hold} s with media and p99 deviation < 5 ms", MEDIANS)


if __name__ == "__main__":
    main()
