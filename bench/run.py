"""`make bench`: generate or reuse a directory, start the full server and the floor on gunicorn,
load both with wrk, interleaved, and write a markdown table.

The server runs with its whole security chain: a client certificate re-verified against a
registered community (the header a trusted proxy sets; here the proxy is loopback, trusted in
the `test` environment), an API key and an ES256 bearer token, every request audited. Both
servers get the same gunicorn settings and worker count.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg

from bench import cpu

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/bench"
CLIENT = "Benchmark client"
CLIENT_DNS = "bench-client.localhost"
ISSUER, AUDIENCE = "https://bench-issuer.localhost/", "https://localhost/fhir"
SCOPES = "system/*.cruds"


# What every process the benchmark starts runs with (this process's environment is left alone).
_env: dict[str, str] = {}


@dataclass
class Result:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    errors: int = 0
    # CPU ms per request by party (bench/cpu.py), one dict a round.
    cpu: list[dict[str, float]] = field(default_factory=list)


def main(argv: list[str] | None = None) -> Path:
    options = _arguments(argv)
    # Per database: the credentials are registered in it, so another database needs its own.
    work = Path(options.work) / options.database.rpartition("/")[2]
    work.mkdir(parents=True, exist_ok=True)
    _env.update(_django_env(options.database))
    _ensure_database(options.database)
    _django("migrate", "--noinput", "-v0")
    _ensure_directory(options.database, options.practitioners)
    headers = _credentials(work)
    queries = _queries(options)
    (work / "plan.json").write_text(json.dumps([q.path for q in queries]))
    results = _measure(options, work, queries, headers)
    report = _table(options, queries, results)
    Path(options.out).write_text(report)
    print(report)
    return Path(options.out)


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    )
    parser.add_argument("--practitioners", type=int, default=20_000)
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="per server")
    parser.add_argument("--queries", default="", help="comma-separated indexes; default all")
    parser.add_argument(
        "--baseline",
        default="",
        help="a checkout of another version (e.g. from git archive): served too, interleaved",
    )
    parser.add_argument(
        "--edge",
        choices=["none", "nginx"],
        default="none",
        help="nginx: load each target through deploy/nginx with mutual TLS and keep-alive",
    )
    parser.add_argument("--work", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "results.md"))
    return parser.parse_args(argv)


def _django_env(database: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database,
        "ENVIRONMENT": "test",
        "DEBUG": "false",
    }


def _django(*args: str, capture: bool = False) -> str:
    done = subprocess.run(  # noqa: S603 - fixed command
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        check=True,
        capture_output=capture,
        text=True,
        env=os.environ | _env,
    )
    return done.stdout or ""


def _ensure_database(url: str) -> None:
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not found:
            admin.execute(f'CREATE DATABASE "{name}"')


def _ensure_directory(url: str, practitioners: int) -> None:
    """Generate the directory unless practitioners are already there (then it is reused)."""
    with psycopg.connect(url) as connection:
        count = connection.execute(
            "SELECT count(*) FROM directory_resource WHERE resource_type = 'Practitioner'"
        ).fetchone()[0]
    if count == 0:
        _django("generatedirectory", "--practitioners", str(practitioners), "--no-reference-check")
    elif count < practitioners:
        print(f"reusing a directory of {count} practitioners (asked {practitioners})")


def _credentials(work: Path) -> dict[str, str]:
    """A community PKI, a registered client with certificate, API key and token (fresh each run)."""
    pki = work / "pki"
    if not (pki / "community" / "intermediate").exists():
        shutil.rmtree(pki, ignore_errors=True)
        _django(
            "pki_init_community", "--dir", str(pki / "community"), "--community", "bench",
            "--name", "Benchmark community", "--intermediate", "--register",
        )  # fmt: skip
        _django(
            "pki_issue_client", "--ca", str(pki / "community" / "intermediate"),
            "--out", str(pki / "client"), "--fqdn", CLIENT_DNS, "--organization", "Benchmark",
            "--register-client", CLIENT, "--scopes", SCOPES,
        )  # fmt: skip
        _django(
            "makejwtissuer", "--dir", str(work / "jwt"), "--issuer", ISSUER, "--audience", AUDIENCE
        )
    for ca in ("root", "intermediate"):
        _django("pki_publish_crl", "--ca", str(pki / "community" / ca), capture=True)
    api_key = _django("issuekey", CLIENT, capture=True).strip()
    token = _django(
        "minttoken", "--key", str(work / "jwt" / "issuer.key.pem"), "--issuer", ISSUER,
        "--audience", AUDIENCE, "--sub", "bench-client", "--scope", SCOPES,
    capture=True).strip()  # fmt: skip
    cert = (pki / "client" / f"{CLIENT_DNS}.pem").read_text()
    return {
        "X-SSL-Client-Cert": quote(cert, safe=""),
        "X-SSL-Client-Verify": "SUCCESS",
        "X-API-Key": api_key,
        "Authorization": f"Bearer {token}",
        "Accept": "application/fhir+json",
    }


def _queries(options) -> list:
    from bench.queries import query_set, sample_values

    with psycopg.connect(options.database) as connection:
        queries = query_set(sample_values(connection.cursor()))
    if options.queries:
        queries = [queries[int(i)] for i in options.queries.split(",")]
    return queries


def _server_env(work: Path, port: int, workers: int, log: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURITY_", "RATE_LIMIT_"))}
    env |= _env
    return env | {
        "SECURITY_TRUSTED_PROXIES": "127.0.0.1/32",
        "SECURITY_JWT_ISSUERS_FILE": str(work / "jwt" / "issuers.json"),
        # One client sends everything: per-client limits stay on, set above what it sends.
        "RATE_LIMIT_PER_MINUTE": "10000000",
        "RATE_LIMIT_BURST": "1000000",
        "RATE_LIMIT_CONCURRENT": "1000",
        "BENCH_PLAN": str(work / "plan.json"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_ACCESS_LOG": str(work / f"{log}.access.log"),
        "GUNICORN_ERROR_LOG": str(work / f"{log}.error.log"),
    }


def _start(app: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen:
    # gunicorn puts its working directory first on sys.path: a baseline checkout runs its code.
    command = [str(BIN / "gunicorn"), app, "--config", "deploy/gunicorn.conf.py"]
    return subprocess.Popen(command, cwd=cwd, env=env)  # noqa: S603 - fixed command


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _measure(options, work: Path, queries, headers) -> dict:
    targets = {"server": "config.wsgi", "floor": "bench.floor:application"}
    directories = {name: ROOT for name in targets}
    if options.baseline:
        targets["baseline"], directories["baseline"] = "config.wsgi", Path(options.baseline)
    ports = {name: _free_port() for name in targets}
    for log in work.glob("*.log"):  # gunicorn appends: each run starts with its own logs
        log.unlink()
    processes = [
        _start(app, _server_env(work, ports[name], options.workers, name), directories[name])
        for name, app in targets.items()
    ]
    edges: list = []
    try:
        for name in targets:
            _wait_until_serving(ports[name], processes)
        if options.edge == "nginx":
            from bench import edge

            direct_floor = ports["floor"]
            ports, edges = edge.start(work, work / "pki", ports, _django)
            # The floor without nginx too: what the two TLS hops and the client side cost.
            ports["floor-direct"] = direct_floor
            # nginx sets the certificate headers from the handshake, as in production.
            headers = {k: v for k, v in headers.items() if not k.startswith("X-SSL-")}
        roots = _roots(targets, processes, edges)
        return _interleaved(options, work, queries, headers, ports, roots)
    finally:
        if edges:
            edge.stop(edges)
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _roots(targets: dict, processes: list, edges: list) -> dict:
    """Each loaded port's processes, by target name, for the CPU accounting."""
    roots = {
        name: cpu.Roots(app=process.pid, edge=edges[i].pid if edges else None)
        for i, (name, process) in enumerate(zip(targets, processes, strict=True))
    }
    roots["floor-direct"] = cpu.Roots(app=roots["floor"].app)
    # The client-side nginx is the last one edge.start started.
    roots["client"] = edges[-1].pid if edges else None
    return roots


