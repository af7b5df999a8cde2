#!/usr/bin/env python3
"""Concurrent three-party conferences (caller + agent + trunk 119) for the release `hotline` binary.

    benches/load/conferences.py [--calls 50[,100,150,200]] [--hold 60] [--rate 50] [--parallel 20]

Holds N three-way calls up at once for --hold seconds, each one a caller, an
agent seat and the 119 trunk, mixed by the server's media engine (each party
hears the other two), with media from all three and the conversation
recorded:

  * Callers, seats and the server as in bridged_calls.py (loadlib.BridgeRig):
    N SIPp callers (PCMA, the greeting in a loop) queue for N registered SIPp
    seats (--seat-codec, a 440 Hz tone), queue recording on. The server's
    config adds one `[[trunk]]` 119 whose URI is a third SIPp, a UAS that
    answers every INVITE at once in --target-codec and streams a
    --target-tone Hz tone (`rtp_stream`), with OPTIONS checks off
    (`options_secs = 0`) and `[callback] offer = false` (no pstn trunk).
  * The driver follows the server's live events (WebSocket /api/v1/events,
    as an agent desktop does). Once all N seats are in_call it measures a
    --baseline window of plain bridged calls, takes each caller's SIP
    Call-ID from the `connected` events, and POSTs
    /api/v1/calls/{id}/conference {"target": "119"} for every call from
    --parallel threads, counting the answers' `result`.
  * When all N answered, the --hold window starts (1 s later).

Measured over the hold window (sampled every second): seats in_call,
hotline_active_calls and hotline_media_streams (3 per conference), server CPU
% (utime+stime from /proc, 100 % = one core; per thread kind with run-queue
wait) -> % per conference, RSS ((RSS with N conferences - RSS with the N
seats registered) / N per conference, and the increase over the bridged
baseline), hotline_rtp_packets_sent/received against 3 x N x 50/s, media
tick overruns and skipped frames, late packets, UDP drops. Events in the
window: any `ended` conversation or `transfer` event other than the
conference's own ringing/answered is a drop. After the calls end: every
SIPp's pass/fail counts, the server's call results, end reasons and each
record's `transfers` (one conference to 119, answered, ended by the caller
leaving, talk time >= --hold), the recordings (N files of the right size;
a sample decoded: caller on the left, and on the right, in the last 10 s,
both the seat's 440 Hz and the trunk's tone, i.e. the caller hears the
other two mixed).

Verdict: PASS = all N bridged, N conferences answered, all N up for the
whole window with 3N media streams, no drop, 0 skipped frames (tick
overruns) in the window, every call of every SIPp succeeded, the server
answered N, ended none itself and every record shows the conference, it
sent >= 95 % of 3 x N x 50 packets/s, the recordings check, and the load
was complete: the SIPp instances returned >= 95 % of their audio and none
reported overload (SIPp's watchdog: a starved load generator sends its
audio unevenly). INCOMPLETE = the load was not complete and nothing failed
but, possibly, the recordings' audio. FAIL otherwise. A list in --calls
stops at the first FAIL.

Bounded: every SIPp has a -timeout (ramp + baseline + conference budget +
hold + ~100 s), every wait and request has a deadline, every process is
killed at exit. Runs in a private loopback-only network namespace when
`unshare -n` is allowed; --no-netns skips it.
"""

from __future__ import annotations

import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadlib as L  # noqa: E402

TRUNK = "119"


def conference_all(http: str, call_ids: list[str], parallel: int, deadline: float) -> dict:
    """POSTs a conference with the trunk for every call; the results and how long each answer took."""

    def one(call_id: str):
        left = deadline - time.monotonic()
        if left <= 1:
            return call_id, None, "not sent: conference budget spent", 0.0
        status, body, secs = L.api_request(http, "POST", f"/api/v1/calls/{urllib.parse.quote(call_id, safe='')}/conference",
                                           {"target": TRUNK}, timeout=min(160.0, left))
        return call_id, status, body, secs

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        answers = list(pool.map(one, call_ids))
    results: dict[str, int] = {}
    secs = []
    failures = []
    for call_id, status, body, s in answers:
        if status == 200 and isinstance(body, dict):
            key = str(body.get("result"))
        else:
            key = f"http-{status}"
        results[key] = results.get(key, 0) + 1
        secs.append(s)
        if key != "answered" and len(failures) < 5:
            failures.append({"call_id": call_id, "status": status, "body": body})
    secs.sort()
    return {"results": results, "answered": results.get("answered", 0), "seconds": round(time.monotonic() - t0, 2),
            "request_ms_p50": _ms(L.percentile(secs, 50)), "request_ms_p99": _ms(L.percentile(secs, 99)),
            "request_ms_max": _ms(secs[-1] if secs else None), "failures": failures}


