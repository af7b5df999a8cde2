"""Shared helpers for the hotline load drivers (call_rate.py, concurrent_media.py,
bridged_calls.py, conferences.py).

Everything here stays on 127.0.0.1. By default the drivers re-run themselves in
a private network namespace that has only `lo` (`unshare -n`, needs root), so a
mistake cannot reach another host and the ports cannot collide with other test
servers running on the machine. Every process started here is recorded and
killed at exit, by its own pid.
"""

from __future__ import annotations

import array
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
import wave
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


def per_thread_name(pid: int, read) -> dict[str, list]:
    """read(base) of each thread of a process (base is /proc/PID/task/TID),
    grouped by thread name with trailing digits folded to N (tokio workers
    are "tokio-runtime-w"; media workers "media-N"). A thread that ends
    while it is read, or reads oddly, is left out."""
    out: dict[str, list] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/comm") as f:
                name = re.sub(r"\d+$", "N", f.read().strip())
            value = read(base)
        except (OSError, ValueError, IndexError):
            continue
        out.setdefault(name, []).append(value)
    return out


def _thread_sched(base: str) -> list[int]:
    with open(f"{base}/schedstat") as f:
        run, wait, _slices = (int(x) for x in f.read().split())
    nonvol = 0
    with open(f"{base}/status") as f:
        for line in f:
            if line.startswith("nonvoluntary_ctxt_switches"):
                nonvol = int(line.split()[1])
    return [run, wait, nonvol]


def proc_threads_sched(pid: int) -> dict[str, list[int]]:
    """Per thread name: [run ns, run-queue wait ns, involuntary switches]
    (from /proc/PID/task/*/schedstat and status), same names summed."""
    return {k: [sum(x) for x in zip(*v)] for k, v in per_thread_name(pid, _thread_sched).items()}


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


def _thread_ticks(base: str) -> int:
    with open(f"{base}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def proc_threads_ticks(pid: int) -> dict[str, int]:
    """CPU ticks per thread name (threads of the same name summed)."""
    return {k: sum(v) for k, v in per_thread_name(pid, _thread_ticks).items()}


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


_ORDERS: dict[Path, bool] = {}


def accepts_orders(binary: Path) -> bool:
    """Whether the binary has an [orders] section (work orders, whose
    catalogue and units paths must then be absolute like the flows)."""
    if binary not in _ORDERS:
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "probe.toml"
            f.write_text(f'[orders]\ncatalogue = {toml_value(str(REPO / "sip-config/catalogue.toml"))}\n')
            r = subprocess.run([str(binary), "config", "check", str(f)], capture_output=True, text=True, timeout=60)
        _ORDERS[binary] = r.returncode == 0
    return _ORDERS[binary]


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
            if accepts_orders(self.binary):
                base["orders"] = {
                    "catalogue": str(REPO / "sip-config/catalogue.toml"),
                    "units": str(REPO / "sip-config/units.toml"),
                    "spool_dir": str(self.dir / "spool"),
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


def sipp_overload_trips(dirpath: Path) -> int:
    """How often SIPp's own watchdog found its main loop stalled (its
    "Overload warning: the minor/major watchdog timer ... tripped"): the
    load generator itself was starved, so it did not behave like phones."""
    return sum(p.read_text(errors="replace").count("watchdog timer") for p in dirpath.glob("*errors*.log"))


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


# ---------------------------------------------------------------- HTTP API


def api_request(http: str, method: str, path: str, body: dict | None = None, timeout: float = 10) -> tuple[int | None, object, float]:
    """One JSON request to the server's API: (status or None on a transport
    error, parsed body or error text, seconds taken)."""
    import urllib.error

    t = time.monotonic()
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{http}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    except Exception as e:  # refused, reset, timed out
        return None, str(e), time.monotonic() - t
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")[:200]
    return status, parsed, time.monotonic() - t


class EventStream(threading.Thread):
    """The server's live seat events (WebSocket `/api/v1/events`), as the
    agents' desktops get them: every message kept with its arrival time.

    A minimal RFC 6455 client on the standard library: text messages,
    fragments, pings answered, no extensions."""

    def __init__(self, http: str, path: str = "/api/v1/events", timeout: float = 10):
        import base64
        import socket

        super().__init__(daemon=True)
        host, port = http.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self._buf = b""
        while b"\r\n\r\n" not in self._buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError(f"{path}: connection closed during the WebSocket handshake")
            self._buf += chunk
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"{path}: no WebSocket upgrade: {head[:200]!r}")
        self.sock.settimeout(0.5)
        self.events: list[tuple[float, dict]] = []
        self.lagged = 0
        self.error: str | None = None
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def _read(self, n: int) -> bytes:
        import socket

        while len(self._buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                if self._halt.is_set():
                    raise EOFError
                continue
            if not chunk:
                raise EOFError
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)  # client frames are masked; control payloads are < 126 bytes
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
                          + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def run(self):
        import struct

        message = b""
        try:
            while True:
                b0, b1 = self._read(2)
                opcode, length = b0 & 0x0F, b1 & 0x7F
                if length == 126:
                    length = struct.unpack(">H", self._read(2))[0]
                elif length == 127:
                    length = struct.unpack(">Q", self._read(8))[0]
                mask = self._read(4) if b1 & 0x80 else None
                payload = self._read(length)
                if mask:
                    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                if opcode == 8:
                    return
                if opcode == 9:
                    self._send(0xA, payload)
                    continue
                if opcode not in (0, 1):
                    continue
                message += payload
                if not b0 & 0x80:
                    continue
                event = json.loads(message)
                message = b""
                with self._lock:
                    self.events.append((time.monotonic(), event))
                    if event.get("event") == "lagged":
                        self.lagged += int(event.get("missed", 0))
        except EOFError:
            return
        except Exception as e:
            self.error = repr(e)

    def close(self):
        self._halt.set()
        try:
            self._send(8)
        except OSError:
            pass
        self.join(timeout=5)
        self.sock.close()

    def since(self, t0: float = 0.0, t1: float = float("inf"), kind: str | None = None) -> list[dict]:
        with self._lock:
            return [e for t, e in self.events if t0 <= t <= t1 and (kind is None or e.get("event") == kind)]

    def connected_calls(self) -> dict[str, str]:
        """Seat -> the caller's SIP Call-ID, for conversations connected and not ended."""
        live: dict[str, str] = {}
        for e in self.since():
            if e.get("event") == "connected":
                live[e["seat"]] = e["call_id"]
            elif e.get("event") == "ended" and live.get(e.get("seat")) == e.get("call_id"):
                live.pop(e["seat"], None)
        return live


# ---------------------------------------------------------------- callers (SIPp uac with media)

INVITE_HEAD = """INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Load" <sip:1380013[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:load@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]
"""

IN_DIALOG = """{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Load" <sip:1380013[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: sip:load@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
"""


def caller_scenario(name: str, sdp_conn: str, sdp_port: str, after_ack: str, pause_ms: int) -> str:
    sdp = (
        f"v=0\no=load 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 {sdp_conn}\nt=0 0\n"
        f"m=audio {sdp_port} RTP/AVP 8\na=rtpmap:8 PCMA/8000\na=ptime:20\na=sendrecv\n"
    )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="{name}">
  <send retrans="500"><![CDATA[
{INVITE_HEAD}
{sdp}]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
{IN_DIALOG.format(method="ACK", cseq=1)}
]]></send>
{after_ack}  <pause milliseconds="{pause_ms}"/>
  <send retrans="500"><![CDATA[
{IN_DIALOG.format(method="BYE", cseq=2)}
]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


# ---------------------------------------------------------------- audio for SIPp's rtp_stream

_SEG_END = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]