def _wait_until_serving(port: int, processes, seconds: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise SystemExit("a gunicorn exited; see its *.error.log under --work")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"nothing serving on port {port}")


def _interleaved(options, work: Path, queries, headers, ports, roots: dict) -> dict:
    """Every query, concurrency and target in turn, round after round, so that whatever else
    the machine does hits both servers alike."""
    concurrencies = [int(c) for c in options.concurrency.split(",")]
    results: dict = {}
    script = _post_script(work)
    for query in queries:  # one short warm-up each: connections, caches, prepared plans
        for port in ports.values():
            _wrk(port, query, headers, 1, 1, script)
    for _ in range(options.rounds):
        for query in queries:
            for concurrency in concurrencies:
                for name, port in ports.items():
                    before = _cpu_sample(roots, name, options.database)
                    run = _wrk(port, query, headers, concurrency, options.duration, script)
                    after = _cpu_sample(roots, name, options.database)
                    result = results.setdefault((query.name, concurrency, name), Result())
                    if before and after:
                        result.cpu.append(cpu.per_request(before, after, run["requests"]))
                    result.rps.append(run["rps"])
                    result.p50.append(run["p50"])
                    result.p99.append(run["p99"])
                    result.errors += run["errors"]
    return results


def _cpu_sample(roots: dict, name: str, database: str) -> cpu.Sample | None:
    if not cpu.available():
        return None
    return cpu.sample(roots[name], roots["client"], database.rpartition("/")[2])


def _post_script(work: Path) -> Path:
    from bench.queries import NEW_ORGANIZATION

    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(NEW_ORGANIZATION)}\n"
        'wrk.headers["Content-Type"] = "application/fhir+json"\n'
    )
    return script


