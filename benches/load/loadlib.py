"""Shared helpers for the hotline load drivers (call_rate.py, concurrent_media.py).

Everything here stays on 127.0.0.1. By default the drivers re-run themselves in
a private network namespace that has only `lo` (`unshare -n`, needs root), so a
mistake cannot reach another host and the ports cannot collide with other test
servers running on the machine. Every process started here is recorded and
killed at exit, by its own pid.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
NETNS_ENV = "HOTLINE_LOAD_IN_NETNS"

# ---------------------------------------------------------------- processes

_children: list[subprocess.Popen] = []
_lock = threading.Lock()


def track(p: subprocess.Popen) -> subprocess.Popen:
    with _lock:
        _children.append(p)
    return p


def stop(p: subprocess.Popen | None, grace: float = 5.0) -> None:
    """TERM, then KILL after `grace`, one process by its pid."""
    if p is None or p.poll() is not None:
        return
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=5)
    except ProcessLookupError:
        pass


def _kill_all() -> None:
    with _lock:
        procs = list(_children)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except Exception:
                pass


atexit.register(_kill_all)


def _on_signal(signum, _frame):
    # Turn TERM/INT/HUP into a normal exit so atexit kills the children.
    sys.exit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_s, _on_signal)


def raise_nofile() -> int:
    """Raises the soft open-files limit to the hard one (children inherit it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (1 << 20, hard):
        if target == resource.RLIM_INFINITY or (hard != resource.RLIM_INFINITY and target > hard):
            continue
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def maybe_enter_netns(no_netns: bool) -> str:
    """Re-executes this script under `unshare -n` (loopback-only namespace).

    Returns a description of where we run. Falls back to the host's loopback
    (still binding 127.0.0.1 explicitly) when unshare is not permitted.
    """
    if os.environ.get(NETNS_ENV) == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return "private network namespace (lo only)"
    if no_netns:
        return "host network namespace, 127.0.0.1 only"
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode == 0:
            env = dict(os.environ, **{NETNS_ENV: "1"})
            sys.stdout.flush()
            sys.stderr.flush()
            os.execvpe(
                "unshare",
                ["unshare", "-n", "--", sys.executable, sys.argv[0], *sys.argv[1:]],
                env,
            )
    print("note: unshare -n not available; running on the host's 127.0.0.1", file=sys.stderr)
    return "host network namespace, 127.0.0.1 only"


def free_udp_port(span: int = 1, lo: int = 61000, hi: int = 64990) -> int:
    """An even UDP port in [lo, hi) on 127.0.0.1 with `span` free ports from it.

    The default range is above the kernel's ephemeral range and far from the
    server's RTP range, so the server never takes a port SIPp is about to use.
    """
    import random
    import socket

    for _ in range(500):
        base = random.randrange(lo, hi - span, 2)
        held = []
        ok = True
        for i in range(span):
            t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                t.bind(("127.0.0.1", base + i))
                held.append(t)
            except OSError:
                t.close()
                ok = False
                break
        for t in held:
            t.close()
        if ok:
            return base
    raise RuntimeError("no free UDP port range on 127.0.0.1")


# ---------------------------------------------------------------- /proc sampling


def proc_cpu_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def proc_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_threads_sched(pid: int) -> dict[str, list[int]]:
    """Per thread name: [run ns, run-queue wait ns, involuntary switches]
    (from /proc/PID/task/*/schedstat and status), same names summed."""
    out: dict[str, list[int]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/comm") as f:
                name = re.sub(r"\d+$", "N", f.read().strip())
            with open(f"{base}/schedstat") as f:
                run, wait, _slices = (int(x) for x in f.read().split())
            nonvol = 0
            with open(f"{base}/status") as f:
                for line in f:
                    if line.startswith("nonvoluntary_ctxt_switches"):
                        nonvol = int(line.split()[1])
        except (OSError, ValueError):
            continue
        acc = out.setdefault(name, [0, 0, 0])
        acc[0] += run
        acc[1] += wait
        acc[2] += nonvol
    return out


def ksoftirqd_pids() -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().startswith("ksoftirqd/"):
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def proc_threads_ticks(pid: int) -> dict[str, int]:
    """CPU ticks per thread name (threads of the same name summed)."""
    out: dict[str, int] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            rest = raw.rsplit(")", 1)[1].split()
            # tokio workers are "tokio-runtime-w"; media workers "media-N".
            key = re.sub(r"\d+$", "N", name)
            out[key] = out.get(key, 0) + int(rest[11]) + int(rest[12])
        except (OSError, ValueError, IndexError):
            continue
    return out


def udp_counters() -> dict[str, int]:
    """This network namespace's UDP counters (/proc/net/snmp)."""
    try:
        rows = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
        return {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:])}
    except (OSError, IndexError, ValueError):
        return {}


