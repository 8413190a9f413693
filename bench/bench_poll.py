#!/usr/bin/env python3
"""Poll latency under load: real backup jobs running, gunicorn on loopback as the Procfile starts it, and many
signed-in clients polling what the pages poll, once a second each. Goal: p99 <= 20 ms per kind of poll.

    .venv/bin/python bench/bench_poll.py [--jobs 50] [--clients 200] [--seconds 60] [--database-url URL]
    .ci/with-postgres.sh sh -c '.venv/bin/python bench/bench_poll.py --database-url "$STAGEBACKUP_TEST_PG_URL"'

The load, all real: one `flask worker run` process per job, each running a tar.gz backup (default level, one
compression thread) of a generated tree on a slow disk: the worker's reads of the source are paced to
--read-kib-s (tests/faults/inject.py's ``slow-read`` fault, loaded as the fault tests load it), so every job is
still running when the window ends (checked) without the 50 of them taking the CPU the server is measured
on; the workers heartbeat, report progress and write log lines into the same database the polls read. Each
client process signs in once (the sign-in form with its CSRF token) and its clients share that session
cookie; after loading its job's page and the backup page, each client, as the two open pages do, runs two
pollers every second: its job's card, which carries the log's cursor and brings the lines after it
(GET /backup/jobs/<id>/card?after=N), and the backup page's live poller (GET /backup/live?after=N&v=DIGEST).
Latency is measured client-side (aiohttp, asyncio) around each whole request; clients are spread over a few
processes so the client's own CPU does not queue the requests.
A PostgreSQL URL gets a fresh database of its own in that cluster, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import html
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import BENCH_DIR, REPO, cleanup, result, row, tree  # also puts the repository on sys.path

KINDS = ("card", "live")
GOAL_MS = 20.0
SETUP_TIMEOUT_S, POLL_TIMEOUT_S = 120.0, 10.0
USER, PASSWORD = "bench-viewer", "bench-poll-password-1"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
_LOG_AFTER = re.compile(r'id="log-cursor-\d+"[^>]*data-after="(\d+)"')
_LIVE_URL = re.compile(r'id="live-poller"[^>]*hx-get="([^"]+)"', re.S)


# --- the clients (run in child processes) -------------------------------------------------------------------

async def _get(session, url: str, timeout: float) -> tuple[int, str]:
    import aiohttp

    async with session.get(url, headers={"HX-Request": "true"}, timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
        return answer.status, await answer.text()


async def _sign_in(session) -> None:
    _status, page = await _get(session, "/sign-in", SETUP_TIMEOUT_S)
    token = _CSRF.search(page).group(1)
    form = {"name": USER, "password": PASSWORD, "csrf_token": token}
    async with session.post("/sign-in", data=form, allow_redirects=False) as answer:
        assert answer.status == 302, f"sign-in answered {answer.status}"


async def _poller(session, kind: str, url_of, on_answer, until: float, samples: list) -> None:
    """One htmx poller: a request every second (a late answer skips the ticks it missed, as htmx does)."""
    import random

    tick = time.monotonic() + random.random()  # pages opened at different moments
    while tick < until:
        await asyncio.sleep(max(0.0, tick - time.monotonic()))
        samples.append(("woke", (time.monotonic() - tick) * 1000, True))  # the client's own delay, not the server's
        started = time.perf_counter()
        try:
            status, text = await _get(session, url_of(), POLL_TIMEOUT_S)
            ms = (time.perf_counter() - started) * 1000
            ok = status in (200, 204) or f"HTTP {status}"
            if status == 200:
                on_answer(text)
        except Exception as exc:  # a refused or timed-out request is an error, not a crash of the bench
            ms, ok = (time.perf_counter() - started) * 1000, type(exc).__name__
        samples.append((kind, ms, ok))  # ok: True, or what went wrong
        tick += 1.0
        while tick < time.monotonic():
            tick += 1.0


def _session(base: str, cookies=None):
    """An aiohttp session of its own (its own keep-alive connections, as a browser tab has). aiohttp rather
    than httpx: at ~600 requests a second httpx's client CPU (about 2.9 ms a request, measured) took most of
    a core from the server it measured on this 2-core machine."""
    import aiohttp

    jar = aiohttp.CookieJar(unsafe=True)  # the server is 127.0.0.1: cookies for an IP address are "unsafe"
    if cookies is not None:
        jar.update_cookies(cookies)
    return aiohttp.ClientSession(base_url=base, cookie_jar=jar)


async def _client(base: str, cookies, job_id: int, start_at: float, seconds: float, samples: list, ready,
                  pages: str) -> None:
    async with _session(base, cookies) as session:
        async with ready:  # a few first page loads at a time, before the window
            job_page = (await _get(session, f"/backup/jobs/{job_id}", SETUP_TIMEOUT_S))[1]
            index = (await _get(session, "/backup", SETUP_TIMEOUT_S))[1]
        cursor = {"after": int(_LOG_AFTER.search(job_page).group(1)),
                  "live": html.unescape(_LIVE_URL.search(index).group(1))}

        def next_log(text: str) -> None:
            found = _LOG_AFTER.search(text)
            cursor["after"] = int(found.group(1)) if found else cursor["after"]

        def next_live(text: str) -> None:
            found = _LIVE_URL.search(text)
            cursor["live"] = html.unescape(found.group(1)) if found else cursor["live"]

        if time.time() > start_at:
            samples.append(("late", 0.0, False))  # ready after the window opened: said in the report
        await asyncio.sleep(max(0.0, start_at - time.time()))
        until = time.monotonic() + seconds
        pollers = [_poller(session, "card", lambda: f"/backup/jobs/{job_id}/card?after={cursor['after']}",
                           next_log, until, samples)]
        if pages == "both":
            pollers.append(_poller(session, "live", lambda: cursor["live"], next_live, until, samples))
        await asyncio.gather(*pollers)


def run_clients(args: tuple) -> tuple[list, float]:
    """One client process: its share of the clients; returns the samples and its CPU seconds."""
    base, job_ids, start_at, seconds, pages = args

    async def main() -> list:
        async with _session(base) as session:
            await _sign_in(session)  # once: a password check costs a deliberate fraction of a second
            cookies = {cookie.key: cookie.value for cookie in session.cookie_jar}
        samples: list = []
        ready = asyncio.Semaphore(5)
        await asyncio.gather(*(_client(base, cookies, job, start_at, seconds, samples, ready, pages)
                               for job in job_ids))
        return samples

    samples = asyncio.run(main())
    return samples, time.process_time()


# --- the server, the jobs and the workers ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_postgres_database(url: str) -> tuple[str, callable]:
    """A new database in the cluster ``url`` points at, and a function that drops it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bench_poll_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop


