#!/usr/bin/env python3
"""Concurrent bridged calls (callers <-> agent seats) for the release `hotline` binary.

    benches/load/bridged_calls.py [--calls 100[,300,500,700]] [--hold 60] [--rate 50]

Holds N calls up at once for --hold seconds, each one a caller bridged to an
agent seat by the ACD, media flowing both ways and the conversation recorded:

  * The server gets N seats ([[seat]] 20001.., password per seat, language
    cmn, no skills), one queue `general` (longest-idle, ring 15 s, wrap-up 0,
    max_misses 3, record = true), the registrar offering MD5 only (SIPp's
    digest) with available_on_register = true, and a private flows folder
    whose main flow is one queue node (prompt please_hold) into `general`
    (plus the repository's survey flow and prompts), checked with
    `hotline flows check` first. Callers queue at once instead of walking
    the 25 s main menu.
  * Seats: SIPp #1 registers all N seats from one local port P (digest MD5,
    Expires 3600; the injection file holds user;[authentication ...] as
    SIPp 3.6.1 cannot nest [field] inside [authentication]) and exits. SIPp #2 then
    runs as UAS on the same port P, because the server sends its INVITE to
    the address the REGISTER came from: it answers 180/200 with a PCMU
    answer (--seat-codec; the callers offer PCMA, so the bridge transcodes),
    streams a looping 440 Hz tone back (`rtp_stream`) and answers the
    server's BYE.
  * Callers: SIPp #3 places N calls at --rate calls/s, PCMA only, streaming a
    looping A-law copy of the greeting (`rtp_stream`, as concurrent_media.py),
    and keeps each call up until every call is bridged and --hold seconds
    have passed (pause = ramp + hold + margin), then sends BYE.

Measured over the --hold window that starts 1 s after all N seats are
in_call (`hotline_seats{activity="in_call"}`, sampled every second with
`hotline_active_calls`): the smallest and largest in_call and active-call
counts, server CPU % (utime+stime from /proc, 100 % = one core; per thread
kind with run-queue wait), RSS (fresh server, after the N seats registered,
median with N bridged: (RSS bridged - RSS registered) / N per call),
hotline_rtp_packets_sent/received rates against 2 x N x 50/s (each call has a
caller leg and a seat leg), tick overruns, skipped frames, late packets and
the UDP counters. After the calls end: every SIPp's pass/fail counts, the
server's call results and end reasons (log and SQLite call records: seat,
connected_at, seat_ended_at, call_recording), the WAV files in
ivr.recordings_dir (count, total size against 32,000 bytes per bridged
second from the call records) and a handful of them decoded: stereo
8 kHz, caller on the left (speech), seat on the right (the tone), both
non-silent.

Verdict: PASS = all N seats registered, all N bridged for the whole window,
every call of every SIPp succeeded, the server answered N and ended none
itself, it sent >= 95 % of 2 x N x 50 packets/s, N recordings of the right
size, and the decoded ones are non-silent stereo; INCOMPLETE = the server
part passed but the SIPp instances returned under 95 % of their audio, so
the offered load was lighter than asked; FAIL otherwise. A list in --calls
stops at the first FAIL.

Diagnostics: --probe-blocking times POST /api/v1/admin/reload half-way
through the window (the reload runs on tokio's blocking pool, where every
recording's writer holds a thread for its whole call); --no-record turns the
queue's recording off to see what recording costs (such a run cannot PASS).

Harness notes: SIPp 3.6.1 does not expand [field0] inside
[authentication ...], so the whole keyword sits in the injection file.
SIPp's rtp_stream only sends: the server's packets to SIPp pile up and are
dropped in SIPp's few RTP sockets (UDP RcvbufErrors of about half of all
datagrams); the server's own sockets are listed separately
(udp_socket_drops_at_window_end) and must show none.

Bounded: every SIPp has a -timeout (ramp + hold + ~100 s), every wait has a
deadline, every process is killed at exit. Runs in a private loopback-only
network namespace when `unshare -n` is allowed; --no-netns skips it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadlib as L  # noqa: E402


def probe_blocking_pool(server: L.Server, timeout: float = 5.0) -> dict:
    """POST /api/v1/admin/reload (same config file, so nothing changes): the
    server runs the reload on tokio's blocking pool, which the recordings'
    writers also occupy, one thread per recorded call for the whole call."""
    status, body, seconds = L.api_request(server.http, "POST", "/api/v1/admin/reload", timeout=timeout)
    # status None: timed out, queued behind the recordings.
    return {"status": status, "seconds": round(seconds, 3), "body": str(body)[:200]}


# ------------------------------------------------------------------ one run


def run_once(args, n: int) -> dict:
    rate, hold = args.rate, args.hold
    rig = L.BridgeRig(args, n, "bridged_calls.py")
    rig.start_server()
    margin = 10
    ramp_ms = max(1000, int(n / rate * 1000))
    pause_ms = int(ramp_ms + (hold + margin) * 1000)
    limit_s = int(ramp_ms / 1000 + hold + margin + 90)

    rig.register_seats()
    rig.start_seats(limit_s)
    rig.start_callers(pause_ms, limit_s)
    # Wait for all N bridged; the window must end before the first caller's BYE.
    all_bridged, peak_in_call = rig.wait_bridged(rig.t_start + ramp_ms / 1000 + margin - 2)
    ramp_s = None if all_bridged is None else round(all_bridged - rig.t_start, 1)

    probe: dict = {}
    if all_bridged is not None:
        w0 = all_bridged + 1
        time.sleep(max(0.0, w0 - time.monotonic()))
        if args.probe_blocking:
            time.sleep(hold / 2)
            probe = probe_blocking_pool(rig.server)
            time.sleep(max(0.0, w0 + hold - time.monotonic()))
        else:
            time.sleep(hold)
        w1 = time.monotonic()
    else:
        w0 = w1 = time.monotonic()
    win = rig.window_figures(w0, w1, streams_per_call=2)
    end = rig.finish(limit_s)
    rec = rig.recordings()
    rss_at_n = win.pop("rss_kb_median")
    result = {
        "calls": n,
        "rate": rate,
        "hold_s": hold,
        "seat_codec": args.seat_codec,
        "registered": {"sipp": rig.reg_stats, "seats_available": rig.seats_avail},
        "all_bridged": all_bridged is not None,
        "ramp_s": ramp_s,
        "peak_in_call_before_window": peak_in_call,
        **win,
        **end,
        "server_rss_bridged_mb": L._mb(rss_at_n),
        "rss_per_bridged_call_kb": None if not rss_at_n or not rig.registered_rss
        else round((rss_at_n - rig.registered_rss) / n, 1),
        "blocking_pool_probe": probe or None,
        "recordings": rec,
        "recordings_ok": rec["ok"],
    }
    result["rss_per_call_kb"] = result["rss_per_bridged_call_kb"]
    server_ok = bool(
        rig.reg_stats["ok"] == n and rig.reg_stats["failed"] == 0 and (rig.seats_avail or 0) >= n
        and all_bridged is not None
        and result["in_call_window_min"] == n and result["in_call_samples"] >= hold - 2
        and result["active_calls_window_min"] == n
        and L.sipp_ok(result["sipp_callers"], n) and L.sipp_ok(result["sipp_seats"], n)
        and result["server_answered"] == n
        and not result["server_other_results"]
        and (result["server_sent_fraction"] or 0) >= 0.95
        and rec["ok"]
    )
    load_complete = (result["sipp_audio_fraction"] or 0) >= 0.95
    result["verdict"] = "PASS" if server_ok and load_complete else ("INCOMPLETE" if server_ok else "FAIL")
    result["passed"] = result["verdict"] == "PASS"
    rig.discard_if(result["passed"])
    return result


def summary(r: dict) -> str:
    rec = r["recordings"]
    dec = rec["decoded"]
    sc, ss, reg = r["sipp_callers"], r["sipp_seats"], r["registered"]["sipp"]
    return (
        f"N={r['calls']} {r['verdict']}  registered {reg['ok']}/{r['calls']} (available {r['registered']['seats_available']}); "
        f"all bridged {r['all_bridged']} (ramp {r['ramp_s']} s); seats in_call in window {r['in_call_window_min']}..{r['in_call_window_max']} "
        f"({r['in_call_samples']} samples), active calls {r['active_calls_window_min']}..{r['active_calls_window_max']}\n"
        f"  SIPp callers ok {sc['ok']} failed {sc['failed']} exit {sc['exit']}{' (hung)' if sc['hung_at_exit'] else ''}; "
        f"seats ok {ss['ok']} failed {ss['failed']} exit {ss['exit']}{' (hung)' if ss['hung_at_exit'] else ''}; "
        f"server answered {r['server_answered']} other {r['server_other_results']}, queue answered {r['queue_answered']}; "
        f"records {r['call_records'].get('end_reasons')} codecs {r['call_records'].get('codecs')}\n"
        f"  server CPU {r['server_cpu_pct']}% ({r['server_cpu_per_call_pct']}% per call) {r['server_threads_pct']}  ksoftirqd {r['ksoftirqd_cpu_pct']}%  "
        f"SIPp {r['sipp_cpu_pct']}  machine {r['machine_busy_pct']}% "
        f"(other processes {r['other_processes_cpu_pct']}%, VM steal {r['vm_steal_pct']}%)\n"
        f"  RSS idle {r['server_rss_idle_mb']} MB, {r['calls']} seats registered {r['server_rss_registered_mb']} MB, "
        f"bridged {r['server_rss_bridged_mb']} MB -> {r['rss_per_bridged_call_kb']} KB per bridged call (peak {r['server_rss_peak_mb']} MB); "
        f"threads {r['server_threads_at_window_end']}\n"
        f"  RTP sent {r['rtp_sent_pps']} pps received {r['rtp_received_pps']} pps (expect {r['expected_pps_each_way']} each way: "
        f"sent {r['server_sent_fraction']}, SIPp audio {r['sipp_audio_fraction']}); streams {r['media_streams_window_max']}; "
        f"overruns {r['media_tick_overruns_window']} in window / {r['media_tick_overruns_total']} total, skipped frames {r['media_skipped_frames_window']}, "
        f"late {r['rtp_late_packets_window']}; UDP {r['udp']}; "
        f"socket drops at window end {r['udp_socket_drops_at_window_end']}\n"
        f"  recordings {rec['files']} files, {rec['mb']} MB (size/expected {rec['size_ratio']}), decoded {sum(1 for d in dec if d.get('ok'))}/{len(dec)} ok"
        + (f" e.g. {dec[0]}" if dec else "")
        + f"\n  server log: {r['server_log']['warn_error_lines']} WARN/ERROR lines, ends {r['server_log']['call_end_reasons']}"
        + (f"\n  admin reload mid-window (blocking pool probe): {r['blocking_pool_probe']}" if r.get("blocking_pool_probe") else "")
    )


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="100", help="N, or a list like 100,300,500,700 (stops at the first failure)")
    ap.add_argument("--probe-blocking", action="store_true",
                    help="half-way through the window, time POST /api/v1/admin/reload (runs on tokio's blocking pool, "
                         "which holds one thread per recorded call)")
    args = L.start(ap, "bridged-calls", bridge=True)
    L.run_series(args, run_once, summary,
                 f"most concurrent bridged calls held {args.hold} s with media both ways, recording on and 0 failed calls")


if __name__ == "__main__":
    main()