def lin2alaw(v: int) -> int:
    v >>= 3
    if v >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        v = -v - 1
    for seg, end in enumerate(_SEG_END):
        if v <= end:
            a = seg << 4
            a |= (v >> 1) & 0xF if seg < 2 else (v >> seg) & 0xF
            return a ^ mask
    return 0x7F ^ mask


def make_caller_audio(out: Path) -> Path:
    """The greeting (8 kHz mono PCM16 WAV) as raw A-law, for SIPp's rtp_stream."""
    with wave.open(str(resolve_prompt())) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 8000
        pcm = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        pcm.byteswap()
    table = {}
    out.write_bytes(bytes(table.setdefault(s, lin2alaw(s)) for s in pcm))
    return out


def lin2ulaw(v: int) -> int:
    sign = 0x80 if v < 0 else 0
    if v < 0:
        v = -v
    v = min(v, 32635) + 0x84
    exp = min(7, max(0, (v >> 7).bit_length() - 1))
    mant = (v >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def make_tone_audio(out: Path, law: str, freq: int = 440, amp: int = 8000) -> Path:
    """One second of a `freq` Hz tone (a whole number of cycles, so it loops
    seamlessly) as raw mu-law or A-law for SIPp's rtp_stream."""
    import math

    enc = lin2ulaw if law == "pcmu" else lin2alaw
    out.write_bytes(bytes(enc(int(amp * math.sin(2 * math.pi * freq * i / 8000))) for i in range(8000)))
    return out


def tone_power(samples, freq: float, rate: int = 8000) -> float:
    """Goertzel power of `freq` in `samples`, normalised by length."""
    import math

    n = len(samples)
    if not n:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / n


def check_wav(path: Path, tones: tuple[int, ...] = (), tail_s: int = 10) -> dict:
    """Decodes a call recording: format, duration, per-channel RMS and the
    share of one-second blocks with RMS > 100 (non-silent), right channel's
    zero crossings per second (one 440 Hz tone gives about 880). With
    `tones`, the right channel's last `tail_s` seconds must hold each of
    those frequencies (Goertzel power at least 100 times that at 10 Hz
    either side, which also fails when its frames were played with gaps
    or slips), as when the caller hears two parties mixed."""
    import math

    try:
        with wave.open(str(path)) as w:
            ch, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(frames)
    except (wave.Error, OSError, EOFError) as e:
        return {"file": path.name, "error": str(e)}
    out = {"file": path.name, "channels": ch, "bits": 8 * width, "rate": rate, "seconds": round(frames / max(1, rate), 1)}
    if ch != 2 or width != 2 or rate != 8000:
        out["error"] = "not 8 kHz 16-bit stereo"
        out["ok"] = False
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
    ok = bool(
        out["seconds"] >= 5
        and out["left"]["rms"] > 100 and out["left"]["active_fraction"] >= 0.5
        and out["right"]["rms"] > 100 and out["right"]["active_fraction"] >= 0.9
    )
    if tones:
        tail = pcm[1::2][-tail_s * 8000:]
        found, share = {}, {}
        energy = sum(s * s for s in tail) or 1
        for f in tones:
            p = tone_power(tail, f)
            off = max(tone_power(tail, f - 10), tone_power(tail, f + 10), 1.0)
            found[f] = round(p / off, 1)
            # Share of the channel's energy in that one frequency (a pure
            # tone 1.0, two equal tones 0.5 each). A tone whose 20 ms frames
            # were dropped or repeated loses phase and so most of its share
            # unless its period divides 20 ms (1000 Hz does, 440 Hz does not).
            share[f] = round(2 * p / energy, 3)
        out["right_tail_tone_to_neighbour_ratio"] = found
        out["right_tail_tone_share"] = share
        ok = ok and all(r >= 100 for r in found.values())
    out["ok"] = ok
    return out


# ---------------------------------------------------------------- agent seats and callers (bridged calls)

SEAT_BASE = 20000
WAV_BYTES_PER_S = 8000 * 2 * 2  # 8 kHz, 16 bit, stereo

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


def answer_xml(pt: int, name: str, audio: str, who: str = "seat") -> str:
    """UAS: INVITE -> 180, 200 (SDP answer) -> ACK, stream audio -> BYE -> 200
    (an agent's seat, or a trunk's far end). Retransmitted INVITEs (the
    server resends after 500 ms when a starved SIPp answers late) are
    swallowed while the 200 is retransmitted, instead of aborting the call."""
    tag = who.capitalize() + "Tag"
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="{who}">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]{tag}[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:{who}@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]{tag}[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:{who}@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o={who} 1 1 IN IP4 [media_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP {pt}
a=rtpmap:{pt} {name}/8000
a=ptime:20
a=sendrecv
]]></send>
  <label id="wait_ack"/>
  <recv request="INVITE" optional="true" next="wait_ack"/>
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


