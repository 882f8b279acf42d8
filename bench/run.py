#!/usr/bin/env python3
"""Runs the standard benchmark matrix: wscoro against a plain Boost.Beast server, side by side.

For every scenario and server: start the server pinned to one core, wait for its
"listening on ws://..." line, run the load generator pinned to another core with --server-pid (so
it reports the server's CPU time), stop the server with SIGTERM. Prints a Markdown table on stdout
(progress goes to stderr) and can write every raw generator report as JSON (--json) and a bar
chart (--svg).

Two generators take the same command line and print the same report: wscoro-bench-epoll (raw
epoll, its own RFC 6455 client; the default for echo and broadcast when it is built) and
wscoro-bench (built on wscoro; always used for connect). --generator picks one; --smoke runs echo
and broadcast with both.

    python3 bench/run.py                       # the whole matrix, build/release
    python3 bench/run.py --build build/h-raw --only echo1,echo16 --repeat 3
    python3 bench/run.py --smoke               # seconds: checks that everything runs and verifies
    python3 bench/run.py --generator wscoro    # echo and broadcast with wscoro-bench too

Exit status: 0 when every run finished without errors and verification failures, 1 otherwise,
2 for a bad command line or missing binaries, 130 after Ctrl-C. Python 3.11 stdlib only.
"""
from __future__ import annotations

import argparse
import datetime
import html
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GENERATOR_BOUND_PCT = 90.0  # above this the generator, not the server, may be the limit
UNSATURATED_PCT = 80.0  # server and generator both below: something else had the cores
BUSY_MACHINE_PCT = 10.0  # a process ready to run waited this much of the window for a CPU


# ---------------------------------------------------------------------------------------------
# The matrix


@dataclass(frozen=True)
class Scenario:
    name: str  # the short name --only takes
    kind: str  # the generator's --scenario
    params: dict  # generator options: connections, depth, size
    smoke: dict  # what --smoke changes in params
    # Threads scenarios only: the scenario whose single-thread wscoro run is the reference.
    reference: str | None = None

    def effective(self, smoke: bool) -> dict:
        return {**self.params, **self.smoke} if smoke else dict(self.params)

    def label(self, smoke: bool) -> str:
        p = self.effective(smoke)
        if self.kind == "echo":
            return f"echo C={p['connections']} D={p['depth']} S={p['size']}"
        if self.kind == "broadcast":
            return f"broadcast C={p['connections']} S={p['size']}"
        return f"connect C={p['connections']}"


SCENARIOS = [
    Scenario("echo1", "echo", {"connections": 100, "depth": 1, "size": "32"}, {"connections": 10}),
    Scenario("echo16", "echo", {"connections": 100, "depth": 16, "size": "32"}, {"connections": 10}),
    Scenario("echo64k", "echo", {"connections": 10, "depth": 4, "size": "64KiB"}, {"connections": 2}),
    Scenario("broadcast", "broadcast", {"connections": 1000, "size": "64"}, {"connections": 20}),
    Scenario("connect", "connect", {"connections": 10000}, {"connections": 200}),
]


def threads2(reference: str) -> Scenario:
    """wscoro with 2 I/O threads on two cores, generator unpinned, against single-thread wscoro in
    `reference` (the same generator load, smoke sizes included)."""
    r = next(s for s in SCENARIOS if s.name == reference)
    return Scenario(f"{reference}-threads2", r.kind, r.params, r.smoke, reference=reference)


# At D=1 the generator costs about as much CPU per message as the server, so two cores shared with
# it cannot show scaling; at D=16 the generator is cheap per message, so that row shows whether two
# I/O threads scale when the cores are not taken by the generator.
THREADS_SCENARIOS = [threads2("echo1"), threads2("echo16")]


def threads2_cpus(server_cpu: str | None, generator_cpu: str | None) -> str | None:
    """Where the --threads 2 server runs: the single-thread server's and the generator's CPUs
    together, so that it has two cores (None, unpinned, when neither is pinned)."""
    return ",".join(c for c in (server_cpu, generator_cpu) if c) or None


ALL_NAMES = [s.name for s in SCENARIOS + THREADS_SCENARIOS]
SERVERS = ["wscoro", "raw-beast"]
GENERATORS = ["epoll", "wscoro"]  # preference order for echo and broadcast
GENERATOR_PATHS = {"epoll": "bench/epoll_gen/wscoro-bench-epoll", "wscoro": "bench/generator/wscoro-bench"}
GENERATOR_TARGETS = {"epoll": "wscoro_bench_epoll", "wscoro": "wscoro_bench_generator"}
GENERATOR_NAMES = {"epoll": "wscoro-bench-epoll", "wscoro": "wscoro-bench", None: "—"}

# What the table shows for each kind of scenario: (headline key, unit, higher is better).
HEADLINES = {
    "echo": [("msg_per_s", "msg/s", True)],
    "broadcast": [("deliveries_per_s", "deliveries/s", True)],
    "connect": [("handshakes_per_s", "handshakes/s", True), ("kb_per_connection", "KB/conn", False)],
}
CPU_KEYS = {
    "echo": ("server_cpu_us_per_msg", "msg"),
    "broadcast": ("server_cpu_us_per_delivery", "delivery"),
    "connect": ("server_cpu_us_per_handshake", "handshake"),  # when the generator reports it
}
LATENCY_KEYS = {"echo": "rtt_us", "broadcast": "latency_us"}
# The generator's own CPU time per unit (wscoro-bench-epoll reports it).
GEN_CPU_KEYS = {"echo": "generator_cpu_us_per_msg", "broadcast": "generator_cpu_us_per_delivery"}