def set_up(jobs: int, source: Path, dest: Path) -> tuple[list[int], str]:
    """The viewer account, one project per job (level 9, into its own folder) and its queued job."""
    from stagebackup import create_app
    from stagebackup.auth import accounts
    from stagebackup.auth.roles import VIEWER
    from stagebackup.extensions import db
    from stagebackup.jobs import queue
    from stagebackup.models import Project

    app = create_app()
    with app.app_context():
        accounts.create(USER, VIEWER, PASSWORD, actor="cli:bench")
        db.session.commit()
        job_ids = []
        for i in range(jobs):
            (dest / f"{i:03d}").mkdir(parents=True)
            project = Project(name=f"poll-{i:03d}", sources=[str(source)], dest_path=str(dest / f"{i:03d}"),
                              verify_after_write=False)
            db.session.add(project)
            db.session.commit()
            job_ids.append(queue.enqueue(project, actor="cli:bench").id)
        dialect = db.engine.dialect.name
        db.engine.dispose()
    return job_ids, dialect


def count_status(job_ids: list[int], statuses: tuple[str, ...] = ("running",)) -> int:
    from sqlalchemy import func, select

    from stagebackup import create_app
    from stagebackup.extensions import db
    from stagebackup.models import Job

    app = create_app()
    with app.app_context():
        count = db.session.scalar(select(func.count()).where(Job.id.in_(job_ids), Job.status.in_(statuses)))
        db.engine.dispose()
    return count