QUEUE_FLOW = """# Load test: every caller goes straight to the general queue.
name: main
description: {driver} load test - straight to the general queue.
start: general
nodes:
  - id: general
    type: queue
    queue: general
    priority: 5
    prompts: [please_hold]
"""


def make_queue_flows(dirpath: Path, driver: str) -> Path:
    """A flows folder whose main flow puts every caller in the queue `general`
    (plus the repository's survey flow and prompts)."""
    dirpath.mkdir(parents=True)
    (dirpath / "main.yaml").write_text(QUEUE_FLOW.format(driver=driver))
    (dirpath / "survey.yaml").write_text((REPO / "ivr-flows/survey.yaml").read_text())
    os.symlink(REPO / "ivr-flows/prompts", dirpath / "prompts")
    return dirpath


def codec_of(law: str) -> tuple[int, str]:
    """(payload type, SDP name) of "pcmu" or "pcma"."""
    return (0, "PCMU") if law == "pcmu" else (8, "PCMA")


def sipp_command(scenario_file: Path, sdir: Path, port: int, limit_s: int, extra: list[str], remote: str | None) -> list[str]:
    return load_prefix() + [
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


def start_sipp(cmd: list[str], sdir: Path) -> subprocess.Popen:
    return track(subprocess.Popen(
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
    return {"exit": proc_rc, "hung_at_exit": hung, "ok": sipp_int(stats, "SuccessfulCall(C)"),
            "failed": sipp_int(stats, "FailedCall(C)"), "retrans": sipp_int(stats, "Retransmissions(C)"),
            "rtd_ms": sipp_time_ms(stats.get("ResponseTime1(C)"))}


def sipp_ok(s: dict, n: int) -> bool:
    return (s["exit"] == 0 or s["hung_at_exit"]) and s["ok"] == n and s["failed"] == 0


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
    counts = {k: len(v) for k, v in per_thread_name(pid, lambda base: None).items()}
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def call_records(db: Path) -> dict:
    """What the server stored about the calls (SQLite), with the transfers and
    three-way calls of each (the `transfers` JSON column) when it has them."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        columns = {r[1] for r in con.execute("PRAGMA table_info(calls)")}
        has_transfers = "transfers" in columns
        reception = con.execute(
            "SELECT jitter_ms, packets_lost, packets_late FROM calls"
        ).fetchall() if {"jitter_ms", "packets_lost", "packets_late"} <= columns else []
        rows = con.execute(
            "SELECT end_reason, hangup_by, seat, connected_at, seat_ended_at, call_recording, codec, seat_codec, "
            + ("transfers" if has_transfers else "NULL") + " FROM calls"
        ).fetchall()
        con.close()
    except sqlite3.Error as e:
        return {"error": str(e)}
    reasons: dict[str, int] = {}
    codecs: dict[str, int] = {}
    bridged_s = 0.0
    with_seat = with_rec = 0
    seats = set()
    transfers: dict[str, int] = {}
    talked: list[float] = []
    for reason, _by, seat, conn, ended, rec, codec, seat_codec, tr in rows:
        reasons[reason] = reasons.get(reason, 0) + 1
        codecs[f"{codec}->{seat_codec}"] = codecs.get(f"{codec}->{seat_codec}", 0) + 1
        if seat:
            with_seat += 1
            seats.add(seat)
        if rec:
            with_rec += 1
        if conn and ended:
            bridged_s += (ended - conn) / 1000
        try:
            events = json.loads(tr) if tr else []
        except ValueError:
            events = [{"kind": "unparsable"}]
        key = " + ".join(
            f"{e.get('kind')}:{e.get('target')}:{e.get('result') or '-'}:{e.get('ending') or '-'}" for e in events
        ) or "none"
        transfers[key] = transfers.get(key, 0) + 1
        talked += [e["duration_ms"] / 1000 for e in events if isinstance(e.get("duration_ms"), (int, float))]
    out = {"rows": len(rows), "end_reasons": reasons, "with_seat": with_seat, "distinct_seats": len(seats),
           "with_recording": with_rec, "codecs": codecs, "bridged_seconds_total": round(bridged_s, 1)}
    if reception:
        # What the server measured of the callers' RTP (RFC 3550 jitter):
        # a starved SIPp sends unevenly.
        jit = sorted(float(j) for j, _, _ in reception if j is not None)
        out["caller_rtp"] = {"jitter_ms_p50": percentile(jit, 50), "jitter_ms_p99": percentile(jit, 99),
                             "jitter_ms_max": jit[-1] if jit else None,
                             "lost": sum(x or 0 for _, x, _ in reception), "late": sum(x or 0 for _, _, x in reception)}
    if has_transfers:
        # kind:target:result:ending of each call's events -> calls.
        out["transfers"] = transfers
        out["transfer_talk_s_min"] = round(min(talked), 1) if talked else None
    return out


def add_bridge_args(ap, rtp_port_max: int = 29999) -> None:
    """Options of the drivers built on BridgeRig."""
    ap.add_argument("--hold", type=int, default=60, help="seconds all N calls are held in the measured state (default 60)")
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
    ap.add_argument("--rtp-port-max", type=int, default=rtp_port_max,
                    help=f"server media.rtp_port_max (default {rtp_port_max})")
    ap.add_argument("--no-record", action="store_true",
                    help="diagnosis only: queue record = false (a run without recordings cannot PASS)")
    ap.add_argument("--repeat", type=int, default=1)


class BridgeRig:
    """A fresh server with N agent seats in one queue `general`, and the SIPp
    instances around it:

      * the server: N seats ([[seat]] 20001.., password per seat, language
        cmn, no skills), queue `general` (longest-idle, ring 15 s, wrap-up
        --wrap-up, max_misses 3, record unless --no-record), the registrar
        offering MD5 only (SIPp's digest) with available_on_register and
        keep-alive off (the seats' SIPp takes only INVITEs), a private
        flows folder whose main flow queues every caller at once (checked
        with `hotline flows check` first), RTP timeout on;
      * seats: one SIPp registers all N seats from one local port P and
        exits; a second then answers as UAS on P (the server sends INVITEs
        where the REGISTER came from), in --seat-codec, streaming a looping
        440 Hz tone, and answers the server's BYE;
      * callers: SIPp places N calls at --rate calls/s, PCMA only, streaming
        a looping A-law copy of the greeting, holds each for `pause_ms`,
        then sends BYE.

    `extra_sections` and `extra_config` (appended TOML text) add to the
    server's config; `ports_per_call` is how many RTP port pairs a call
    takes at its peak."""

    def __init__(self, args, n: int, driver: str, extra_sections: dict | None = None, extra_config: str = "",
                 ports_per_call: int = 2):
        self.args, self.n = args, n
        if ports_per_call * n > (args.rtp_port_max - args.rtp_port_min + 1) // 2:
            raise SystemExit(f"{n} calls need {ports_per_call * n} RTP port pairs: widen --rtp-port-min/--rtp-port-max")
        self.work = Path(tempfile.mkdtemp(prefix=f"hotline-{Path(driver).stem}{n}-"))
        self.flows = make_queue_flows(self.work / "flows", driver)
        self.caller_audio = make_caller_audio(self.work / "caller.al")
        self.seat_audio = make_tone_audio(self.work / "seat.audio", args.seat_codec, 440)
        self.rec_dir = self.work / "server" / "recordings"
        sections = {
            "sip": {"max_calls": n + 1000, "invite_rate_per_ip": 1_000_000.0, "invite_burst_per_ip": 1_000_000.0},
            # Every party streams audio, so the RTP timeout stays on: a leg
            # whose audio does not reach the server is hung up and counted.
            "media": {"rtp_timeout_secs": args.rtp_timeout, "rtp_port_min": args.rtp_port_min,
                      "rtp_port_max": args.rtp_port_max},
            "ivr": {"flows_dir": str(self.flows), "main_flow": "main", "survey_flow": "survey",
                    "recordings_dir": str(self.rec_dir), "watch": False},
            # keepalive_secs 0: the seats' SIPp takes only INVITEs, and the
            # keep-alive OPTIONS would count against it as unexpected calls.
            "registrar": {"available_on_register": True, "min_expires": 60, "max_expires": 3600,
                          "lockout_failures": 1000, "keepalive_secs": 0},
        }
        for sec, kv in (extra_sections or {}).items():
            sections.setdefault(sec, {}).update(kv)
        self.server = Server(args.binary, sections, workdir=self.work / "server", log_filter=args.log_filter)
        self._write_config(extra_config)
        for cmd, what in (([str(self.server.binary), "flows", "check", str(self.flows), "--config", str(self.server.config_path)], "flows"),
                          ([str(self.server.binary), "config", "check", str(self.server.config_path)], "config")):
            chk = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if chk.returncode != 0:
                raise SystemExit(f"{what} check failed:\n{chk.stdout}{chk.stderr}")
        self.sampler: Sampler | None = None
        self.seat_port = free_udp_port(1)
        self.reg_stats: dict = {}
        self.seats_avail = None
        self.idle_rss = self.registered_rss = None
        self.m0: dict = {}
        self.udp0: dict = {}
        self.seats = self.callers = None
        self.seat_dir = self.work / "sipp-seats"
        self.call_dir = self.work / "sipp-callers"
        self.reg_dir = self.work / "sipp-register"
        self.t_start = None

    def _write_config(self, extra: str) -> None:
        """Adds what Server's flat sections cannot say: the MD5-only algorithm
        list, the queue and the N seats (arrays of tables replace the defaults)."""
        a = self.args
        text = self.server.config_path.read_text()
        text = text.replace("[registrar]\n", '[registrar]\nalgorithms = ["MD5"]\n', 1)
        text += (
            f'[[queue]]\nname = "general"\ndescription = "load test"\n'
            f'strategy = "longest-idle"\nring_secs = 15\nwrap_up_secs = {a.wrap_up}\nmax_misses = 3\n'
            f'record = {"false" if a.no_record else "true"}\n\n'
        )
        text += "".join(
            f'[[seat]]\nid = "{SEAT_BASE + i}"\npassword = "seat-pw-{SEAT_BASE + i}"\nname = "Load seat {i}"\nlanguages = ["cmn"]\n\n'
            for i in range(1, self.n + 1)
        )
        self.server.config_path.write_text(text + extra)

    def start_server(self) -> None:
        self.server.start()
        self.sampler = Sampler(self.server, period=1.0)
        self.sampler.start()
        time.sleep(2)
        self.idle_rss = proc_rss_kb(self.server.pid)
        self.m0 = self.server.metrics()
        self.udp0 = udp_counters()

    def register_seats(self) -> None:
        """Registers the N seats from seat_port; waits until the board has them available."""
        n, a = self.n, self.args
        self.reg_dir.mkdir()
        (self.reg_dir / "register.xml").write_text(register_xml(a.expires))
        (self.reg_dir / "seats.csv").write_text("SEQUENTIAL\n" + "".join(
            f"{SEAT_BASE + i};[authentication username={SEAT_BASE + i} password=seat-pw-{SEAT_BASE + i}];\n"
            for i in range(1, n + 1)))
        reg_limit = int(n / a.reg_rate + 60)
        reg = start_sipp(sipp_command(self.reg_dir / "register.xml", self.reg_dir, self.seat_port, reg_limit,
                                      ["-inf", str(self.reg_dir / "seats.csv"), "-r", str(a.reg_rate), "-m", str(n), "-l", str(n)],
                                      self.server.sip), self.reg_dir)
        rc, hung = wait_sipp(reg, self.reg_dir / "stat.csv", n, reg_limit + 10, grace_s=3)
        self.reg_stats = sipp_summary(rc, hung, parse_sipp_stats(self.reg_dir / "stat.csv"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.seats_avail = seats_by_activity(self.server.metrics()).get("status_available", 0)
            if self.seats_avail >= n:
                break
            time.sleep(0.5)
        time.sleep(1)
        self.registered_rss = proc_rss_kb(self.server.pid)

    def start_answerer(self, sdir: Path, who: str, law: str, audio: Path, port: int, limit_s: int) -> subprocess.Popen:
        """A SIPp UAS on `port` that answers N calls in `law`, streaming `audio`."""
        sdir.mkdir()
        (sdir / "tone.audio").write_bytes(audio.read_bytes())
        pt, name = codec_of(law)
        (sdir / f"{who}.xml").write_text(answer_xml(pt, name, "tone.audio", who))
        p = start_sipp(sipp_command(sdir / f"{who}.xml", sdir, port, limit_s,
                                    ["-mp", str(free_udp_port(4)), "-m", str(self.n),
                                     "-rtp_threadtasks", str(self.args.rtp_threadtasks)], None), sdir)
        self.sampler.add_pid(f"sipp_{who}", p.pid)
        return p

    def start_seats(self, limit_s: int) -> None:
        """The seats answer on the port they registered from."""
        self.seats = self.start_answerer(self.seat_dir, "seats", self.args.seat_codec, self.seat_audio, self.seat_port, limit_s)
        time.sleep(1.0)

    def start_callers(self, pause_ms: int, limit_s: int) -> None:
        a = self.args
        self.call_dir.mkdir()
        (self.call_dir / "caller.al").write_bytes(self.caller_audio.read_bytes())
        after_ack = '  <nop><action><exec rtp_stream="caller.al,-1,8"/></action></nop>\n'
        (self.call_dir / "caller.xml").write_text(caller_scenario("caller", "[media_ip]", "[media_port]", after_ack, pause_ms))
        self.t_start = time.monotonic()
        self.callers = start_sipp(sipp_command(self.call_dir / "caller.xml", self.call_dir, free_udp_port(1), limit_s,
                                               ["-mp", str(free_udp_port(4)), "-s", "12345",
                                                "-r", str(a.rate), "-rp", "1000", "-m", str(self.n), "-l", str(self.n),
                                                "-rtp_threadtasks", str(a.rtp_threadtasks)], self.server.sip), self.call_dir)
        self.sampler.add_pid("sipp_callers", self.callers.pid)

    def wait_bridged(self, deadline: float) -> tuple[float | None, int]:
        """Waits until all N seats are in_call: (that moment or None, peak in_call)."""
        peak = 0
        while time.monotonic() < deadline:
            try:
                ic = in_call(self.server.metrics()) or 0
            except Exception:
                ic = 0
            peak = max(peak, ic)
            if ic >= self.n:
                return time.monotonic(), peak
            if self.callers.poll() is not None or self.seats.poll() is not None:
                break
            time.sleep(0.25)
        return None, peak

    def window_figures(self, w0: float, w1: float, streams_per_call: int) -> dict:
        """What the sampler saw over [w0, w1]: calls and seats up, CPU, RSS,
        RTP rates against streams_per_call x N x 50/s, media counters."""
        s, n, srv = self.sampler, self.n, self.server
        sip_port = int(srv.sip.rsplit(":", 1)[1])
        win = s.window(w0, w1)
        ic = [in_call(x.metrics) for x in win if in_call(x.metrics) is not None]
        active = [x.metrics.get("hotline_active_calls") for x in win if "hotline_active_calls" in x.metrics]
        streams = [x.metrics.get("hotline_media_streams") for x in win if "hotline_media_streams" in x.metrics]
        rss = median([x.rss.get(srv.pid) for x in win if x.rss.get(srv.pid)])

        def wdelta(name):
            v = s.metric_delta(name, w0, w1)
            return None if v is None else int(v)

        def wrate(name):
            v = s.metric_rate(name, w0, w1)
            return None if v is None else round(v)

        cpu = s.cpu_percent("server", w0, w1)
        expected = streams_per_call * n * 50
        out = {
            "window_s": round(w1 - w0, 1),
            "in_call_window_min": min(ic) if ic else None,
            "in_call_window_max": max(ic) if ic else None,
            "in_call_samples": len(ic),
            "active_calls_window_min": min(active) if active else None,
            "active_calls_window_max": max(active) if active else None,
            "media_streams_window_min": int(min(streams)) if streams else None,
            "media_streams_window_max": int(max(streams)) if streams else None,
            "server_cpu_pct": _round(cpu),
            "server_cpu_per_call_pct": None if cpu is None else round(cpu / n, 4),
            "server_threads_pct": s.threads_percent(w0, w1),
            "server_sched": s.sched_stats(w0, w1),
            "ksoftirqd_cpu_pct": _round(s.softirqd_percent(w0, w1)),
            "vm_steal_pct": _round(s.steal_percent(w0, w1)),
            "sipp_cpu_pct": {k[5:]: _round(s.cpu_percent(k, w0, w1)) for k in s.pids if k.startswith("sipp_")},
            "machine_busy_pct": _round(s.machine_percent(w0, w1)),
            "other_processes_cpu_pct": _round(s.others_percent(w0, w1)),
            "server_rss_mb": None if rss is None else round(rss / 1024, 1),
            "rss_kb_median": rss,
            "rtp_sent_pps": wrate("hotline_rtp_packets_sent_total"),
            "rtp_received_pps": wrate("hotline_rtp_packets_received_total"),
            "expected_pps_each_way": expected,
            "media_tick_overruns_window": wdelta("hotline_media_tick_overruns_total"),
            "media_skipped_frames_window": wdelta("hotline_media_skipped_frames_total"),
            "rtp_late_packets_window": wdelta("hotline_rtp_late_packets_total"),
            "rtp_invalid_packets_window": wdelta("hotline_rtp_invalid_packets_total"),
            "udp_socket_drops_at_window_end": udp_drops_by_port_range(
                {"server_sip": (sip_port, sip_port), "server_rtp": (self.args.rtp_port_min, self.args.rtp_port_max)}),
            "server_threads_at_window_end": thread_counts(srv.pid),
        }
        tx, rx = out["rtp_sent_pps"], out["rtp_received_pps"]
        out["server_sent_fraction"] = None if tx is None else round(tx / expected, 3)
        out["sipp_audio_fraction"] = None if rx is None else round(rx / expected, 3)
        return out

    def finish(self, limit_s: int, others: dict[str, tuple[subprocess.Popen, Path]] | None = None) -> dict:
        """Lets the calls end (caller BYE -> server BYE to the other legs),
        waits for the server to write its records, stops it; returns the SIPp
        summaries, the server's counters, log and call records."""
        n = self.n
        out = {}
        rc, hung = wait_sipp(self.callers, self.call_dir / "stat.csv", n, limit_s)
        out["sipp_callers"] = sipp_summary(rc, hung, parse_sipp_stats(self.call_dir / "stat.csv"))
        out["sipp_callers"]["overload_trips"] = sipp_overload_trips(self.call_dir)
        for name, (proc, sdir) in {"seats": (self.seats, self.seat_dir), **(others or {})}.items():
            rc, hung = wait_sipp(proc, sdir / "stat.csv", n, 60)
            out[f"sipp_{name}"] = sipp_summary(rc, hung, parse_sipp_stats(sdir / "stat.csv"))
            out[f"sipp_{name}"]["overload_trips"] = sipp_overload_trips(sdir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.server.metrics().get("hotline_active_calls", 1) == 0:
                    break
            except Exception:
                pass
            time.sleep(0.5)
        time.sleep(3)
        m1 = self.server.metrics()
        udp1 = udp_counters()
        self.sampler.stop()
        log = self.server.log_summary()
        # sqlx "slow statement" warnings quote the whole multi-row INSERT.
        log["first_warn_error"] = [l if len(l) <= 400 else l[:400] + " ..." for l in log["first_warn_error"]]
        self.server.stop()

        def delta(name):
            return m1.get(name, 0) - self.m0.get(name, 0)

        out.update({
            "server_answered": int(delta('hotline_calls_total{result="answered"}')),
            "server_other_results": {k.split('"')[1]: delta(k) for k in m1
                                     if k.startswith("hotline_calls_total{") and "answered" not in k and delta(k)},
            "queue_answered": int(delta('hotline_queue_answered_total{queue="general"}')),
            "media_tick_overruns_total": int(delta("hotline_media_tick_overruns_total")),
            "media_skipped_frames_total": int(delta("hotline_media_skipped_frames_total")),
            "server_rss_idle_mb": _mb(self.idle_rss),
            "server_rss_registered_mb": _mb(self.registered_rss),
            "server_rss_peak_mb": _mb(self.sampler.rss_peak_kb("server")),
            "rss_per_seat_registered_kb": None if not self.registered_rss or not self.idle_rss
            else round((self.registered_rss - self.idle_rss) / n, 1),
            "udp": udp_delta(self.udp0, udp1),
            "call_records": call_records(self.work / "server" / "hotline.db"),
            "sipp_errors": sipp_error_lines(self.call_dir) + sipp_error_lines(self.seat_dir) + sipp_error_lines(self.reg_dir)
            + [l for _, d in (others or {}).values() for l in sipp_error_lines(d)],
            "server_log": log,
            "workdir": str(self.work),
        })
        return out

    def recordings(self, tones: tuple[int, ...] = (), tail_s: int = 10) -> dict:
        """The WAV files in the recordings folder: count and size against
        32,000 bytes per bridged second of the call records, and a sample of
        them decoded (--check-recordings)."""
        import random

        wavs = sorted(self.rec_dir.rglob("*.wav")) if self.rec_dir.exists() else []
        size = sum(p.stat().st_size for p in wavs)
        records = call_records(self.work / "server" / "hotline.db")
        expected = None
        if isinstance(records.get("bridged_seconds_total"), float) and records["bridged_seconds_total"] > 0:
            expected = int(records["bridged_seconds_total"] * WAV_BYTES_PER_S)
        sample = random.Random(self.n).sample(wavs, min(self.args.check_recordings, len(wavs)))
        decoded = [check_wav(p, tones, tail_s) for p in sample]
        ratio = None if not expected else round(size / expected, 3)
        return {"files": len(wavs), "bytes": size, "mb": round(size / 1e6, 1), "expected_bytes_from_records": expected,
                "size_ratio": ratio, "decoded": decoded,
                "ok": bool(len(wavs) == self.n and ratio is not None and 0.95 <= ratio <= 1.05
                           and decoded and all(d.get("ok") for d in decoded))}

    def discard_if(self, passed: bool) -> None:
        if passed and not self.args.keep:
            subprocess.run(["rm", "-rf", str(self.work)])


def _round(v, d=1):
    return None if v is None else round(v, d)


def _mb(kb):
    return None if kb is None else round(kb / 1024, 1)


def start(ap, test: str, bridge: bool = False):
    """The start of a driver's main(): adds the common flags (and the bridged
    drivers' ones first when `bridge`), parses them, enters the network
    namespace, raises the open-file limit and prints the header. Returns args."""
    if bridge:
        add_bridge_args(ap)
    add_common_args(ap)
    args = ap.parse_args()
    apply_common_args(args)
    where = maybe_enter_netns(args.no_netns)
    nofile = raise_nofile()
    print(f"# hotline {test} test: {args.binary}\n# {machine_note()}; open files {nofile}; {where}", flush=True)
    return args


def measured_run(args, run_once, load, run: int) -> dict:
    """run_once(args, load) after --wait-quiet, its result stamped with how
    quiet the machine was and how the server was placed."""
    quiet = wait_quiet(args.wait_quiet) if args.wait_quiet else None
    r = run_once(args, load)
    r["before_run_other_cpu_pct"] = None if quiet is None else round(quiet, 1)
    r["server_nice"] = args.server_nice
    r["server_rt"] = args.server_rt
    r["cpus"] = {"server": args.server_cpus, "load": args.load_cpus}
    r["run"] = run
    return r


SERIES_MEDIANS = [("cpu", lambda x: x["server_cpu_pct"]), ("rss_per_call_kb", lambda x: x.get("rss_per_call_kb")),
                  ("rtp_sent_pps", lambda x: x["rtp_sent_pps"]), ("rtp_received_pps", lambda x: x["rtp_received_pps"])]


def run_series(args, run_once, summary, label: str, medians=SERIES_MEDIANS) -> None:
    """Runs --calls (a list stops at the first FAIL) x --repeat, prints each
    summary (and with --repeat the `medians`, (name, getter) pairs, of each
    N's runs), keeps --json up to date, exits 0 when some N passed."""
    results = []
    best = None
    calls = [int(x) for x in str(args.calls).split(",")]

    def dump():
        if args.json:
            args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "calls": calls,
                                             "results": results, "best": best}, indent=1))

    for n in calls:
        runs = []
        for i in range(args.repeat):
            r = measured_run(args, run_once, n, i + 1)
            print(summary(r), flush=True)
            if not r["passed"]:
                print(f"  sipp errors: {r['sipp_errors']}\n  server log: {r['server_log']}\n  kept: {r['workdir']}", flush=True)
            runs.append(r)
            results.append(r)
            dump()  # after every run, so a long series keeps what it measured
        if args.repeat > 1:
            print(f"  median of {args.repeat}: " + ", ".join(f"{name} {median([f(x) for x in runs])}" for name, f in medians), flush=True)
        if all(x["passed"] for x in runs):
            best = n
        elif any(x["verdict"] == "FAIL" for x in runs):
            break
    print(f"# {label}: {best if best else 'none'}")
    dump()
    sys.exit(0 if best else 1)