def wrk_binary() -> str:
    """wrk, installed from the distribution's packages when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)  # noqa: S607
        return shutil.which("wrk") or "wrk"
    raise SystemExit("wrk is needed: install it (e.g. sudo apt-get install wrk)")


def _wrk(port, query, headers, concurrency: int, seconds: int, script: Path) -> dict:
    command = [wrk_binary(), "--latency", "-t", str(min(concurrency, 2)), "-c", str(concurrency)]
    command += ["-d", f"{seconds}s", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if query.method == "POST":
        command += ["-s", str(script)]
    command.append(f"http://127.0.0.1:{port}/fhir/{quote(query.path, safe='/?=&:|,')}")
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    return parse_wrk(done.stdout)


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict:
    """Requests/s, p50 and p99 in ms and the failed requests from `wrk --latency` output."""

    def latency(percent: str) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        return float(found[1]) * UNITS[found[2]] if found else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    requests = re.search(r"^\s*(\d+) requests in", output, re.M)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx[1]) if non_2xx else 0
    errors += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return {
        "rps": float(rps[1]) if rps else 0.0,
        "requests": int(requests[1]) if requests else 0,
        "p50": latency(50),
        "p99": latency(99),
        "errors": errors,
    }


def _edge_note(options) -> str:
    if options.edge == "nginx":
        return "through nginx (deploy/nginx, mutual TLS, keep-alive) from a client-side nginx; "
    return "wrk straight to gunicorn, the certificate in the header a proxy would set; "


def _table(options, queries, results: dict) -> str:
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        f"{options.practitioners:,} practitioners asked; {options.rounds} rounds of "
        f"{options.duration} s per run, interleaved; {options.workers} gunicorn workers each; "
        f"{_edge_note(options)}"
        f"{os.cpu_count()} cores, load average at the end {load} (1/5/15 min).",
        "Medians over the rounds; p50/p99 in ms; share = server/floor req/s; failed = non-2xx"
        " responses and socket errors.",
        "",
        "| query | c | server req/s | p50 | p99 | floor req/s | p50 | p99 | share | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if options.baseline:
        lines[3] += " baseline req/s | server/baseline |"
        lines[4] += "---:|---:|"
    if options.edge == "nginx":
        lines[3] += " floor without nginx req/s | floor through/without |"
        lines[4] += "---:|---:|"
    for query in queries:
        for concurrency in [int(c) for c in options.concurrency.split(",")]:
            server = results[(query.name, concurrency, "server")]
            floor = results[(query.name, concurrency, "floor")]
            s_rps, f_rps = statistics.median(server.rps), statistics.median(floor.rps)
            share = s_rps / f_rps if f_rps else float("nan")
            p50, p99 = statistics.median(server.p50), statistics.median(server.p99)
            f50, f99 = statistics.median(floor.p50), statistics.median(floor.p99)
            lines.append(
                f"| {query.name} | {concurrency} | {s_rps:,.0f} | {p50:.1f} | {p99:.1f}"
                f" | {f_rps:,.0f} | {f50:.1f} | {f99:.1f} | {share:.2f}"
                f" | {server.errors + floor.errors} |"
            )
            baseline = results.get((query.name, concurrency, "baseline"))
            if baseline:
                b_rps = statistics.median(baseline.rps)
                lines[-1] += f" {b_rps:,.0f} | {s_rps / b_rps if b_rps else float('nan'):.2f} |"
            direct = results.get((query.name, concurrency, "floor-direct"))
            if direct:
                d_rps = statistics.median(direct.rps)
                lines[-1] += f" {d_rps:,.0f} | {f_rps / d_rps if d_rps else float('nan'):.2f} |"
    return "\n".join(lines + _cpu_table(options, queries, results)) + "\n"


def _cpu_table(options, queries, results: dict) -> list[str]:
    """CPU ms per request by party: why one target answers fewer requests than another."""
    if not any(result.cpu for result in results.values()):
        return []
    cores = os.cpu_count() or 1
    lines = [
        "",
        "CPU per request, ms (medians over the rounds, from /proc): app = the target's gunicorn;"
        " postgres = the database's backends and writers; edge = the target's nginx; client ="
        f" wrk and the client-side nginx. ceiling = {cores} cores x 1,000 / (app + postgres +"
        " edge), the rate if the serving side had the cores to itself.",
        "",
        "| query | c | target | app | postgres | edge | client | ceiling req/s |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for query in queries:
        for concurrency in [int(c) for c in options.concurrency.split(",")]:
            for name in ("server", "floor", "baseline", "floor-direct"):
                result = results.get((query.name, concurrency, name))
                if result and result.cpu:
                    lines.append(_cpu_row(query.name, concurrency, name, result.cpu, cores))
    return lines


def _cpu_row(query: str, concurrency: int, name: str, rounds: list[dict], cores: int) -> str:
    ms = {party: statistics.median(r[party] for r in rounds) for party in cpu.PARTIES}
    serving = ms["app"] + ms["postgres"] + ms["edge"]
    ceiling = cores * 1000 / serving if serving > 0 else float("nan")
    return (
        f"| {query} | {concurrency} | {name} | {ms['app']:.2f} | {ms['postgres']:.2f}"
        f" | {ms['edge']:.2f} | {ms['client']:.2f} | {ceiling:,.0f} |"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
