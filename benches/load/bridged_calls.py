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

import argparse
import array
import json
import math
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadlib as L  # noqa: E402
from concurrent_media import make_caller_audio, scenario as caller_scenario  # noqa: E402

SEAT_BASE = 20000
WAV_BYTES_PER_S = 8000 * 2 * 2  # 8 kHz, 16 bit, stereo

# ------------------------------------------------------------------ scenarios

REGISTER_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register seats">
{first}  <recv response="401" auth="true"/>
{second}  <recv response="200"/>
</scenario>
"""

REGISTER_HEAD = """  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag[call_number]
To: <sip:[field0]@[remote_ip]>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:[field0]@[local_ip]:[local_port]>
{auth}Expires: {expires}
Max-Forwards: 70
Content-Length: 0

]]></send>
"""


def register_xml(expires: int) -> str:
    return REGISTER_XML.format(
        first=REGISTER_HEAD.format(cseq=1, auth="", expires=expires),
        second=REGISTER_HEAD.format(cseq=2, auth="[field1]\n", expires=expires),
    )


def seat_xml(pt: int, name: str, audio: str) -> str:
    """UAS: INVITE -> 180, 200 (SDP answer) -> ACK, stream audio -> BYE -> 200."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="seat">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SeatTag[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:seat@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SeatTag[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:seat@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=seat 1 1 IN IP4 [media_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {pt}
a=rtpmap:{pt} {name}/8000
a=ptime:20
a=sendrecv
]]></send>
  <recv request="ACK" rtd="true" crlf="true"/>
  <nop><action><exec rtp_stream="{audio},-1,{pt}"/></action></nop>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""


MAIN_FLOW = """# Load test: every caller goes straight to the general queue.
name: main
description: bridged_calls.py load test - straight to the general queue.
start: general
nodes:
  - id: general
    type: queue
    queue: general
    priority: 5
    prompts: [please_hold]
"""

# ------------------------------------------------------------------ audio