def wait_for(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1.0)


def healthy(base: str) -> bool:
    import httpx

    try:
        return httpx.get(base + "/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def stop(procs: list[subprocess.Popen], grace_s: float = 30.0) -> None:
    """SIGTERM to all, one shared grace period, then SIGKILL: a starved worker may not get to exit."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (None: the process just ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children (gunicorn's workers), from a scan of /proc."""
    total = 0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        fields = _stat_fields(entry)
        if fields and (entry == str(pid) or fields[1] == str(pid)):  # fields[1]: the parent's pid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds(pid: int) -> float:
    """CPU time of one process and its waited-for children, from its /proc/PID/stat alone (cheap: 50 workers
    are read at both ends of the window, and a scan of /proc for each would be CPU taken inside it)."""
    fields = _stat_fields(pid)
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK") if fields else 0.0  # u/s time, children


def busy_seconds() -> float:
    """CPU seconds all cores spent on anything (not idle, not waiting for I/O), from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_in_window(measures: dict[str, callable], start_at: float, seconds: float
                  ) -> tuple[threading.Thread, dict[str, float]]:
    """CPU seconds each of ``measures`` spent inside the window, measured from a thread while the clients run.
    The server's per request is what one request costs whatever else the machine runs (the latencies depend on
    that, this does not); the workers' and the whole machine's say what else ran."""
    spent: dict[str, float] = {}

    def measure() -> None:
        time.sleep(max(0.0, start_at - time.time()))
        before = {name: read() for name, read in measures.items()}
        time.sleep(seconds)
        spent.update({name: read() - before[name] for name, read in measures.items()})

    thread = threading.Thread(target=measure, daemon=True)
    thread.start()
    return thread, spent


# --- the report -------------------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else float("nan")


def report(samples: list, label: str) -> list[dict]:
    rows = []
    print(f"{'poll':6s} {'requests':>9s} {'p50':>8s} {'p95':>8s} {'p99':>8s} {'max':>8s} {'errors':>7s}")
    for kind in KINDS:
        times = [ms for k, ms, _ok in samples if k == kind]
        if not times:
            continue  # the live poller, when only the job's page is open
        errors = sum(1 for k, _ms, ok in samples if k == kind and ok is not True)
        p99 = percentile(times, 99)
        print(f"{kind:6s} {len(times):9d} {statistics.median(times) if times else 0:7.1f}ms "
              f"{percentile(times, 95):7.1f}ms {p99:7.1f}ms {max(times, default=0):7.1f}ms {errors:7d}")
        rows.append(row(f"{kind} poll p99 ({label})", p99, goal=f"<= {GOAL_MS:g}", unit="ms"))
    errors = collections.Counter(f"{k}: {ok}" for k, _ms, ok in samples if ok is not True)
    if errors:
        print("errors: " + ", ".join(f"{what} x{n}" for what, n in sorted(errors.items())))
    errors = sum(errors.values())
    rows.append(row(f"poll errors ({label})", errors, goal="<= 0", unit="requests"))
    return rows


def server_side(access_log: Path) -> None:
    """How long gunicorn's threads took over each poll (its access log's %(D)s: from the request parsed to the
    answer sent), against the clients' figures above: the difference is time queued before a thread took it."""
    took: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for line in access_log.read_text().splitlines():
        path, _, micros = line.rpartition(" ")
        kind = "card" if path.endswith("/card") else "live" if path == "/backup/live" else None
        if kind:
            took[kind].append(int(micros) / 1000)
    for kind, times in took.items():
        if not times:
            continue
        print(f"{kind:6s} server-side p50 {percentile(times, 50):.1f} ms, p95 {percentile(times, 95):.1f} ms, "
              f"p99 {percentile(times, 99):.1f} ms, max {max(times, default=0):.1f} ms ({len(times)} requests)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=50, help="running jobs, one worker process each")
    parser.add_argument("--clients", type=int, default=200, help="clients, each polling one job's card (with its "
                        "log) and the live poller once a second")
    parser.add_argument("--pages", choices=("both", "job"), default="both", help="what each client has open: "
                        "its job's page and the backup page (two pollers), or only its job's page (its card, which "
                        "brings the log's lines: one poller)")
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    parser.add_argument("--client-procs", type=int, default=2, help="processes the clients are spread over")
    parser.add_argument("--source-mb", type=float, default=400.0, help="each job's source (one shared tree)")
    parser.add_argument("--read-kib-s", type=float, default=256.0, help="each worker's reads of the source, "
                        "paced (a slow disk): 400 MiB at 256 KiB/s lasts 26 minutes")
    parser.add_argument("--worker-nice", type=int, default=None, help="the job workers' STAGEBACKUP_WORKER_NICE "
                        "(default: StageBackup's own, 10)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn's processes (the Procfile's 2)")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn process (the Procfile's 4)")
    parser.add_argument("--database-url", default="", help="PostgreSQL cluster (default: SQLite in the data dir)")
    args = parser.parse_args()

    source = tree(400, args.source_mb)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-poll-", dir=BENCH_DIR))
    drop_database = None
    procs: list[subprocess.Popen] = []
    workers: list[subprocess.Popen] = []
    try:
        database_url = ""
        if args.database_url:
            database_url, drop_database = fresh_postgres_database(args.database_url)
        settings = {"DATA_DIR": str(work / "data"), "DATABASE_URL": database_url, "COMPRESS_THREADS": "1",
                    "SIGNIN_RATE_LIMIT": "1000 per minute"}  # each client process signs in from 127.0.0.1
        if args.worker_nice is not None:
            settings["WORKER_NICE"] = str(args.worker_nice)
        os.environ.update({f"STAGEBACKUP_{key}": value for key, value in settings.items() if value})
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        (work / "data").mkdir(parents=True)
        job_ids, dialect = set_up(args.jobs, source, work / "dest")

        logs = open(work / "processes.log", "wb")  # noqa: SIM115 (closed with the work directory)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        gunicorn = Path(sys.executable).with_name("gunicorn")
        procs.append(subprocess.Popen(  # as the Procfile's web process, in the bench's data directory
            [str(gunicorn), "--bind", f"127.0.0.1:{port}",
             "--workers", str(args.web_workers), "--threads", str(args.web_threads),
             "--graceful-timeout", "10", "--pythonpath", str(REPO),
             "--access-logfile", str(work / "access.log"), "--access-logformat", "%(U)s %(D)s", "wsgi:app"],
            cwd=work / "data", stdout=logs, stderr=subprocess.STDOUT))
        wait_for(lambda: healthy(base), "gunicorn", 300)  # first: 50 interpreters starting would starve it

        slow_disk = {"PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "faults" / "site"), os.environ["PYTHONPATH"]]),
                     "STAGEBACKUP_TEST_FAULT": f"slow-read:{source}:{args.read_kib_s * 1024:.0f}"}

        def worker() -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "flask", "--app", "stagebackup", "worker", "run"],
                                    env={**os.environ, **slow_disk}, stdout=logs, stderr=subprocess.STDOUT)

        workers = [worker() for _ in job_ids]

        def all_running() -> bool:
            for i, proc in enumerate(workers):  # one that died starting (a busy database) is replaced
                if proc.poll() is not None:
                    print(f"a worker exited with status {proc.returncode} before the window: restarted", flush=True)
                    workers[i] = worker()
            return count_status(job_ids, ("queued",)) == 0  # a job may fail starting: said below

        started = time.monotonic()
        wait_for(all_running, f"{len(job_ids)} started jobs", 900)
        running_before = count_status(job_ids)
        print(f"{dialect}: {running_before} of {len(job_ids)} jobs running {time.monotonic() - started:.0f} s after "
              f"gunicorn was up ({count_status(job_ids, ('failed',))} failed starting); "
              f"{args.clients} clients sign in ...", flush=True)

        shares = [[job_ids[i % len(job_ids)] for i in range(n, args.clients, args.client_procs)]
                  for n in range(args.client_procs)]
        start_at = time.time() + 20 + args.clients * 0.3  # first pages first, then all together
        load_before = os.getloadavg()
        measuring, spent = cpu_in_window({"server": lambda: cpu_seconds(procs[0].pid), "busy": busy_seconds,
                                          "workers": lambda: sum(own_cpu_seconds(proc.pid) for proc in workers)},
                                         start_at, args.seconds)
        with multiprocessing.get_context("spawn").Pool(args.client_procs) as pool:
            outcomes = pool.map(run_clients, [(base, share, start_at, args.seconds, args.pages) for share in shares])
        load_after = os.getloadavg()
        measuring.join(timeout=30)
        still_running = count_status(job_ids)
        samples = [sample for part, _cpu in outcomes for sample in part if sample[0] in KINDS]
        woke_late = [sample[1] for part, _cpu in outcomes for sample in part if sample[0] == "woke"]
        late = sum(1 for part, _cpu in outcomes for sample in part if sample[0] == "late")
        client_cpu = sum(cpu for _part, cpu in outcomes)
        label = f"{dialect}, {len(job_ids)} jobs, {args.clients} clients"
        label += ", job pages only" if args.pages == "job" else ""
        print(f"{label}, {args.seconds:g} s: {len(samples) / args.seconds:.0f} requests/s; jobs still running at "
              f"the end: {still_running} (at the start {running_before}) of {len(job_ids)}; "
              f"load average {load_before[0]:.1f} before, "
              f"{load_after[0]:.1f} after ({os.cpu_count()} cores); client CPU {client_cpu:.0f} s; "
              f"clients ready only after the window opened: {late}")
        if spent:
            per_request = spent["server"] / max(1, len(samples)) * 1000
            print(f"server CPU in the window: {spent['server']:.1f} s, {per_request:.2f} ms a request: "
                  f"{os.cpu_count()} free cores would serve about {os.cpu_count() * 1000 / per_request:.0f} "
                  f"requests/s; the job workers' CPU {spent['workers']:.1f} s; the machine's cores busy "
                  f"{spent['busy'] / args.seconds / os.cpu_count():.0%} of the window (every process)")
        rows = report(samples, label)
        server_side(work / "access.log")
        print(f"the clients' own delay (a poller waking after its tick): p50 {percentile(woke_late, 50):.1f} ms, "
              f"p99 {percentile(woke_late, 99):.1f} ms, max {max(woke_late, default=0):.1f} ms")
        logs.flush()
        failures = [line for line in (work / "processes.log").read_text(errors="replace").splitlines()
                    if "Error" in line or "Traceback" in line]
        print(f"server and worker log: {len(failures)} error lines" + "".join(f"\n  {x}" for x in failures[-5:]))
        if still_running != running_before:
            print("WARNING: some jobs ended inside the window (finished, or failed: see the log lines above)")
        result("poll", rows)
    except BaseException:
        log = work / "processes.log"
        if log.exists():
            print("last lines of the server and worker log:\n" + "\n".join(
                log.read_text(errors="replace").splitlines()[-15:]), flush=True)
        raise
    finally:
        stop(procs + workers)
        if drop_database:
            drop_database()
        cleanup(work)


if __name__ == "__main__":
    main()