@dataclass
class Variant:
    """One way of running a server: which binary, which threads, which cores."""

    key: str  # "wscoro", "raw-beast", "wscoro-t2"
    server: str  # "wscoro" or "raw-beast"
    threads: int | None  # wscoro --threads
    server_cpus: str | None  # taskset -c list, None = unpinned
    generator_cpus: str | None


@dataclass
class Run:
    scenario: str
    variant: str
    rep: int
    server_cmd: list[str]
    generator: str = "wscoro"  # which load generator: "epoll" or "wscoro"
    generator_cmd: list[str] = field(default_factory=list)
    url: str | None = None
    server_pid: int | None = None
    generator_exit: int | None = None
    server_exit: int | None = None
    elapsed_s: float = 0.0
    result: dict | None = None
    failure: str | None = None  # why this run does not count as clean
    server_log_tail: str | None = None
    generator_stderr_tail: str | None = None

    def ok(self) -> bool:
        return self.failure is None


class Interrupted(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Processes


def raise_nofile() -> None:
    """preexec_fn: 10 000 connections need more descriptors than the usual soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pinned(cpus: str | None, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Children:
    """Every process started, so that any way out (exception, Ctrl-C, SIGTERM) ends them."""

    def __init__(self) -> None:
        self.live: list[subprocess.Popen] = []

    def start(self, cmd: list[str], **kw) -> subprocess.Popen:
        # Own session: Ctrl-C reaches run.py only, which then stops the children in order.
        p = subprocess.Popen(cmd, preexec_fn=raise_nofile, start_new_session=True, **kw)
        self.live.append(p)
        return p

    def stop(self, p: subprocess.Popen, grace: float) -> tuple[int | None, bool]:
        """SIGTERM, then SIGKILL after `grace` seconds. Returns (exit code, had to kill)."""
        killed = False
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                killed = True
                p.kill()
                p.wait()
        if p in self.live:
            self.live.remove(p)
        return p.returncode, killed

    def kill_all(self) -> None:
        for p in list(self.live):
            self.stop(p, grace=2.0)


def wait_listening(server: subprocess.Popen, stdout_path: Path, timeout: float) -> str:
    """The ws:// URL from the server's first line, or raise RuntimeError."""
    deadline = time.monotonic() + timeout
    pattern = re.compile(r"listening on (wss?://\S+)")
    while True:
        try:
            text = stdout_path.read_text(errors="replace")
        except OSError:
            text = ""
        if (m := pattern.search(text)) is not None:
            return m.group(1)
        if server.poll() is not None:
            raise RuntimeError(f"server exited with code {server.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no 'listening on' line within {timeout:g} s")
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# One run


@dataclass
class Context:
    args: argparse.Namespace
    binaries: dict
    children: Children
    workdir: Path
    started: float
    total_runs: int
    done_runs: int = 0


def server_command(ctx: Context, v: Variant, mode: str) -> list[str]:
    if v.server == "wscoro":
        cmd = [str(ctx.binaries["wscoro"]), "serve", "--host", "127.0.0.1", "--port", "0",
               "--path", "/", "--mode", mode, "--threads", str(v.threads or 1),
               "--max-connections", "0"]
    else:
        cmd = [str(ctx.binaries["raw-beast"]), "--host", "127.0.0.1", "--port", "0", "--mode", mode]
    return pinned(v.server_cpus, cmd)


def generator_command(ctx: Context, s: Scenario, v: Variant, gen: str, url: str, pid: int) -> list[str]:
    a = ctx.args
    p = s.effective(a.smoke)
    cmd = [str(ctx.binaries[f"generator-{gen}"]), "--url", url, "--scenario", s.kind,
           "--connections", str(p["connections"])]
    if "depth" in p:
        cmd += ["--depth", str(p["depth"])]
    if "size" in p:
        cmd += ["--size", str(p["size"])]
    cmd += ["--warmup", f"{a.warmup:g}", "--duration", f"{a.duration:g}"]
    if a.window is not None and s.kind == "broadcast":
        cmd += ["--window", str(a.window)]
    if a.concurrency is not None and s.kind == "connect":
        cmd += ["--concurrency", str(a.concurrency)]
    cmd += ["--server-pid", str(pid)]
    if a.progress:
        cmd += ["--progress"]
    return pinned(v.generator_cpus, cmd)


def progress(ctx: Context, text: str) -> None:
    elapsed = time.monotonic() - ctx.started
    print(f"[{elapsed:6.1f}s] {text}", file=sys.stderr, flush=True)


def headline_text(kind: str, result: dict | None) -> str:
    if not result:
        return "no result"
    key, unit, _ = HEADLINES[kind][0]
    value = result.get(key)
    text = f"{fmt_value(value)} {unit}"
    cpu_key, per = CPU_KEYS[kind]
    if isinstance(result.get(cpu_key), (int, float)):
        text += f", server {result[cpu_key]:.2f} µs/{per}"
    if kind == "connect" and isinstance(result.get("kb_per_connection"), (int, float)):
        text += f", {result['kb_per_connection']:.1f} KB/conn"
    return text


def run_one(ctx: Context, s: Scenario, v: Variant, rep: int, gen: str) -> Run:
    a = ctx.args
    mode = "broadcast" if s.kind == "broadcast" else "echo"
    run = Run(scenario=s.name, variant=v.key, rep=rep, server_cmd=server_command(ctx, v, mode),
              generator=gen)
    ctx.done_runs += 1
    what = f"{s.name} · {v.key} · {gen} generator · rep {rep + 1}/{a.repeat}"
    progress(ctx, f"({ctx.done_runs}/{ctx.total_runs}) {what}: starting")
    stem = f"{s.name}.{v.key}.{gen}.{rep}"
    out_path, err_path = ctx.workdir / f"{stem}.server.out", ctx.workdir / f"{stem}.server.err"
    begin = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        server = ctx.children.start(run.server_cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    run.server_pid = server.pid  # taskset execs the server: same pid
    try:
        run.url = wait_listening(server, out_path, a.listen_timeout)
        run.generator_cmd = generator_command(ctx, s, v, gen, run.url, server.pid)
        limit = a.warmup + a.duration + a.generator_slack + (60 if s.kind == "connect" else 0)
        gen = ctx.children.start(run.generator_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=None if a.progress else subprocess.PIPE, text=True)
        try:
            stdout, stderr = gen.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            ctx.children.stop(gen, grace=2.0)
            stdout, stderr = gen.communicate()
            run.failure = f"generator did not finish within {limit:g} s"
        if gen in ctx.children.live:
            ctx.children.live.remove(gen)
        run.generator_exit = gen.returncode
        if stderr:
            run.generator_stderr_tail = "\n".join(stderr.splitlines()[-15:])
        try:
            run.result = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
        except json.JSONDecodeError:
            run.result = None
        if run.failure is None:
            if run.result is None:
                run.failure = f"generator printed no JSON (exit {gen.returncode})"
            elif run.result.get("errors") or run.result.get("verify_failures"):
                run.failure = (f"errors={run.result.get('errors')} "
                               f"verify_failures={run.result.get('verify_failures')}")
            elif gen.returncode != 0:
                run.failure = f"generator exit {gen.returncode}"
        if server.poll() is not None and run.failure is None:
            run.failure = f"server exited during the run (code {server.returncode})"
    except RuntimeError as e:
        run.failure = str(e)
    finally:
        code, killed = ctx.children.stop(server, grace=a.stop_timeout)
        run.server_exit = code
        run.elapsed_s = round(time.monotonic() - begin, 3)
        run.server_log_tail = tail(err_path) or None
    if killed and run.failure is None:
        run.failure = f"server ignored SIGTERM for {a.stop_timeout:g} s (killed)"
    elif code not in (0, None) and not killed and run.failure is None:
        run.failure = f"server exited with code {code} after SIGTERM"
    status = headline_text(s.kind, run.result) if run.ok() else f"FAILED: {run.failure}"
    progress(ctx, f"({ctx.done_runs}/{ctx.total_runs}) {what}: {run.elapsed_s:.1f}s, {status}")
    if not run.ok():
        for name, text in (("generator stderr", run.generator_stderr_tail),
                           ("server stderr", run.server_log_tail)):
            if text:
                print(f"    {name}:\n" + "\n".join("      " + l for l in text.splitlines()),
                      file=sys.stderr)
    return run


# ---------------------------------------------------------------------------------------------
# Summary


def fmt_value(v) -> str:
    if not isinstance(v, (int, float)):
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_pct(v) -> str:
    return f"{v:.0f}%" if isinstance(v, (int, float)) else "—"


def fmt_us(v) -> str:
    return f"{v:.2f}" if isinstance(v, (int, float)) else "—"


def median_of(runs: list[Run], key: str, sub: str | None = None):
    values = []
    for r in runs:
        if not r.ok() or not r.result:
            continue
        v = r.result.get(key)
        if sub is not None:
            v = v.get(sub) if isinstance(v, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            values.append(v)
    return statistics.median(values) if values else None


def generators_of(runs: list[Run], scenario: str) -> list[str]:
    """The generators that ran `scenario`, in GENERATORS order."""
    used = {r.generator for r in runs if r.scenario == scenario}
    return [g for g in GENERATORS if g in used]


def summarize(runs: list[Run], scenarios: list[Scenario], smoke: bool, servers: list[str]) -> dict:
    by = {}
    for r in runs:
        by.setdefault((r.scenario, r.variant, r.generator), []).append(r)
    rows, latency, threads = [], [], []
    for s in scenarios:
        if s.reference is not None:
            gens = generators_of(runs, s.name)
            if not gens:  # not run: no wscoro among --servers, or interrupted before it
                continue
            gen = gens[0]
            # Its own single-thread run, or the reference scenario's when plan() reused that.
            t1 = by.get((s.name, "wscoro-t1", gen)) or by.get((s.reference, "wscoro", gen), [])
            t2 = by.get((s.name, "wscoro-t2", gen), [])
            v1, v2 = median_of(t1, "msg_per_s"), median_of(t2, "msg_per_s")
            t = {
                "scenario": s.label(smoke), "reference": s.reference, "generator": gen,
                "t1_msg_per_s": v1, "t2_msg_per_s": v2,
                "ratio": v2 / v1 if v1 and v2 else None,
                "t1_cpu_us": median_of(t1, "server_cpu_us_per_msg"),
                "t2_cpu_us": median_of(t2, "server_cpu_us_per_msg"),
                "t1_gen_pct": median_of(t1, "generator_cpu_pct"),
                "t2_gen_pct": median_of(t2, "generator_cpu_pct"),
                "t1_gen_us": median_of(t1, "generator_cpu_us_per_msg"),
                "failed": sum(not r.ok() for r in t1 + t2), "runs": len(t1) + len(t2),
            }
            # What two cores allow at all: the server and the generator share them, so each message
            # costs both their CPU times (single-thread figures: the cheapest the server gets).
            cost = (t["t1_cpu_us"] or 0) + (t["t1_gen_us"] or 0)
            t["ceiling_msg_per_s"] = 2e6 / cost if t["t1_cpu_us"] and t["t1_gen_us"] else None
            t["ceiling_ratio"] = t["ceiling_msg_per_s"] / v1 if t["ceiling_msg_per_s"] and v1 else None
            threads.append(t)
            continue
        for gen in generators_of(runs, s.name):
            per = {srv: by.get((s.name, srv, gen), []) for srv in servers}
            cpu_key, per_unit = CPU_KEYS[s.kind]
            gen_key = GEN_CPU_KEYS.get(s.kind, "")
            for key, unit, higher in HEADLINES[s.kind]:
                values = {srv: median_of(per[srv], key) for srv in servers}
                w, b = values.get("wscoro"), values.get("raw-beast")
                row = {
                    "scenario": s.name, "label": s.label(smoke), "kind": s.kind, "generator": gen,
                    "metric": key, "unit": unit, "higher_is_better": higher, "values": values,
                    "ratio": w / b if isinstance(w, (int, float)) and b else None,
                    "cpu_key": cpu_key, "cpu_unit": per_unit,
                    "cpu_us": {srv: median_of(per[srv], cpu_key) for srv in servers},
                    "generator_cpu_pct": {srv: median_of(per[srv], "generator_cpu_pct") for srv in servers},
                    "generator_cpu_us": {srv: median_of(per[srv], gen_key) for srv in servers},
                    "server_cpu_pct": {srv: median_of(per[srv], "server_cpu_pct") for srv in servers},
                    # wscoro-bench-epoll: share of the window spent ready to run but without a CPU
                    "server_wait_pct": {srv: median_of(per[srv], "server_run_queue_wait_pct")
                                        for srv in servers},
                    "generator_wait_pct": {srv: median_of(per[srv], "generator_run_queue_wait_pct")
                                           for srv in servers},
                    "failed": {srv: sum(not r.ok() for r in per[srv]) for srv in servers},
                    "runs": {srv: len(per[srv]) for srv in servers},
                }
                rows.append(row)
            if s.kind not in LATENCY_KEYS:
                continue
            lk = LATENCY_KEYS[s.kind]
            latency.append({
                "label": s.label(smoke), "generator": gen, "key": lk,
                "p50": {srv: median_of(per[srv], lk, "p50") for srv in servers},
                "p99": {srv: median_of(per[srv], lk, "p99") for srv in servers},
            })
    return {"rows": rows, "latency": latency, "threads": threads}


def machine_info() -> dict:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = None
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        git = rev + ("+dirty" if dirty else "") if rev else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": model or platform.processor() or "unknown",
        "nproc": os.cpu_count(),
        "kernel": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git,
        "python": platform.python_version(),
        "loadavg_at_start": round(os.getloadavg()[0], 2),
    }


def markdown(summary: dict, machine: dict, command: str, settings: dict, servers: list[str]) -> str:
    out = []
    out.append(f"Machine: {machine['cpu']}, {machine['nproc']} CPUs, {machine['kernel']}; "
               f"{machine['date']}; wscoro {machine['git'] or '?'}; "
               f"load average {machine['loadavg_at_start']:g} at start")
    out.append(f"Command: `{command}`")
    pin = (f"server on CPU {settings['server_cpu']}, generator on CPU {settings['generator_cpu']}"
           if settings["server_cpu"] else "unpinned")
    out.append(f"Settings: warmup {settings['warmup']:g} s, duration {settings['duration']:g} s, "
               f"{settings['repeat']} repetition(s) (median), wscoro --threads {settings['threads']}, "
               f"{pin}{', SMOKE sizes' if settings['smoke'] else ''}")
    gens = ", ".join(GENERATOR_NAMES[g] for g in settings["generators"])
    out.append(f"Generators: {gens} for echo and broadcast; wscoro-bench for connect")
    out.append("")
    head = ["scenario", "generator", "metric"] + servers
    if len(servers) == 2:
        head.append("wscoro/raw")
    head += [f"server µs/unit {srv}" for srv in servers]
    head += [f"gen CPU {srv}" for srv in servers]
    head.append("notes")
    out.append("| " + " | ".join(head) + " |")
    aligns = ["---" if i < 3 or i == len(head) - 1 else "---:" for i in range(len(head))]
    out.append("|" + "|".join(aligns) + "|")
    for row in summary["rows"]:
        notes = []
        cells = [row["label"], GENERATOR_NAMES[row["generator"]],
                 f"{row['unit']}" + ("" if row["higher_is_better"] else " (lower is better)")]
        cells += [fmt_value(row["values"][srv]) for srv in servers]
        if len(servers) == 2:
            ratio = row["ratio"]
            cells.append(f"{ratio:.2f}x" if ratio else "—")
        per = row["cpu_unit"]
        for srv in servers:
            us = row["cpu_us"][srv]
            cells.append(f"{fmt_us(us)} /{per}" if isinstance(us, (int, float)) else "—")
        for srv in servers:
            g = row["generator_cpu_pct"][srv]
            cell = fmt_pct(g)
            if isinstance(row["generator_cpu_us"][srv], (int, float)):
                cell += f" ({row['generator_cpu_us'][srv]:.2f} µs/{per})"
            if isinstance(g, (int, float)) and g > GENERATOR_BOUND_PCT:
                cell += " generator-bound"
            cells.append(cell)
        unsaturated = [srv for srv in servers
                       if all(isinstance(p, (int, float)) and p < UNSATURATED_PCT
                              for p in (row["server_cpu_pct"][srv], row["generator_cpu_pct"][srv]))]
        if unsaturated:
            busy = ", ".join(f"{srv} server {fmt_pct(row['server_cpu_pct'][srv])}" for srv in unsaturated)
            notes.append(f"neither core saturated ({busy}): wake-up latency or a busy machine")
        waited = [f"{srv} server {fmt_pct(row['server_wait_pct'][srv])}, generator "
                  f"{fmt_pct(row['generator_wait_pct'][srv])}" for srv in servers
                  if any(isinstance(w, (int, float)) and w > BUSY_MACHINE_PCT
                         for w in (row["server_wait_pct"][srv], row["generator_wait_pct"][srv]))]
        if waited:
            notes.append(f"busy machine: ready but waiting for a CPU ({'; '.join(waited)} of the window)")
        for srv in servers:
            if row["failed"][srv]:
                notes.append(f"{srv}: {row['failed'][srv]}/{row['runs'][srv]} runs FAILED")
        cells.append("; ".join(notes))
        out.append("| " + " | ".join(cells) + " |")
    # The generator measures echo round trips only with one message in flight per connection.
    latency = [l for l in summary["latency"]
               if any(l[q][srv] is not None for q in ("p50", "p99") for srv in servers)]
    if latency:
        out.append("")
        out.append("Latency (µs; echo: round trip, broadcast: publish to delivery), median over repetitions:")
        out.append("")
        lh = ["scenario", "generator"] + [f"{srv} p50" for srv in servers] + [f"{srv} p99" for srv in servers]
        out.append("| " + " | ".join(lh) + " |")
        out.append("|---|---|" + "|".join("---:" for _ in lh[2:]) + "|")
        for l in latency:
            cells = [l["label"], GENERATOR_NAMES[l["generator"]]] + [fmt_value(l["p50"][srv]) for srv in servers]
            cells += [fmt_value(l["p99"][srv]) for srv in servers]
            out.append("| " + " | ".join(cells) + " |")
    if summary["threads"]:
        both = threads2_cpus(settings["server_cpu"], settings["generator_cpu"])
        where = (f"the server on CPUs {both} and the generator unpinned" if both
                 else "server and generator unpinned")
        out.append("")
        out.append("Threads: wscoro --threads 1 placed as above (the first table's wscoro run when that is "
                   f"at --threads 1) vs --threads 2 with {where}:")
        out.append("")
        th = ["scenario", "generator", "1 thread msg/s", "2 threads msg/s", "ratio 2/1",
              "server µs/msg 1 / 2", "gen CPU 1 / 2", "two-core ceiling", "notes"]
        out.append("| " + " | ".join(th) + " |")
        out.append("|---|---|" + "|".join("---:" for _ in th[2:-1]) + "|---|")
        for t in summary["threads"]:
            gen_cells = []
            for pct, us in ((t["t1_gen_pct"], t["t1_gen_us"]), (t["t2_gen_pct"], None)):
                cell = fmt_pct(pct)
                if isinstance(us, (int, float)):
                    cell += f" ({us:.2f} µs/msg)"
                if isinstance(pct, (int, float)) and pct > GENERATOR_BOUND_PCT:
                    cell += " generator-bound"
                gen_cells.append(cell)
            ceiling = (f"{fmt_value(t['ceiling_msg_per_s'])} ({t['ceiling_ratio']:.2f}x)"
                       if t["ceiling_msg_per_s"] and t["ceiling_ratio"] else "—")
            cells = [t["scenario"], GENERATOR_NAMES.get(t["generator"], "?"),
                     fmt_value(t["t1_msg_per_s"]), fmt_value(t["t2_msg_per_s"]),
                     f"{t['ratio']:.2f}x" if t["ratio"] else "—",
                     f"{fmt_us(t['t1_cpu_us'])} / {fmt_us(t['t2_cpu_us'])}",
                     " / ".join(gen_cells), ceiling,
                     f"{t['failed']}/{t['runs']} runs FAILED" if t["failed"] else ""]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
        out.append("ratio 2/1: msg/s with 2 threads over 1 thread. gen CPU: the generator's share of a "
                   "core (and, at 1 thread, its CPU time per message). Two-core ceiling: 2 CPU-seconds "
                   "per second divided by the CPU one message costs the single-thread server plus the "
                   "generator, and in parentheses that over 1 thread: no server can go faster on two "
                   "cores with this generator beside it, so a ceiling near 1x leaves nothing to show.")
    out.append("")
    out.append("Ratios: wscoro / raw-beast; higher is better except KB/conn. server µs/unit = server CPU "
               "time (user+system) per message, delivery or handshake in the measured window. "
               f"generator-bound: the generator used > {GENERATOR_BOUND_PCT:.0f}% of its core, so the "
               "rate is a floor for the server. gen CPU: the generator's share of its core (and, for "
               "wscoro-bench-epoll, its CPU time per unit).")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# SVG chart (hand-written: no plotting library on the machine)


def nice_step(span: float) -> float:
    for step in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100):
        if span / step <= 8:
            return step
    return span / 5


def svg_chart(summary: dict, machine: dict, settings: dict) -> str:
    groups = [r for r in summary["rows"] if r["ratio"]]
    esc = html.escape
    group_w, bar_w, gap = 150, 46, 8
    left, right, top, bottom = 70, 30, 90, 110
    plot_h = 300
    width = left + right + max(1, len(groups)) * group_w
    height = top + plot_h + bottom
    ymax = max([1.0] + [g["ratio"] for g in groups]) * 1.18
    step = nice_step(ymax)
    y = lambda v: top + plot_h - v / ymax * plot_h  # noqa: E731
    colours = {"wscoro": "#1f6fb4", "raw-beast": "#9a9a9a"}
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{left}" y="28" font-size="18" font-weight="bold">wscoro vs raw Boost.Beast '
         f'(raw-beast = 1.0)</text>',
         f'<text x="{left}" y="50" font-size="12" fill="#444">Higher is better, except KB per connection. '
         f'{esc(machine["cpu"])}, {machine["nproc"]} CPUs, {esc(machine["date"])}, wscoro '
         f'{esc(machine["git"] or "?")}</text>',
         f'<text x="{left}" y="68" font-size="12" fill="#444">{settings["repeat"]} repetition(s), median; '
         f'server on CPU {esc(str(settings["server_cpu"]))}, generator on CPU '
         f'{esc(str(settings["generator_cpu"]))}; wscoro --threads {settings["threads"]}'
         f'{"; SMOKE sizes" if settings["smoke"] else ""}</text>']
    # Grid and axis.
    v = 0.0
    while v <= ymax + 1e-9:
        yy = y(v)
        s.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" stroke="#e6e6e6"/>')
        s.append(f'<text x="{left - 8}" y="{yy + 4:.1f}" font-size="12" text-anchor="end">{v:g}</text>')
        v += step
    s.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>')
    s.append(f'<text x="18" y="{top + plot_h / 2}" font-size="12" text-anchor="middle" '
             f'transform="rotate(-90 18 {top + plot_h / 2})">relative to raw-beast</text>')
    labels = []  # drawn last, with a white halo, so the reference line never hides them
    for i, g in enumerate(groups):
        x0 = left + i * group_w + (group_w - 2 * bar_w - gap) / 2
        for j, (srv, value) in enumerate((("wscoro", g["ratio"]), ("raw-beast", 1.0))):
            x = x0 + j * (bar_w + gap)
            s.append(f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{bar_w}" height="{y(0) - y(value):.1f}" '
                     f'fill="{colours[srv]}"><title>{srv}: {fmt_value(g["values"][srv])} {esc(g["unit"])}'
                     f'</title></rect>')
            label = f"{value:.2f}x" if srv == "wscoro" else "1.0"
            weight = ' font-weight="bold"' if srv == "wscoro" else ""
            labels.append(f'<text x="{x + bar_w / 2:.1f}" y="{y(value) - 5:.1f}" font-size="12" '
                          f'text-anchor="middle"{weight} stroke="white" stroke-width="3" '
                          f'paint-order="stroke">{label}</text>')
        cx = left + i * group_w + group_w / 2
        kind, _, params = g["label"].partition(" ")
        lines = [(kind, 13, ' font-weight="bold"'), (params, 11, ""),
                 (g["unit"] + ("" if g["higher_is_better"] else " (lower better)"), 11, ""),
                 (f"raw {fmt_value(g['values']['raw-beast'])}", 10, ' fill="#555"'),
                 (f"wscoro {fmt_value(g['values']['wscoro'])}", 10, ' fill="#555"'),
                 (f"by {GENERATOR_NAMES[g['generator']]}", 10, ' fill="#555"')]
        for k, (text, size, extra) in enumerate(lines):
            s.append(f'<text x="{cx:.1f}" y="{top + plot_h + 18 + k * 15}" font-size="{size}" '
                     f'text-anchor="middle"{extra}>{esc(text)}</text>')
    # The reference line at 1.0, over the bars and under the labels.
    s.append(f'<line x1="{left}" y1="{y(1.0):.1f}" x2="{width - right}" y2="{y(1.0):.1f}" '
             f'stroke="#c0392b" stroke-width="1.5" stroke-dasharray="6 4"/>')
    s.append(f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="#333"/>')
    s.extend(labels)
    # Legend.
    lx = width - right - 190
    for j, srv in enumerate(("wscoro", "raw-beast")):
        s.append(f'<rect x="{lx + j * 95}" y="74" width="12" height="12" fill="{colours[srv]}"/>')
        s.append(f'<text x="{lx + j * 95 + 17}" y="84" font-size="12">{srv}</text>')
    if not groups:
        s.append(f'<text x="{left + 10}" y="{top + 40}" font-size="14">no scenario with both servers</text>')
    s.append("</svg>")
    return "\n".join(s) + "\n"


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Run the wscoro benchmark matrix against a plain Boost.Beast server.",
        epilog=f"scenarios: {', '.join(ALL_NAMES)}")
    p.add_argument("--build", default="build/release",
                   help="build directory, relative to the repository root (default: %(default)s)")
    p.add_argument("--generator", choices=GENERATORS,
                   help="load generator for echo and broadcast: epoll = wscoro-bench-epoll (raw epoll, "
                        "the cheaper one), wscoro = wscoro-bench (built on wscoro); connect always uses "
                        "wscoro-bench (default: epoll if built, else wscoro; --smoke: both)")
    p.add_argument("--epoll-bench", help="wscoro-bench-epoll binary (default: BUILD/" + GENERATOR_PATHS["epoll"] + ")")
    p.add_argument("--wscoro-bench", help="wscoro-bench binary (default: BUILD/" + GENERATOR_PATHS["wscoro"] + ")")
    p.add_argument("--warmup", type=float, help="seconds before the measured window (default 2; smoke 0.2)")
    p.add_argument("--duration", type=float, help="seconds measured (default 8; smoke 0.5)")
    p.add_argument("--only", help=f"comma-separated scenarios (default: all of {','.join(ALL_NAMES)})")
    p.add_argument("--servers", default=",".join(SERVERS), help="comma-separated: wscoro,raw-beast")
    p.add_argument("--repeat", type=int, default=1, help="repetitions, servers alternating; median reported")
    p.add_argument("--threads", type=int, default=1, help="wscoro --threads (default: %(default)s)")
    p.add_argument("--server-cpu", default="0", help="taskset -c list for servers; 'none' = unpinned")
    p.add_argument("--generator-cpu", default="1", help="taskset -c list for the generator; 'none' = unpinned")
    p.add_argument("--window", type=int, help="broadcast: the generator's --window")
    p.add_argument("--concurrency", type=int, help="connect: the generator's --concurrency")
    p.add_argument("--json", type=Path, help="write every raw generator report and the summary here")
    p.add_argument("--svg", type=Path, help="write a bar chart (wscoro relative to raw-beast) here")
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes and durations: checks that everything runs and verifies")
    p.add_argument("--progress", action="store_true", help="pass --progress to the generator (stderr)")
    p.add_argument("--listen-timeout", type=float, default=10.0, help="seconds to wait for 'listening on'")
    p.add_argument("--stop-timeout", type=float, default=10.0, help="seconds after SIGTERM before SIGKILL")
    p.add_argument("--generator-slack", type=float, default=60.0,
                   help="seconds beyond warmup+duration before the generator is killed")
    a = p.parse_args(argv)
    if a.warmup is None:
        a.warmup = 0.2 if a.smoke else 2.0
    if a.duration is None:
        a.duration = 0.5 if a.smoke else 8.0
    a.scenarios = ALL_NAMES if not a.only else [n.strip() for n in a.only.split(",") if n.strip()]
    if unknown := [n for n in a.scenarios if n not in ALL_NAMES]:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(ALL_NAMES)}")
    a.server_list = [n.strip() for n in a.servers.split(",") if n.strip()]
    if not a.server_list or any(n not in SERVERS for n in a.server_list):
        p.error(f"--servers: known servers are {', '.join(SERVERS)}")
    a.server_list = [n for n in SERVERS if n in a.server_list]  # fixed column order
    if a.repeat < 1 or a.threads < 1:
        p.error("--repeat and --threads must be at least 1")
    a.server_cpu = None if a.server_cpu.lower() == "none" else a.server_cpu
    a.generator_cpu = None if a.generator_cpu.lower() == "none" else a.generator_cpu
    return a