def lin2ulaw(v: int) -> int:
    sign = 0x80 if v < 0 else 0
    if v < 0:
        v = -v
    v = min(v, 32635) + 0x84
    exp = min(7, max(0, (v >> 7).bit_length() - 1))
    mant = (v >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def make_seat_audio(out: Path, law: str, freq: int = 440, amp: int = 8000) -> Path:
    """One second of a `freq` Hz tone (a whole number of cycles, so it loops
    seamlessly) as raw mu-law or A-law for SIPp's rtp_stream."""
    from concurrent_media import lin2alaw

    enc = lin2ulaw if law == "pcmu" else lin2alaw
    out.write_bytes(bytes(enc(int(amp * math.sin(2 * math.pi * freq * i / 8000))) for i in range(8000)))
    return out


def check_wav(path: Path) -> dict:
    """Decodes a recording: format, duration, per-channel RMS and the share of
    one-second blocks with RMS > 100 (non-silent), right channel's zero
    crossings per second (the seat's 440 Hz tone gives about 880)."""
    try:
        with wave.open(str(path)) as w:
            ch, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(frames)
    except (wave.Error, OSError, EOFError) as e:
        return {"file": path.name, "error": str(e)}
    out = {"file": path.name, "channels": ch, "bits": 8 * width, "rate": rate, "seconds": round(frames / max(1, rate), 1)}
    if ch != 2 or width != 2 or rate != 8000:
        out["error"] = "not 8 kHz 16-bit stereo"
        return out
    pcm = array.array("h", raw)
    if sys.byteorder == "big":
        pcm.byteswap()
    for name, chan in (("left", pcm[0::2]), ("right", pcm[1::2])):
        n = len(chan)
        rms = math.sqrt(sum(s * s for s in chan) / n) if n else 0.0
        blocks = [chan[i:i + 8000] for i in range(0, n - 7999, 8000)]
        active = sum(1 for b in blocks if math.sqrt(sum(s * s for s in b) / len(b)) > 100)
        zc = sum(1 for a, b in zip(chan, chan[1:]) if (a < 0) != (b < 0))
        out[name] = {"rms": round(rms), "active_fraction": round(active / len(blocks), 2) if blocks else 0.0,
                     "zero_crossings_per_s": round(zc / (n / 8000)) if n else 0}
    out["ok"] = bool(
        out["seconds"] >= 5
        and out["left"]["rms"] > 100 and out["left"]["active_fraction"] >= 0.5
        and out["right"]["rms"] > 100 and out["right"]["active_fraction"] >= 0.9
    )
    return out


# ------------------------------------------------------------------ helpers


def sipp_cmd(scenario_file: Path, sdir: Path, port: int, limit_s: int, extra: list[str], remote: str | None) -> list[str]:
    return L.load_prefix() + [
        "sipp", "-sf", str(scenario_file),
        "-i", "127.0.0.1", "-mi", "127.0.0.1",
        "-p", str(port),
        "-nostdin",
        "-timeout", f"{limit_s}s", "-timeout_error",
        "-trace_stat", "-stf", str(sdir / "stat.csv"), "-fd", "2",
        "-trace_err", "-error_file", str(sdir / "errors.log"),
        "-trace_screen", "-screen_file", str(sdir / "screen.log"),
        *extra,
    ] + ([remote] if remote else [])


def start_sipp(cmd: list[str], sdir: Path):
    return L.track(subprocess.Popen(
        cmd, cwd=sdir, stdin=subprocess.DEVNULL, stdout=open(sdir / "stdout.log", "wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    ))


def seats_by_activity(metrics: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in metrics.items():
        if k.startswith("hotline_seats{"):
            for part in k[len("hotline_seats{"):-1].split(","):
                name, _, val = part.partition("=")
                if name == "activity":
                    out[val.strip('"')] = out.get(val.strip('"'), 0) + int(v)
                elif name == "status":
                    key = "status_" + val.strip('"')
                    out[key] = out.get(key, 0) + int(v)
    return out


def in_call(metrics: dict) -> int | None:
    if not any(k.startswith("hotline_seats{") for k in metrics):
        return None
    return sum(int(v) for k, v in metrics.items() if k.startswith("hotline_seats{") and 'activity="in_call"' in k)


def sipp_summary(proc_rc, hung, stats: dict) -> dict:
    return {"exit": proc_rc, "hung_at_exit": hung, "ok": L.sipp_int(stats, "SuccessfulCall(C)"),
            "failed": L.sipp_int(stats, "FailedCall(C)"), "retrans": L.sipp_int(stats, "Retransmissions(C)"),
            "rtd_ms": L.sipp_time_ms(stats.get("ResponseTime1(C)"))}


def sipp_ok(s: dict, n: int) -> bool:
    return (s["exit"] == 0 or s["hung_at_exit"]) and s["ok"] == n and s["failed"] == 0


def write_config(server: L.Server, n: int, args) -> None:
    """Adds what Server's flat sections cannot say: the MD5-only algorithm
    list, the queue and the N seats (arrays of tables replace the defaults)."""
    text = server.config_path.read_text()
    text = text.replace("[registrar]\n", '[registrar]\nalgorithms = ["MD5"]\n', 1)
    text += (
        '[[queue]]\nname = "general"\ndescription = "bridged_calls.py load test"\n'
        f'strategy = "longest-idle"\nring_secs = 15\nwrap_up_secs = {args.wrap_up}\nmax_misses = 3\n'
        f'record = {"false" if args.no_record else "true"}\n\n'
    )
    text += "".join(
        f'[[seat]]\nid = "{SEAT_BASE + i}"\npassword = "seat-pw-{SEAT_BASE + i}"\nname = "Load seat {i}"\nlanguages = ["cmn"]\n\n'
        for i in range(1, n + 1)
    )
    server.config_path.write_text(text)


def make_flows(dirpath: Path) -> Path:
    dirpath.mkdir(parents=True)
    (dirpath / "main.yaml").write_text(MAIN_FLOW)
    (dirpath / "survey.yaml").write_text((L.REPO / "ivr-flows/survey.yaml").read_text())
    os.symlink(L.REPO / "ivr-flows/prompts", dirpath / "prompts")
    return dirpath


def udp_drops_by_port_range(ranges: dict[str, tuple[int, int]]) -> dict[str, dict]:
    """Receive-buffer drops and socket counts of the open 127.0.0.1 UDP sockets
    (/proc/net/udp), summed per named port range; "other" for the rest."""
    out = {name: {"sockets": 0, "drops": 0} for name in [*ranges, "other"]}
    try:
        lines = open("/proc/net/udp").readlines()[1:]
    except OSError:
        return out
    for line in lines:
        f = line.split()
        try:
            port = int(f[1].split(":")[1], 16)
            drops = int(f[-1])
        except (IndexError, ValueError):
            continue
        name = next((k for k, (lo, hi) in ranges.items() if lo <= port <= hi), "other")
        out[name]["sockets"] += 1
        out[name]["drops"] += drops
    return out


def thread_counts(pid: int) -> dict[str, int]:
    """Threads of a process by name (trailing digits folded to N)."""
    out: dict[str, int] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        name = re.sub(r"\d+$", "N", name)
        out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def probe_blocking_pool(server: L.Server, timeout: float = 5.0) -> dict:
    """POST /api/v1/admin/reload (same config file, so nothing changes): the
    server runs the reload on tokio's blocking pool, which the recordings'
    writers also occupy, one thread per recorded call for the whole call."""
    import urllib.error
    import urllib.request

    t = time.monotonic()
    try:
        req = urllib.request.Request(f"http://{server.http}/api/v1/admin/reload", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read().decode(errors="replace")[:200]
            return {"status": r.status, "seconds": round(time.monotonic() - t, 3), "body": body}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "seconds": round(time.monotonic() - t, 3)}
    except Exception as e:  # timeout: queued behind the recordings
        return {"status": None, "seconds": round(time.monotonic() - t, 3), "error": str(e)}


def call_records(db: Path) -> dict:
    """What the server stored about the calls (SQLite)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        rows = con.execute(
            "SELECT end_reason, hangup_by, seat, connected_at, seat_ended_at, call_recording, codec, seat_codec FROM calls"
        ).fetchall()
        con.close()
    except sqlite3.Error as e:
        return {"error": str(e)}
    reasons: dict[str, int] = {}
    codecs: dict[str, int] = {}
    bridged_s = 0.0
    with_seat = with_rec = 0
    seats = set()
    for reason, _by, seat, conn, ended, rec, codec, seat_codec in rows:
        reasons[reason] = reasons.get(reason, 0) + 1
        codecs[f"{codec}->{seat_codec}"] = codecs.get(f"{codec}->{seat_codec}", 0) + 1
        if seat:
            with_seat += 1
            seats.add(seat)
        if rec:
            with_rec += 1
        if conn and ended:
            bridged_s += (ended - conn) / 1000
    return {"rows": len(rows), "end_reasons": reasons, "with_seat": with_seat, "distinct_seats": len(seats),
            "with_recording": with_rec, "codecs": codecs, "bridged_seconds_total": round(bridged_s, 1)}


# ------------------------------------------------------------------ one run


def run_once(args) -> dict:
    n, rate, hold = args.calls, args.rate, args.hold
    if 2 * n > (args.rtp_port_max - args.rtp_port_min + 1) // 2:
        raise SystemExit(f"{n} bridged calls need {2 * n} RTP port pairs: widen --rtp-port-min/--rtp-port-max")
    work = Path(tempfile.mkdtemp(prefix=f"hotline-bridge{n}-"))
    flows = make_flows(work / "flows")
    caller_audio = make_caller_audio(work / "caller.al")
    seat_audio = make_seat_audio(work / "seat.audio", args.seat_codec)
    rec_dir = work / "server" / "recordings"
    server = L.Server(
        args.binary,
        {
            "sip": {
                "max_calls": n + 1000,
                "invite_rate_per_ip": 1_000_000.0,
                "invite_burst_per_ip": 1_000_000.0,
            },
            # Both sides stream audio, so the RTP timeout stays on: a leg whose
            # audio does not reach the server is hung up and counted.
            "media": {"rtp_timeout_secs": args.rtp_timeout, "rtp_port_min": args.rtp_port_min,
                      "rtp_port_max": args.rtp_port_max},
            "ivr": {"flows_dir": str(flows), "main_flow": "main", "survey_flow": "survey",
                    "recordings_dir": str(rec_dir), "watch": False},
            # keepalive_secs 0: the seats' SIPp takes only INVITEs, and the
            # keep-alive OPTIONS would count against it as unexpected calls.
            "registrar": {"available_on_register": True, "min_expires": 60, "max_expires": 3600,
                          "lockout_failures": 1000, "keepalive_secs": 0},
        },
        workdir=work / "server",
        log_filter=args.log_filter,
    )
    write_config(server, n, args)
    chk = subprocess.run([str(server.binary), "flows", "check", str(flows), "--config", str(server.config_path)],
                         capture_output=True, text=True, timeout=60)
    if chk.returncode != 0:
        raise SystemExit(f"flows check failed:\n{chk.stdout}{chk.stderr}")
    cfg = subprocess.run([str(server.binary), "config", "check", str(server.config_path)],
                         capture_output=True, text=True, timeout=60)
    if cfg.returncode != 0:
        raise SystemExit(f"config check failed:\n{cfg.stdout}{cfg.stderr}")

    server.start()
    sampler = L.Sampler(server, period=1.0)
    sampler.start()
    time.sleep(2)
    idle_rss = L.proc_rss_kb(server.pid)
    m0 = server.metrics()
    udp0 = L.udp_counters()

    seat_port = L.free_udp_port(1)
    margin = 10
    ramp_ms = max(1000, int(n / rate * 1000))
    pause_ms = int(ramp_ms + (hold + margin) * 1000)
    limit_s = int(ramp_ms / 1000 + hold + margin + 90)

    # 1. Register the N seats from seat_port.
    reg_dir = work / "sipp-register"
    reg_dir.mkdir()
    (reg_dir / "register.xml").write_text(register_xml(args.expires))
    (reg_dir / "seats.csv").write_text("SEQUENTIAL\n" + "".join(
        f"{SEAT_BASE + i};[authentication username={SEAT_BASE + i} password=seat-pw-{SEAT_BASE + i}];\n"
        for i in range(1, n + 1)))
    reg_limit = int(n / args.reg_rate + 60)
    reg = start_sipp(sipp_cmd(reg_dir / "register.xml", reg_dir, seat_port, reg_limit,
                              ["-inf", str(reg_dir / "seats.csv"), "-r", str(args.reg_rate), "-m", str(n), "-l", str(n)],
                              server.sip), reg_dir)
    rc_reg, hung_reg = L.wait_sipp(reg, reg_dir / "stat.csv", n, reg_limit + 10, grace_s=3)
    reg_stats = sipp_summary(rc_reg, hung_reg, L.parse_sipp_stats(reg_dir / "stat.csv"))
    seats_avail = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        st = seats_by_activity(server.metrics())
        seats_avail = st.get("status_available", 0)
        if seats_avail >= n:
            break
        time.sleep(0.5)
    time.sleep(1)
    registered_rss = L.proc_rss_kb(server.pid)

    # 2. The seats answer on the port they registered from.
    seat_dir = work / "sipp-seats"
    seat_dir.mkdir()
    (seat_dir / "seat.audio").write_bytes(seat_audio.read_bytes())
    pt, codec_name = (0, "PCMU") if args.seat_codec == "pcmu" else (8, "PCMA")
    (seat_dir / "seat.xml").write_text(seat_xml(pt, codec_name, "seat.audio"))
    seats = start_sipp(sipp_cmd(seat_dir / "seat.xml", seat_dir, seat_port, limit_s,
                                ["-mp", str(L.free_udp_port(4)), "-m", str(n),
                                 "-rtp_threadtasks", str(args.rtp_threadtasks)], None), seat_dir)
    sampler.add_pid("sipp_seats", seats.pid)
    time.sleep(1.0)

    # 3. Callers.
    call_dir = work / "sipp-callers"
    call_dir.mkdir()
    (call_dir / "caller.al").write_bytes(caller_audio.read_bytes())
    after_ack = '  <nop><action><exec rtp_stream="caller.al,-1,8"/></action></nop>\n'
    (call_dir / "caller.xml").write_text(caller_scenario("caller", "[media_ip]", "[media_port]", after_ack, pause_ms))
    t_start = time.monotonic()
    callers = start_sipp(sipp_cmd(call_dir / "caller.xml", call_dir, L.free_udp_port(1), limit_s,
                                  ["-mp", str(L.free_udp_port(4)), "-s", "12345",
                                   "-r", str(rate), "-rp", "1000", "-m", str(n), "-l", str(n),
                                   "-rtp_threadtasks", str(args.rtp_threadtasks)], server.sip), call_dir)
    sampler.add_pid("sipp_callers", callers.pid)

    # Wait for all N bridged; the window must end before the first caller's BYE.
    up_deadline = t_start + ramp_ms / 1000 + margin - 2
    all_bridged = None
    peak_in_call = 0
    while time.monotonic() < up_deadline:
        try:
            ic = in_call(server.metrics()) or 0
        except Exception:
            ic = 0
        peak_in_call = max(peak_in_call, ic)
        if ic >= n:
            all_bridged = time.monotonic()
            break
        if callers.poll() is not None or seats.poll() is not None:
            break
        time.sleep(0.25)
    ramp_s = None if all_bridged is None else round(all_bridged - t_start, 1)

    probe: dict = {}
    if all_bridged is not None:
        w0 = all_bridged + 1
        time.sleep(max(0.0, w0 - time.monotonic()))
        if args.probe_blocking:
            time.sleep(hold / 2)
            probe = probe_blocking_pool(server)
            time.sleep(max(0.0, w0 + hold - time.monotonic()))
        else:
            time.sleep(hold)
        w1 = time.monotonic()
    else:
        w0 = w1 = time.monotonic()

    sip_port = int(server.sip.rsplit(":", 1)[1])
    # Drops so far of the sockets open now (the calls' sockets close with them).
    udp_drops = udp_drops_by_port_range({"server_sip": (sip_port, sip_port),
                                         "server_rtp": (args.rtp_port_min, args.rtp_port_max)})
    threads_at_n = thread_counts(server.pid)
    win = sampler.window(w0, w1)
    rss_window = [s.rss.get(server.pid) for s in win if s.rss.get(server.pid)]
    ic_window = [in_call(s.metrics) for s in win if in_call(s.metrics) is not None]
    active_window = [s.metrics.get("hotline_active_calls") for s in win if "hotline_active_calls" in s.metrics]

    # Let the calls end (caller BYE -> server BYE to the seat).
    rc_call, hung_call = L.wait_sipp(callers, call_dir / "stat.csv", n, limit_s)
    rc_seat, hung_seat = L.wait_sipp(seats, seat_dir / "stat.csv", n, 60)
    # The server finishes the recordings and writes the call records.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if server.metrics().get("hotline_active_calls", 1) == 0:
                break
        except Exception:
            pass
        time.sleep(0.5)
    time.sleep(3)
    m1 = server.metrics()
    udp1 = L.udp_counters()
    sampler.stop()
    server_log = server.log_summary()
    # sqlx "slow statement" warnings quote the whole multi-row INSERT.
    server_log["first_warn_error"] = [l if len(l) <= 400 else l[:400] + " ..." for l in server_log["first_warn_error"]]
    server.stop()

    def delta(name):
        return m1.get(name, 0) - m0.get(name, 0)

    def wdelta(name):
        v = sampler.metric_delta(name, w0, w1)
        return None if v is None else int(v)

    def wrate(name):
        v = sampler.metric_rate(name, w0, w1)
        return None if v is None else round(v)

    # Recordings.
    wavs = sorted(rec_dir.rglob("*.wav")) if rec_dir.exists() else []
    wav_bytes = sum(p.stat().st_size for p in wavs)
    records = call_records(work / "server" / "hotline.db")
    expected_bytes = None
    if isinstance(records.get("bridged_seconds_total"), float) and records["bridged_seconds_total"] > 0:
        expected_bytes = int(records["bridged_seconds_total"] * WAV_BYTES_PER_S)
    sample = random.Random(n).sample(wavs, min(args.check_recordings, len(wavs)))
    decoded = [check_wav(p) for p in sample]

    rss_at_n = L.median(rss_window)
    expected_pps = 2 * n * 50
    result = {
        "calls": n,
        "rate": rate,
        "hold_s": hold,
        "seat_codec": args.seat_codec,
        "registered": {"sipp": reg_stats, "seats_available": seats_avail},
        "all_bridged": all_bridged is not None,
        "ramp_s": ramp_s,
        "peak_in_call_before_window": peak_in_call,
        "in_call_window_min": min(ic_window) if ic_window else None,
        "in_call_window_max": max(ic_window) if ic_window else None,
        "in_call_samples": len(ic_window),
        "active_calls_window_min": min(active_window) if active_window else None,
        "active_calls_window_max": max(active_window) if active_window else None,
        "sipp_callers": sipp_summary(rc_call, hung_call, L.parse_sipp_stats(call_dir / "stat.csv")),
        "sipp_seats": sipp_summary(rc_seat, hung_seat, L.parse_sipp_stats(seat_dir / "stat.csv")),
        "server_answered": int(delta('hotline_calls_total{result="answered"}')),
        "server_other_results": {kk.split('"')[1]: delta(kk) for kk in m1
                                 if kk.startswith("hotline_calls_total{") and "answered" not in kk and delta(kk)},
        "queue_answered": int(delta('hotline_queue_answered_total{queue="general"}')),
        "server_cpu_pct": _r(sampler.cpu_percent("server", w0, w1)),
        "server_threads_pct": sampler.threads_percent(w0, w1),
        "server_sched": sampler.sched_stats(w0, w1),
        "ksoftirqd_cpu_pct": _r(sampler.softirqd_percent(w0, w1)),
        "vm_steal_pct": _r(sampler.steal_percent(w0, w1)),
        "sipp_callers_cpu_pct": _r(sampler.cpu_percent("sipp_callers", w0, w1)),
        "sipp_seats_cpu_pct": _r(sampler.cpu_percent("sipp_seats", w0, w1)),
        "machine_busy_pct": _r(sampler.machine_percent(w0, w1)),
        "other_processes_cpu_pct": _r(sampler.others_percent(w0, w1)),
        "server_rss_idle_mb": _mb(idle_rss),
        "server_rss_registered_mb": _mb(registered_rss),
        "server_rss_bridged_mb": _mb(rss_at_n),
        "server_rss_peak_mb": _mb(sampler.rss_peak_kb("server")),
        "rss_per_bridged_call_kb": None if not rss_at_n or not registered_rss else round((rss_at_n - registered_rss) / n, 1),
        "rss_per_seat_registered_kb": None if not registered_rss or not idle_rss else round((registered_rss - idle_rss) / n, 1),
        "rtp_sent_pps": wrate("hotline_rtp_packets_sent_total"),
        "rtp_received_pps": wrate("hotline_rtp_packets_received_total"),
        "expected_pps_each_way": expected_pps,
        "media_streams_window_max": max((s.metrics.get("hotline_media_streams", 0) for s in win), default=None),
        "media_tick_overruns_window": wdelta("hotline_media_tick_overruns_total"),
        "media_tick_overruns_total": int(delta("hotline_media_tick_overruns_total")),
        "media_skipped_frames_window": wdelta("hotline_media_skipped_frames_total"),
        "rtp_late_packets_window": wdelta("hotline_rtp_late_packets_total"),
        "rtp_invalid_packets_window": wdelta("hotline_rtp_invalid_packets_total"),
        "udp": L.udp_delta(udp0, udp1),
        "udp_socket_drops_at_window_end": udp_drops,
        "server_threads_at_window_end": threads_at_n,
        "blocking_pool_probe": probe or None,
        "recordings": {"files": len(wavs), "bytes": wav_bytes, "mb": round(wav_bytes / 1e6, 1),
                       "expected_bytes_from_records": expected_bytes,
                       "size_ratio": None if not expected_bytes else round(wav_bytes / expected_bytes, 3),
                       "decoded": decoded},
        "call_records": records,
        "sipp_errors": L.sipp_error_lines(call_dir) + L.sipp_error_lines(seat_dir) + L.sipp_error_lines(reg_dir),
        "server_log": server_log,
        "workdir": str(work),
    }
    cpu = result["server_cpu_pct"]
    result["server_cpu_per_call_pct"] = None if cpu is None else round(cpu / n, 4)
    tx, rx = result["rtp_sent_pps"], result["rtp_received_pps"]
    result["server_sent_fraction"] = None if tx is None else round(tx / expected_pps, 3)
    result["sipp_audio_fraction"] = None if rx is None else round(rx / expected_pps, 3)
    rec = result["recordings"]
    recordings_ok = bool(
        rec["files"] == n
        and rec["size_ratio"] is not None and 0.95 <= rec["size_ratio"] <= 1.05
        and decoded and all(d.get("ok") for d in decoded)
    )
    result["recordings_ok"] = recordings_ok
    server_ok = bool(
        reg_stats["ok"] == n and reg_stats["failed"] == 0 and (seats_avail or 0) >= n
        and all_bridged is not None
        and result["in_call_window_min"] == n and result["in_call_samples"] >= hold - 2
        and result["active_calls_window_min"] == n
        and sipp_ok(result["sipp_callers"], n) and sipp_ok(result["sipp_seats"], n)
        and result["server_answered"] == n
        and not result["server_other_results"]
        and (result["server_sent_fraction"] or 0) >= 0.95
        and recordings_ok
    )
    load_complete = (result["sipp_audio_fraction"] or 0) >= 0.95
    result["verdict"] = "PASS" if server_ok and load_complete else ("INCOMPLETE" if server_ok else "FAIL")
    result["passed"] = result["verdict"] == "PASS"
    if result["passed"] and not args.keep:
        subprocess.run(["rm", "-rf", str(work)])
    return result


def _r(v, d=1):
    return None if v is None else round(v, d)


def _mb(kb):
    return None if kb is None else round(kb / 1024, 1)


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
        f"SIPp callers {r['sipp_callers_cpu_pct']}% seats {r['sipp_seats_cpu_pct']}%  machine {r['machine_busy_pct']}% "
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="100", help="N, or a list like 100,300,500,700 (stops at the first failure)")
    ap.add_argument("--hold", type=int, default=60, help="seconds all N calls are held bridged (default 60)")
    ap.add_argument("--rate", type=int, default=50, help="calls per second while ramping up (default 50)")
    ap.add_argument("--reg-rate", type=int, default=200, help="REGISTERs per second for the seats (default 200)")
    ap.add_argument("--expires", type=int, default=3600, help="seat registration Expires (default 3600)")
    ap.add_argument("--seat-codec", choices=["pcmu", "pcma"], default="pcmu",
                    help="codec of the seats' answer (callers offer PCMA; pcmu makes the bridge transcode)")
    ap.add_argument("--wrap-up", type=int, default=0, help="queue wrap_up_secs (default 0)")
    ap.add_argument("--check-recordings", type=int, default=5, help="recordings decoded and checked (default 5)")
    ap.add_argument("--rtp-threadtasks", type=int, default=100, help="SIPp -rtp_threadtasks (default 100)")
    ap.add_argument("--rtp-timeout", type=int, default=30, help="server media.rtp_timeout_secs (default 30)")
    ap.add_argument("--rtp-port-min", type=int, default=20000, help="server media.rtp_port_min (default 20000)")
    ap.add_argument("--rtp-port-max", type=int, default=29999, help="server media.rtp_port_max (default 29999: 5,000 pairs)")
    ap.add_argument("--no-record", action="store_true",
                    help="diagnosis only: queue record = false (a run without recordings cannot PASS)")
    ap.add_argument("--probe-blocking", action="store_true",
                    help="half-way through the window, time POST /api/v1/admin/reload (runs on tokio's blocking pool, "
                         "which holds one thread per recorded call)")
    ap.add_argument("--repeat", type=int, default=1)
    L.add_common_args(ap)
    args = ap.parse_args()
    L.apply_common_args(args)

    where = L.maybe_enter_netns(args.no_netns)
    nofile = L.raise_nofile()
    print(f"# hotline bridged-calls test: {args.binary}\n# {L.machine_note()}; open files {nofile}; {where}", flush=True)
    results = []
    best = None
    for n in [int(x) for x in args.calls.split(",")]:
        args.calls = n
        runs = []
        for i in range(args.repeat):
            quiet = L.wait_quiet(args.wait_quiet) if args.wait_quiet else None
            r = run_once(args)
            r["before_run_other_cpu_pct"] = None if quiet is None else round(quiet, 1)
            r["server_nice"] = args.server_nice
            r["server_rt"] = args.server_rt
            r["cpus"] = {"server": args.server_cpus, "load": args.load_cpus}
            r["run"] = i + 1
            print(summary(r), flush=True)
            if not r["passed"]:
                print(f"  sipp errors: {r['sipp_errors']}\n  server log: {r['server_log']}\n  kept: {r['workdir']}", flush=True)
            runs.append(r)
            results.append(r)
            if args.json:  # written after every run, so a long series keeps what it measured
                args.json.write_text(json.dumps({"args": {kk: str(v) for kk, v in vars(args).items()}, "results": results, "best": best}, indent=1))
        if args.repeat > 1:
            keys = [("cpu", lambda x: x["server_cpu_pct"]), ("rss_per_bridged_call_kb", lambda x: x["rss_per_bridged_call_kb"]),
                    ("rtp_sent_pps", lambda x: x["rtp_sent_pps"]), ("rtp_received_pps", lambda x: x["rtp_received_pps"])]
            print(f"  median of {args.repeat}: " + ", ".join(f"{name} {L.median([f(x) for x in runs])}" for name, f in keys), flush=True)
        if all(x["passed"] for x in runs):
            best = n
        elif any(x["verdict"] == "FAIL" for x in runs):
            break
    print(f"# most concurrent bridged calls held {args.hold} s with media both ways, recording on and 0 failed calls: {best if best else 'none'}")
    if args.json:
        args.json.write_text(json.dumps({"args": {kk: str(v) for kk, v in vars(args).items()}, "results": results, "best": best}, indent=1))
    sys.exit(0 if best else 1)


if __name__ == "__main__":
    main()