def udp_socket_drops(port: int) -> int | None:
    """Datagrams dropped (receive buffer full) by the 127.0.0.1 UDP socket on `port`."""
    try:
        for line in open("/proc/net/udp").readlines()[1:]:
            f = line.split()
            ip, p = f[1].split(":")
            if int(p, 16) == port:
                return int(f[-1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def udp_delta(a: dict, b: dict) -> dict[str, int]:
    keys = ("InDatagrams", "OutDatagrams", "RcvbufErrors", "SndbufErrors", "NoPorts", "InErrors")
    return {k: b.get(k, 0) - a.get(k, 0) for k in keys}


def system_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (steal counts as busy)."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return total - idle, total


def steal_jiffies() -> int:
    """CPU time the hypervisor took from this VM (/proc/stat steal)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()
    return int(parts[8]) if len(parts) > 8 else 0


@dataclass
class Sample:
    t: float
    ticks: dict[int, int | None]
    rss: dict[int, int | None]
    sys_busy: int
    sys_total: int
    metrics: dict[str, float] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)
    sched: dict[str, list[int]] = field(default_factory=dict)
    softirqd_ticks: int = 0
    steal: int = 0


class Sampler(threading.Thread):
    """Samples CPU ticks and RSS of some pids (and optionally /metrics) every `period` s."""

    def __init__(self, server: "Server", extra_pids: dict[str, int] | None = None, period: float = 1.0, metrics: bool = True):
        super().__init__(daemon=True)
        self.server = server
        self.pids = {"server": server.pid, "driver": os.getpid(), **(extra_pids or {})}
        self.period = period
        self.with_metrics = metrics
        self.samples: list[Sample] = []
        self._halt = threading.Event()
        self.softirqd = ksoftirqd_pids()
        self._lock = threading.Lock()

    def add_pid(self, name: str, pid: int) -> None:
        with self._lock:
            self.pids[name] = pid

    def take(self) -> Sample:
        with self._lock:
            pids = dict(self.pids)
        busy, total = system_cpu()
        s = Sample(
            t=time.monotonic(),
            ticks={p: proc_cpu_ticks(p) for p in pids.values()},
            rss={p: proc_rss_kb(p) for p in pids.values()},
            sys_busy=busy,
            sys_total=total,
            threads=proc_threads_ticks(self.server.pid),
            sched=proc_threads_sched(self.server.pid),
            softirqd_ticks=sum(proc_cpu_ticks(p) or 0 for p in self.softirqd),
            steal=steal_jiffies(),
        )
        if self.with_metrics:
            try:
                s.metrics = self.server.metrics(timeout=2)
            except Exception:
                s.metrics = {}
        return s

    def run(self):
        nxt = time.monotonic()
        while not self._halt.is_set():
            s = self.take()
            with self._lock:
                self.samples.append(s)
            nxt += self.period
            self._halt.wait(max(0.0, nxt - time.monotonic()))

    def stop(self):
        self._halt.set()
        self.join(timeout=10)

    def window(self, t0: float, t1: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if t0 <= s.t <= t1]

    def cpu_percent(self, name: str, t0: float, t1: float) -> float | None:
        """Average CPU % (100 = one core) of a process over [t0, t1]."""
        pid = self.pids.get(name)
        w = [s for s in self.window(t0, t1) if s.ticks.get(pid) is not None]
        if len(w) < 2:
            return None
        a, b = w[0], w[-1]
        return 100.0 * (b.ticks[pid] - a.ticks[pid]) / CLK_TCK / (b.t - a.t)

    def threads_percent(self, t0: float, t1: float) -> dict[str, float]:
        w = self.window(t0, t1)
        if len(w) < 2:
            return {}
        a, b = w[0], w[-1]
        out = {}
        for k, v in b.threads.items():
            d = v - a.threads.get(k, 0)
            if d > 0:
                out[k] = round(100.0 * d / CLK_TCK / (b.t - a.t), 1)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def sched_stats(self, t0: float, t1: float) -> dict[str, dict]:
        """Per server thread kind over [t0, t1]: CPU %, run-queue wait (ms per
        second: time runnable but not running), involuntary switches per second."""
        w = self.window(t0, t1)
        if len(w) < 2:
            return {}
        a, b = w[0], w[-1]
        dt = b.t - a.t
        out = {}
        for k, v in b.sched.items():
            p = a.sched.get(k, [0, 0, 0])
            run, wait, nonvol = (v[i] - p[i] for i in range(3))
            if run > 0:
                out[k] = {"cpu_pct": round(run / 1e7 / dt, 1), "runqueue_wait_ms_per_s": round(wait / 1e6 / dt, 1),
                          "involuntary_switches_per_s": round(nonvol / dt, 1)}
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["cpu_pct"]))

    def steal_percent(self, t0: float, t1: float) -> float | None:
        """CPU taken by the hypervisor, % of one core."""
        w = self.window(t0, t1)
        if len(w) < 2:
            return None
        a, b = w[0], w[-1]
        return 100.0 * (b.steal - a.steal) / CLK_TCK / (b.t - a.t)

    def softirqd_percent(self, t0: float, t1: float) -> float | None:
        w = self.window(t0, t1)
        if len(w) < 2:
            return None
        a, b = w[0], w[-1]
        return 100.0 * (b.softirqd_ticks - a.softirqd_ticks) / CLK_TCK / (b.t - a.t)

    def machine_percent(self, t0: float, t1: float) -> float | None:
        """Whole-machine busy % over [t0, t1] (100 = all cores busy)."""
        w = self.window(t0, t1)
        if len(w) < 2:
            return None
        a, b = w[0], w[-1]
        return 100.0 * (b.sys_busy - a.sys_busy) / max(1, b.sys_total - a.sys_total)

    def others_percent(self, t0: float, t1: float) -> float | None:
        """CPU % (100 = one core) used by processes other than the sampled ones."""
        busy = self.machine_percent(t0, t1)
        if busy is None:
            return None
        ours = sum(self.cpu_percent(name, t0, t1) or 0.0 for name in self.pids)
        ours += self.softirqd_percent(t0, t1) or 0.0
        ours += self.steal_percent(t0, t1) or 0.0
        return max(0.0, busy * (os.cpu_count() or 1) - ours)

    def rss_peak_kb(self, name: str, t0: float = 0, t1: float = float("inf")) -> int | None:
        pid = self.pids.get(name)
        vals = [s.rss.get(pid) for s in self.window(t0, t1) if s.rss.get(pid)]
        return max(vals) if vals else None

    def metric_delta(self, name: str, t0: float, t1: float) -> float | None:
        w = [s for s in self.window(t0, t1) if name in s.metrics]
        if len(w) < 2:
            return None
        return w[-1].metrics[name] - w[0].metrics[name]

    def metric_rate(self, name: str, t0: float, t1: float) -> float | None:
        w = [s for s in self.window(t0, t1) if name in s.metrics]
        if len(w) < 2:
            return None
        return (w[-1].metrics[name] - w[0].metrics[name]) / (w[-1].t - w[0].t)


# ---------------------------------------------------------------- the server


def default_binary() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    return Path(target) / "release" / "hotline"


PROMPT_OVERRIDE: Path | None = None
CONFIG_OVERRIDES: dict[str, dict] = {}


def resolve_prompt() -> Path:
    """The greeting to stream: --prompt, else the repository's greeting
    (ivr-flows/prompts/greeting.wav, or cmn/welcome.wav where IVR prompts
    moved it), else the committed greeting from git HEAD."""
    if PROMPT_OVERRIDE:
        return PROMPT_OVERRIDE
    for rel in ("ivr-flows/prompts/greeting.wav", "ivr-flows/prompts/cmn/welcome.wav"):
        if (REPO / rel).is_file():
            return REPO / rel
    out = Path(tempfile.gettempdir()) / f"hotline-load-greeting-{os.getpid()}.wav"
    data = subprocess.run(["git", "-C", str(REPO), "show", "HEAD:ivr-flows/prompts/greeting.wav"], capture_output=True)
    if data.returncode != 0:
        raise SystemExit("no greeting prompt found: pass --prompt FILE.wav")
    out.write_bytes(data.stdout)
    return out


def add_common_args(ap) -> None:
    ap.add_argument("--binary", type=Path, default=default_binary(),
                    help="release binary (default ${CARGO_TARGET_DIR:-target}/release/hotline)")
    ap.add_argument("--prompt", type=Path, help="WAV the server streams (default: the repository's greeting)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="extra server config, e.g. --set media.workers=2 (TOML value)")
    ap.add_argument("--log-filter", default=None, help="HOTLINE_LOG for the server (default: its own)")
    ap.add_argument("--server-nice", type=int, default=0,
                    help="run the server under `nice -n N` (e.g. -10) to shield it from other load")
    ap.add_argument("--server-rt", type=int, default=0, metavar="PRIO",
                    help="run the server under `chrt -f PRIO` (SCHED_FIFO), as media servers are often run")
    ap.add_argument("--server-cpus", metavar="LIST", help="pin the server to these CPUs (taskset -c LIST)")
    ap.add_argument("--load-cpus", metavar="LIST", help="pin SIPp and the probe receiver to these CPUs (taskset -c LIST)")
    ap.add_argument("--wait-quiet", type=int, default=0, metavar="SECONDS",
                    help="before each run, wait up to SECONDS for other processes to use < 25%% of a core")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--keep", action="store_true", help="keep the work dirs of passing runs")
    ap.add_argument("--no-netns", action="store_true", help="do not enter a private network namespace")


SERVER_NICE = 0
SERVER_RT = 0
SERVER_CPUS: str | None = None
LOAD_CPUS: str | None = None


def load_prefix() -> list[str]:
    """Command prefix for load generators (SIPp, receiver)."""
    return ["taskset", "-c", LOAD_CPUS] if LOAD_CPUS else []


def wait_quiet(limit_s: int, threshold: float = 25.0, span: float = 5.0) -> float:
    """Waits (at most limit_s) until the machine's busy CPU over `span` seconds
    is below `threshold` % of one core; returns the last reading."""
    deadline = time.monotonic() + limit_s
    while True:
        b0, t0 = system_cpu()
        time.sleep(span)
        b1, t1 = system_cpu()
        pct = 100.0 * (b1 - b0) / max(1, t1 - t0) * (os.cpu_count() or 1)
        if pct < threshold or time.monotonic() > deadline:
            return pct


def apply_common_args(args) -> None:
    global PROMPT_OVERRIDE, SERVER_NICE, SERVER_RT, SERVER_CPUS, LOAD_CPUS
    SERVER_NICE = args.server_nice
    SERVER_RT = args.server_rt
    SERVER_CPUS = args.server_cpus
    LOAD_CPUS = args.load_cpus
    if args.prompt:
        PROMPT_OVERRIDE = args.prompt.resolve()
    import tomllib

    for item in args.set:
        key, _, value = item.partition("=")
        sec, _, name = key.partition(".")
        if not (sec and name and _):
            raise SystemExit(f"--set {item!r}: expected SECTION.KEY=VALUE")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        CONFIG_OVERRIDES.setdefault(sec, {})[name] = parsed


_SCHEMA: dict[Path, str] = {}


def config_schema(binary: Path) -> str:
    """"greeting" for servers with a [greeting] section (commit 6003ef2, one
    looping prompt), "ivr" for later ones (IVR flows), by asking the binary's
    own `config check`."""
    if binary in _SCHEMA:
        return _SCHEMA[binary]
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "probe.toml"
        f.write_text(f'[greeting]\nflows_dir = {toml_value(str(REPO / "ivr-flows"))}\nprompt = {toml_value(str(resolve_prompt()))}\n')
        r = subprocess.run([str(binary), "config", "check", str(f)], capture_output=True, text=True, timeout=60)
    _SCHEMA[binary] = "greeting" if r.returncode == 0 else "ivr"
    return _SCHEMA[binary]


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


class Server:
    """The release binary on 127.0.0.1 with a temporary config and SQLite."""

    def __init__(self, binary: Path, sections: dict[str, dict], workdir: Path | None = None, log_filter: str | None = None):
        self.binary = Path(binary).resolve()
        if not self.binary.is_file():
            raise SystemExit(
                f"{self.binary} not found: build it first with\n"
                f"  cd {REPO} && CARGO_TARGET_DIR=/var/tmp/hotline-target cargo build --release\n"
                "and pass --binary or set CARGO_TARGET_DIR"
            )
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="hotline-load-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.schema = config_schema(self.binary)
        base = {
            "sip": {"listen": "127.0.0.1:0"},
            "http": {"listen": "127.0.0.1:0"},
            "media": {"bind_ip": "127.0.0.1", "advertise_ip": "127.0.0.1"},
            "store": {"database_url": f"sqlite://{self.dir}/hotline.db"},
        }
        sections = {k: dict(v) for k, v in sections.items()}
        if self.schema == "greeting":
            # The greeting loops on every call. It is copied into the work dir
            # (absolute, so flows_dir.join keeps it) and stays put even if the
            # repository changes mid-run.
            prompt = self.dir / "greeting.wav"
            shutil.copyfile(resolve_prompt(), prompt)
            base["greeting"] = {"flows_dir": str(REPO / "ivr-flows"), "prompt": str(prompt)}
        else:
            # IVR flows: calls run the repository's main flow (prompts, menus,
            # then a queue with hold music when nobody presses a key).
            sections.pop("greeting", None)
            base["ivr"] = {
                "flows_dir": str(REPO / "ivr-flows"),
                "watch": False,
                "calendar_dir": str(REPO / "sip-config/calendar"),
                "recordings_dir": str(self.dir / "recordings"),
            }
        for sec, kv in sections.items():
            base.setdefault(sec, {}).update(kv)
        for sec, kv in CONFIG_OVERRIDES.items():
            base.setdefault(sec, {}).update(kv)
        text = ""
        for sec, kv in base.items():
            text += f"[{sec}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in kv.items()) + "\n"
        self.config_path = self.dir / "hotline.toml"
        self.config_path.write_text(text)
        self.log_path = self.dir / "server.log"
        self.log_filter = log_filter
        self.proc: subprocess.Popen | None = None
        self.sip = self.http = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout: float = 60) -> "Server":
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        if self.log_filter:
            env["HOTLINE_LOG"] = self.log_filter
        log = open(self.log_path, "wb")
        self.proc = track(
            subprocess.Popen(
                (["taskset", "-c", SERVER_CPUS] if SERVER_CPUS else [])
                + (["nice", "-n", str(SERVER_NICE)] if SERVER_NICE else [])
                + (["chrt", "-f", str(SERVER_RT)] if SERVER_RT else [])
                + [str(self.binary), "serve", "--config", str(self.config_path)],
                cwd=self.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session, hence its own scheduler autogroup (as a
                # daemon would have its own cgroup): with autogroups on, CPU
                # is shared between sessions first, so otherwise the server,
                # SIPp and the receiver would split one session's share.
                start_new_session=True,
            )
        )
        log.close()
        if SERVER_NICE:
            try:
                Path(f"/proc/{self.proc.pid}/autogroup").write_text(str(SERVER_NICE))
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            m = re.search(r"hotline ready sip=(\S+) http=(\S+)", text)
            if m:
                self.sip, self.http = m.group(1), m.group(2)
                return self
            if self.proc.poll() is not None:
                raise SystemExit(f"hotline exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        stop(self.proc)
        raise SystemExit(f"hotline not ready after {timeout}s:\n{self.log_path.read_text(errors='replace')}")

    def metrics(self, timeout: float = 5) -> dict[str, float]:
        with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=timeout) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
        return out

    def stop(self) -> int | None:
        stop(self.proc, grace=5)
        return self.proc.returncode if self.proc else None

    def log_summary(self, limit: int = 8) -> dict:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        warn = [l for l in text.splitlines() if " WARN " in l or " ERROR " in l]
        ends: dict[str, int] = {}
        for m in re.finditer(r"call ended.*?end=(\S+)", text):
            ends[m.group(1)] = ends.get(m.group(1), 0) + 1
        return {"warn_error_lines": len(warn), "first_warn_error": warn[:limit], "call_end_reasons": ends}


# ---------------------------------------------------------------- SIPp


def parse_sipp_stats(path: Path) -> dict[str, str]:
    """The last row of a SIPp -trace_stat CSV as {column: value}."""
    if not path.exists():
        return {}
    lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    if len(lines) < 2:
        return {}
    head = lines[0].rstrip(";").split(";")
    row = lines[-1].rstrip(";").split(";")
    return dict(zip(head, row))


def sipp_time_ms(v: str | None) -> float | None:
    """SIPp's 'HH:MM:SS:uuuuuu' durations in ms."""
    if not v:
        return None
    try:
        parts = [int(x) for x in v.split(":")]
    except ValueError:
        return None
    if len(parts) == 3:
        parts.append(0)
    if len(parts) != 4:
        return None
    h, m, s, us = parts
    return (h * 3600 + m * 60 + s) * 1000 + us / 1000


def sipp_rtd_buckets(stats: dict) -> dict[str, int]:
    """ResponseTimeRepartition1 (INVITE -> 200 round trip) as {"<10": n, ...}."""
    out = {}
    for k, v in stats.items():
        if k.startswith("ResponseTimeRepartition1_"):
            try:
                out[k.split("_", 1)[1]] = int(v)
            except ValueError:
                pass
    return out


def bucket_percentile(buckets: dict[str, int], p: float) -> str | None:
    """The bucket label (e.g. "<10" ms) holding the p-th percentile."""
    total = sum(buckets.values())
    if not total:
        return None
    acc = 0
    for label, n in buckets.items():
        acc += n
        if acc >= total * p / 100:
            return label
    return None


def sipp_int(stats: dict, key: str) -> int:
    try:
        return int(stats.get(key, "0") or 0)
    except ValueError:
        return 0


def wait_sipp(proc: subprocess.Popen, stat: Path, calls: int, limit_s: float, grace_s: float = 8) -> tuple[object, bool]:
    """Waits for SIPp; returns (exit code or "killed", hung_at_exit).

    SIPp 3.6.1 with rtp_stream sometimes does not exit after its last call
    (it sits until -timeout and then exits 255). When its stats show every
    call finished and it is still running `grace_s` later, it is stopped here
    and the run is judged on its counters.
    """
    deadline = time.monotonic() + limit_s
    done_since = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc.returncode, False
        st = parse_sipp_stats(stat)
        if st and sipp_int(st, "SuccessfulCall(C)") + sipp_int(st, "FailedCall(C)") >= calls and sipp_int(st, "CurrentCall") == 0:
            done_since = done_since or time.monotonic()
            if time.monotonic() - done_since > grace_s:
                stop(proc)
                return proc.returncode, True
        time.sleep(0.5)
    stop(proc)
    return "killed", False


def sipp_error_lines(dirpath: Path, limit: int = 6) -> list[str]:
    out = []
    for p in sorted(dirpath.glob("*errors*.log")):
        for line in p.read_text(errors="replace").splitlines():
            if line.strip() and not line.startswith("---"):
                out.append(line.strip())
            if len(out) >= limit:
                return out
    return out


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def percentile(sorted_xs, p: float):
    if not sorted_xs:
        return None
    k = min(len(sorted_xs) - 1, max(0, int(round(p / 100.0 * (len(sorted_xs) - 1)))))
    return sorted_xs[k]


def fmt(v, digits: int = 1, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}{unit}"
    return f"{v}{unit}"


def machine_note() -> str:
    load = open("/proc/loadavg").read().split()[:3]
    return f"{os.cpu_count()} CPUs, load average {' '.join(load)} at start"