def _ms(s):
    return None if s is None else round(s * 1000, 1)


def event_counts(events: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in events:
        key = e.get("event", "?")
        if key == "transfer":
            key = f"transfer:{e.get('kind')}:{e.get('state')}" + (f":{e['result']}" if e.get("result") else "")
        out[key] = out.get(key, 0) + 1
    return out


def run_once(args, n: int) -> dict:
    rate, hold = args.rate, args.hold
    trunk_port = L.free_udp_port(1)
    trunk_config = (
        f'[[trunk]]\nname = "{TRUNK}"\nuri = "sip:{TRUNK}@127.0.0.1:{trunk_port}"\n'
        f'description = "conferences.py load test: a SIPp UAS"\nring_secs = {args.ring_secs}\noptions_secs = 0\n\n'
    )
    rig = L.BridgeRig(args, n, "conferences.py", extra_sections={"callback": {"offer": False}},
                      extra_config=trunk_config, ports_per_call=3)
    rig.start_server()
    events = L.EventStream(rig.server.http)
    events.start()

    margin = 10
    ramp_ms = max(1000, int(n / rate * 1000))
    budget = args.conference_budget or int(30 + n / 10)
    pause_ms = int(ramp_ms + (margin + args.baseline + budget + hold + margin) * 1000)
    limit_s = int(pause_ms / 1000 + 90)

    rig.register_seats()
    rig.start_seats(limit_s)
    trunk_dir = rig.work / "sipp-trunk"
    trunk_audio = L.make_tone_audio(rig.work / "trunk.audio", args.target_codec, args.target_tone)
    trunk = rig.start_answerer(trunk_dir, "trunk", args.target_codec, trunk_audio, trunk_port, limit_s)
    rig.start_callers(pause_ms, limit_s)
    # The first caller's BYE comes pause_ms after its ACK: every window must end before.
    last_moment = rig.t_start + pause_ms / 1000 - 2
    all_bridged, peak_in_call = rig.wait_bridged(rig.t_start + ramp_ms / 1000 + margin)
    ramp_s = None if all_bridged is None else round(all_bridged - rig.t_start, 1)

    baseline = None
    conf: dict = {"results": {}, "answered": 0}
    call_ids: list[str] = []
    all_conferenced = None
    w0 = w1 = time.monotonic()
    if all_bridged is not None:
        # Bridged only: the same N calls before the target comes in.
        if args.baseline:
            b0 = all_bridged + 1
            time.sleep(max(0.0, b0 + args.baseline - time.monotonic()))
            baseline = rig.window_figures(b0, time.monotonic(), streams_per_call=2)
        # Each caller's Call-ID, as the agent's desktop learnt it.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            live = events.connected_calls()
            if len(live) >= n:
                break
            time.sleep(0.2)
        call_ids = sorted(set(events.connected_calls().values()))
        t_conf = time.monotonic()
        conf = conference_all(rig.server.http, call_ids, args.parallel, min(t_conf + budget, last_moment - hold - 1))
        conf["started_after_bridged_s"] = round(t_conf - all_bridged, 1)
        # All three streams of every call in the engine.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if rig.server.metrics().get("hotline_media_streams", 0) >= 3 * n:
                break
            time.sleep(0.2)
        all_conferenced = time.monotonic()
        w0 = all_conferenced + 1
        w1 = min(w0 + hold, last_moment)
        time.sleep(max(0.0, w1 - time.monotonic()))
    win = rig.window_figures(w0, w1, streams_per_call=3)
    drops_in_window = [e for e in events.since(w0, w1)
                       if e.get("event") == "ended"
                       or (e.get("event") == "transfer" and e.get("state") not in ("ringing", "answered"))]
    ev_conf = event_counts(events.since(all_bridged or w0, w1))
    events.close()
    end = rig.finish(limit_s, others={"trunk": (trunk, trunk_dir)})
    rec = rig.recordings(tones=(440, args.target_tone), tail_s=10)

    rss_conf = win.pop("rss_kb_median")
    rss_bridged = baseline.pop("rss_kb_median") if baseline else None
    records = end["call_records"]
    expected_transfer = f"conference:{TRUNK}:answered:caller-left"
    result = {
        "calls": n,
        "rate": rate,
        "hold_s": hold,
        "seat_codec": args.seat_codec,
        "target_codec": args.target_codec,
        "registered": {"sipp": rig.reg_stats, "seats_available": rig.seats_avail},
        "all_bridged": all_bridged is not None,
        "ramp_s": ramp_s,
        "peak_in_call_before_window": peak_in_call,
        "call_ids_from_events": len(call_ids),
        "events_lagged": events.lagged,
        "events_error": events.error,
        "conference": conf,
        "events_from_bridged_to_window_end": ev_conf,
        "drops_in_window": len(drops_in_window),
        "drop_events_sample": drops_in_window[:5],
        **win,
        **end,
        "bridged_baseline": baseline,
        "server_rss_conferences_mb": L._mb(rss_conf),
        "rss_per_conference_kb": None if not rss_conf or not rig.registered_rss
        else round((rss_conf - rig.registered_rss) / n, 1),
        "rss_added_by_target_kb": None if not rss_conf or not rss_bridged else round((rss_conf - rss_bridged) / n, 1),
        "recordings": rec,
        "recordings_ok": rec["ok"],
    }
    result["rss_per_call_kb"] = result["rss_per_conference_kb"]
    bcpu = (baseline or {}).get("server_cpu_pct")
    result["cpu_ratio_conference_to_bridged"] = None if not bcpu or result["server_cpu_pct"] is None \
        else round(result["server_cpu_pct"] / bcpu, 2)
    checks = {
        "seats registered": rig.reg_stats["ok"] == n and rig.reg_stats["failed"] == 0 and (rig.seats_avail or 0) >= n,
        "all bridged": all_bridged is not None,
        "every Call-ID from the events": len(call_ids) == n,
        "all conferences answered": conf["answered"] == n,
        "window held": result["window_s"] >= hold - 1 and result["in_call_samples"] >= hold - 2,
        "seats in_call": result["in_call_window_min"] == n,
        "calls up": result["active_calls_window_min"] == n,
        "3 streams per call": result["media_streams_window_min"] == 3 * n,
        "no drop in window": not drops_in_window and not events.lagged,
        "no skipped frames": result["media_skipped_frames_window"] == 0,
        "SIPp callers": L.sipp_ok(result["sipp_callers"], n),
        "SIPp seats": L.sipp_ok(result["sipp_seats"], n),
        "SIPp trunk": L.sipp_ok(result["sipp_trunk"], n),
        "server answered N": result["server_answered"] == n and not result["server_other_results"],
        "end reasons": records.get("end_reasons") == {"caller-bye": n},
        "records' conferences": records.get("transfers") == {expected_transfer: n}
        and (records.get("transfer_talk_s_min") or 0) >= hold,
        "server sent 95 %": (result["server_sent_fraction"] or 0) >= 0.95,
        "recordings": rec["ok"],
    }
    result["checks_failed"] = failed = [k for k, ok in checks.items() if not ok]
    result["sipp_overload_trips"] = sum(result[f"sipp_{k}"]["overload_trips"] for k in ("callers", "seats", "trunk"))
    load_complete = (result["sipp_audio_fraction"] or 0) >= 0.95 and result["sipp_overload_trips"] == 0
    # A starved SIPp sends its audio unevenly, which the recordings show as
    # gaps: with the load incomplete that check says nothing about the server.
    server_ok = not failed or (not load_complete and failed == ["recordings"])
    result["verdict"] = "PASS" if not failed and load_complete else ("INCOMPLETE" if server_ok else "FAIL")
    result["passed"] = result["verdict"] == "PASS"
    rig.discard_if(result["passed"])
    return result


def summary(r: dict) -> str:
    rec, c, b = r["recordings"], r["conference"], r["bridged_baseline"] or {}
    dec = rec["decoded"]
    sipp = ", ".join(f"{k} ok {r[f'sipp_{k}']['ok']} failed {r[f'sipp_{k}']['failed']} exit {r[f'sipp_{k}']['exit']}"
                     + (" (hung)" if r[f"sipp_{k}"]["hung_at_exit"] else "")
                     + (f" overloaded {r[f'sipp_{k}']['overload_trips']}x" if r[f"sipp_{k}"]["overload_trips"] else "")
                     for k in ("callers", "seats", "trunk"))
    return (
        f"N={r['calls']} {r['verdict']}" + (f" (failed: {', '.join(r['checks_failed'])})" if r["checks_failed"] else "")
        + f"\n  bridged {r['all_bridged']} (ramp {r['ramp_s']} s); Call-IDs {r['call_ids_from_events']}; "
        f"conference answers {c['results']} in {c.get('seconds')} s (request p50 {c.get('request_ms_p50')} ms, "
        f"p99 {c.get('request_ms_p99')}, max {c.get('request_ms_max')})"
        + (f" failures {c['failures']}" if c.get("failures") else "")
        + f"\n  window {r['window_s']} s: seats in_call {r['in_call_window_min']}..{r['in_call_window_max']}, "
        f"calls {r['active_calls_window_min']}..{r['active_calls_window_max']}, media streams "
        f"{r['media_streams_window_min']}..{r['media_streams_window_max']}; drops {r['drops_in_window']}; "
        f"events {r['events_from_bridged_to_window_end']} (lagged {r['events_lagged']})"
        f"\n  SIPp {sipp}; server answered {r['server_answered']} other {r['server_other_results']}; "
        f"records {r['call_records'].get('end_reasons')} transfers {r['call_records'].get('transfers')} "
        f"(shortest conference {r['call_records'].get('transfer_talk_s_min')} s); callers' RTP at the server "
        f"{r['call_records'].get('caller_rtp')}"
        f"\n  server CPU {r['server_cpu_pct']}% = {r['server_cpu_per_call_pct']}% per conference "
        f"(bridged baseline {b.get('server_cpu_pct')}% = {b.get('server_cpu_per_call_pct')}% per call; "
        f"ratio {r['cpu_ratio_conference_to_bridged']}) {r['server_threads_pct']}; ksoftirqd {r['ksoftirqd_cpu_pct']}%; "
        f"SIPp {r['sipp_cpu_pct']}; machine {r['machine_busy_pct']}% (other processes {r['other_processes_cpu_pct']}%, "
        f"VM steal {r['vm_steal_pct']}%)"
        f"\n  RSS idle {r['server_rss_idle_mb']} MB, seats registered {r['server_rss_registered_mb']} MB, bridged "
        f"{b.get('server_rss_mb')} MB, conferences {r['server_rss_conferences_mb']} MB -> {r['rss_per_conference_kb']} KB "
        f"per conference ({r['rss_added_by_target_kb']} KB added by the target; peak {r['server_rss_peak_mb']} MB)"
        f"\n  RTP sent {r['rtp_sent_pps']} pps received {r['rtp_received_pps']} pps (expect {r['expected_pps_each_way']} "
        f"each way: sent {r['server_sent_fraction']}, SIPp audio {r['sipp_audio_fraction']}); overruns "
        f"{r['media_tick_overruns_window']} in window / {r['media_tick_overruns_total']} total, skipped frames "
        f"{r['media_skipped_frames_window']} / {r['media_skipped_frames_total']}, late {r['rtp_late_packets_window']}; "
        f"UDP {r['udp']}; socket drops {r['udp_socket_drops_at_window_end']}"
        f"\n  recordings {rec['files']} files, {rec['mb']} MB (size/expected {rec['size_ratio']}), decoded "
        f"{sum(1 for d in dec if d.get('ok'))}/{len(dec)} ok" + (f" e.g. {dec[0]}" if dec else "")
        + f"\n  server log: {r['server_log']['warn_error_lines']} WARN/ERROR lines, ends {r['server_log']['call_end_reasons']}"
    )


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="50", help="N, or a list like 50,100,150,200 (stops at the first failure)")
    ap.add_argument("--baseline", type=int, default=15,
                    help="seconds of plain bridged calls measured before the conferences (default 15; 0 skips)")
    ap.add_argument("--parallel", type=int, default=20, help="conference requests in flight at once (default 20)")
    ap.add_argument("--conference-budget", type=int, default=0,
                    help="seconds allowed for all N conference requests (default 30 + N/10)")
    ap.add_argument("--target-codec", choices=["pcmu", "pcma"], default="pcma", help="codec of the 119 trunk's answer (default pcma)")
    ap.add_argument("--target-tone", type=int, default=1000, help="Hz of the tone the 119 trunk streams (default 1000)")
    ap.add_argument("--ring-secs", type=int, default=30, help="ring_secs of the 119 trunk (default 30)")
    args = L.start(ap, "conferences", bridge=True)
    L.run_series(args, run_once, summary,
                 f"most concurrent three-party conferences held {args.hold} s with 0 failures")


if __name__ == "__main__":
    main()