def cpu_set(spec: str) -> set[int]:
    cpus = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def plan(a: argparse.Namespace, generators: list[str]) -> list[tuple[Scenario, Variant, int, str]]:
    """Every run: (scenario, server variant, repetition, generator). `generators` serve echo and
    broadcast (the first also the threads scenarios); connect always runs with wscoro-bench."""
    variants = {
        "wscoro": Variant("wscoro", "wscoro", a.threads, a.server_cpu, a.generator_cpu),
        "raw-beast": Variant("raw-beast", "raw-beast", None, a.server_cpu, a.generator_cpu),
    }
    both = threads2_cpus(a.server_cpu, a.generator_cpu)
    jobs = []
    for s in SCENARIOS + THREADS_SCENARIOS:  # references first: their runs may be reused
        if s.name not in a.scenarios:
            continue
        if s.reference is not None:
            if "wscoro" not in a.server_list:
                continue
            # The single-thread reference is the reference scenario's wscoro run when this
            # invocation makes one (wscoro is among the servers here).
            reuse = s.reference in a.scenarios and a.threads == 1
            order = [] if reuse else [Variant("wscoro-t1", "wscoro", 1, a.server_cpu, a.generator_cpu)]
            order.append(Variant("wscoro-t2", "wscoro", 2, both, None))
            for rep in range(a.repeat):
                for v in (order if rep % 2 == 0 else order[::-1]):
                    jobs.append((s, v, rep, generators[0]))
            continue
        gens = ["wscoro"] if s.kind == "connect" else generators
        for rep in range(a.repeat):
            for gen in gens:
                order = [variants[n] for n in a.server_list]
                for v in (order if rep % 2 == 0 else order[::-1]):
                    jobs.append((s, v, rep, gen))
    return jobs


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    build = (REPO / a.build).resolve() if not Path(a.build).is_absolute() else Path(a.build)
    overrides = {"epoll": a.epoll_bench, "wscoro": a.wscoro_bench}
    binaries = {
        "wscoro": build / "apps/wscoro/wscoro",
        "raw-beast": build / "bench/raw_beast/raw-beast-server",
        **{f"generator-{g}": Path(overrides[g]).resolve() if overrides[g] else build / GENERATOR_PATHS[g]
           for g in GENERATORS},
    }
    if a.generator:
        generators = [a.generator]
    elif a.smoke:  # the smoke test keeps both generators from rotting
        generators = list(GENERATORS)
    elif os.access(binaries["generator-epoll"], os.X_OK):
        generators = ["epoll"]
    else:
        generators = ["wscoro"]
        print(f"run.py: {binaries['generator-epoll']} is not built (target {GENERATOR_TARGETS['epoll']}); "
              "echo and broadcast use wscoro-bench, which may be the bottleneck", file=sys.stderr)
    jobs = plan(a, generators)
    needed = {f"generator-{g}" for *_, g in jobs} | {v.server for _, v, _, _ in jobs}
    missing = [f"{k}: {binaries[k]}" for k in sorted(needed) if not os.access(binaries[k], os.X_OK)]
    if missing:
        targets = "wscoro_cli wscoro_bench_raw_beast " + " ".join(GENERATOR_TARGETS[g] for g in GENERATORS)
        print(f"run.py: missing binaries (build them: cmake --build {shlex.quote(str(build))} "
              f"--target {targets}):\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    available = os.sched_getaffinity(0)
    for opt, spec in (("--server-cpu", a.server_cpu), ("--generator-cpu", a.generator_cpu)):
        if spec is None:
            continue
        try:
            wanted = cpu_set(spec)
        except ValueError:
            print(f"run.py: {opt} {spec}: expected a CPU list such as 0 or 0-1", file=sys.stderr)
            return 2
        if not wanted <= available:
            print(f"run.py: {opt} {spec}: not among this process's CPUs {sorted(available)}; "
                  "pass 'none' to run unpinned", file=sys.stderr)
            return 2
    if (a.server_cpu or a.generator_cpu) and not shutil.which("taskset"):
        print("run.py: taskset (util-linux) is needed for pinning; or pass --server-cpu none "
              "--generator-cpu none", file=sys.stderr)
        return 2

    command = shlex.join(["python3", os.path.relpath(__file__)] + argv)
    machine = machine_info()
    settings = {"warmup": a.warmup, "duration": a.duration, "repeat": a.repeat, "threads": a.threads,
                "server_cpu": a.server_cpu, "generator_cpu": a.generator_cpu, "smoke": a.smoke,
                "servers": a.server_list, "scenarios": a.scenarios, "build": str(build),
                "window": a.window, "concurrency": a.concurrency, "generators": generators,
                "connect_generator": "wscoro"}
    children = Children()

    def on_sigterm(signum, frame):  # noqa: ARG001 -- end like Ctrl-C: stop the children first
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_sigterm)
    runs: list[Run] = []
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="wscoro-bench-") as workdir:
        ctx = Context(a, binaries, children, Path(workdir), time.monotonic(), len(jobs))
        progress(ctx, f"{len(jobs)} runs, about {len(jobs) * (a.warmup + a.duration + 1):.0f} s or more")
        try:
            for s, v, rep, gen in jobs:
                runs.append(run_one(ctx, s, v, rep, gen))
        except (KeyboardInterrupt, Interrupted):
            interrupted = True
            print("\nrun.py: interrupted; stopping the processes it started", file=sys.stderr)
        finally:
            children.kill_all()

    scenarios = [s for s in SCENARIOS + THREADS_SCENARIOS if s.name in a.scenarios]
    summary = summarize(runs, scenarios, a.smoke, a.server_list)
    sys.stdout.write(markdown(summary, machine, command, settings, a.server_list))
    failed = [r for r in runs if not r.ok()]
    if failed:
        print(f"\n{len(failed)} of {len(runs)} runs FAILED:", file=sys.stderr)
        for r in failed:
            print(f"  {r.scenario} · {r.variant} · {r.generator} generator · rep {r.rep + 1}: {r.failure}",
                  file=sys.stderr)
    if a.json:
        doc = {"machine": machine, "command": command, "settings": settings, "summary": summary,
               "runs": [r.__dict__ for r in runs], "interrupted": interrupted}
        a.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {a.json}", file=sys.stderr)
    if a.svg:
        if len(a.server_list) == 2:
            a.svg.write_text(svg_chart(summary, machine, settings))
            print(f"wrote {a.svg}", file=sys.stderr)
        else:
            print("run.py: --svg needs both servers; no chart written", file=sys.stderr)
    if interrupted:
        return 130
    return 1 if failed or not runs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
