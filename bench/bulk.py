"""Bulk throughput on an existing directory: `$export`, `importndjson` and transaction Bundles.

    .venv/bin/python -m bench.bulk --database postgres://.../bench --resources 100000

Against the directory already in `--database` (generate one with `generatedirectory`), in order:

1. export: a system `$export` kicked off over HTTP and run by `manage.py runexports`, the
   runner production uses, over every live resource: resources/s, MB/s, its CPU and peak RSS;
2. import: an NDJSON file of about `--resources` generated resources (`generatedirectory --ndjson`
   with a seed whose ids the directory does not hold) imported with `importndjson` into a fresh
   scratch database, then into the directory itself: new ids, so the second run measures
   creates against tables and indexes of the directory's size (an update of existing ids is
   the per-resource `PUT` path, measured by the transactions below when they are updates);
3. transactions: the file's next practitioners (Practitioner, their Endpoint, PractitionerRoles,
   whose organizations, locations and services the import just stored), packed in transaction
   Bundles of up to `--bundle-size` entries (`PUT Type/id`, creates with the client's id), POSTed
   over HTTP to gunicorn running the full security chain (client certificate, API key, bearer
   token, audit, as `bench.run` sets them up) at concurrency 1 and 4: entries/s.

Afterwards every resource the run stored (the seed's id prefix) is removed again with its history
and index rows (`--keep` leaves them), so the directory is as it was; audit rows and the
benchmark's client registration stay, as after `make bench`. The machine's load average is
printed with every step: on a shared machine compare within one run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from bench import run

ROOT = Path(__file__).resolve().parents[1]
RESOURCES_PER_PRACTITIONER = 2.6  # what generatedirectory writes per practitioner, about
FIRST_SEED = 9001  # seeds whose ids ("g9001-...") a directory made for work is unlikely to hold


# A finished child process: its result, CPU seconds, peak RSS in MiB.
Ran = tuple[subprocess.CompletedProcess, float, int]


@dataclass
class Step:
    """One measured line of the table."""

    name: str
    items: int
    seconds: float
    unit: str = "resources"
    megabytes: float | None = None
    cpu: float | None = None
    rss_mib: int | None = None
    load: tuple[float, float] = (0.0, 0.0)
    note: str = ""
    latencies: list[float] = field(default_factory=list)
    failed: int = 0

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else float("nan")


def main(argv: list[str] | None = None) -> str:
    options = _arguments(argv)
    work = Path(options.work)
    work.mkdir(parents=True, exist_ok=True)
    run._env.update(run._django_env(options.database))
    seed = _free_seed(options.database)
    tag = f"g{seed}-"
    steps: list[Step] = []
    import_file, bundles = _files(options, work, seed)
    headers = run._credentials(work)
    port = run._free_port()
    env = run._server_env(work, port, options.server_workers, "bulk") | _export_env(work)
    server = run._start("config.wsgi", env)
    try:
        run._wait_until_serving(port, [server])
        steps.append(_export(options.database, port, headers, env))
        scratch = _scratch_url(options.database)
        steps.append(_import(scratch, import_file, options.workers, "import, fresh database"))
        _drop(scratch)
        steps.append(_import(options.database, import_file, options.workers, "import, directory"))
        half = len(bundles) // 2
        for concurrency, share in ((1, bundles[:half]), (4, bundles[half:])):
            steps.append(_transactions(port, headers, share, concurrency))
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not options.keep:
            _remove(tag)
    report = _table(options, steps, tag, _count(options.database))
    Path(options.out).write_text(report)
    print(report)
    return report


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database", default=os.environ.get("BENCH_DATABASE_URL", run.DEFAULT_DATABASE)
    )
    parser.add_argument("--resources", type=int, default=100_000, help="lines of the import file")
    parser.add_argument("--workers", type=int, default=2, help="importndjson --workers")
    parser.add_argument("--bundles", type=int, default=40, help="transactions, half at each c")
    parser.add_argument("--bundle-size", type=int, default=100, help="entries per transaction")
    parser.add_argument("--server-workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", action="store_true", help="leave the stored resources")
    parser.add_argument("--work", default=str(ROOT / "var" / "bench" / "bulk"))
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "bulk.md"))
    return parser.parse_args(argv)


# ---------------------------------------------------------------- the data


def _free_seed(database: str) -> int:
    """The first seed from FIRST_SEED whose ids the directory does not hold."""
    seed = FIRST_SEED
    with psycopg.connect(database) as connection:
        while connection.execute(
            "SELECT 1 FROM directory_resource WHERE resource_type = 'Organization' "
            "AND logical_id = %s",
            [f"g{seed}-org-0"],
        ).fetchone():
            seed += 1
    return seed


def _files(options: argparse.Namespace, work: Path, seed: int) -> tuple[Path, list[list[dict]]]:
    """The import file (about --resources lines, ending with a whole practitioner) and the
    transaction Bundles' entries, from one generated directory."""
    wanted = options.resources + options.bundles * options.bundle_size
    practitioners = int(wanted / RESOURCES_PER_PRACTITIONER) + 100
    generated = work / f"directory-{seed}.ndjson"
    run._django(
        "generatedirectory", f"--practitioners={practitioners}", f"--seed={seed}",
        f"--ndjson={generated}", capture=True,
    )  # fmt: skip
    import_file = work / f"import-{seed}.ndjson"
    groups: list[list[dict]] = []
    with open(generated, "rb") as source, open(import_file, "wb") as out:
        for number, line in enumerate(source):
            is_practitioner = b'"resourceType":"Practitioner",' in line[:40]
            if (number >= options.resources and is_practitioner) or groups:
                if is_practitioner:
                    groups.append([])
                groups[-1].append(json.loads(line))
            else:
                out.write(line)
    generated.unlink()
    return import_file, _pack(groups, options.bundle_size)[: options.bundles]


def _pack(groups: list[list[dict]], size: int) -> list[list[dict]]:
    """Whole practitioner groups per Bundle, up to `size` entries: references stay inside it
    or point at what the import stored."""
    bundles: list[list[dict]] = [[]]
    for group in groups:
        if bundles[-1] and len(bundles[-1]) + len(group) > size:
            bundles.append([])
        bundles[-1].extend(group)
    return [b for b in bundles if b]


# ---------------------------------------------------------------- export


def _export_env(work: Path) -> dict[str, str]:
    # Jobs wait for the runner, as in production with `runexports --loop`.
    return {"BULK_EXPORT_DIR": str(work / "exports"), "BULK_EXPORT_RUN_IN_THREAD": "false"}


def _export(database: str, port: int, headers: dict[str, str], env: dict[str, str]) -> Step:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    kickoff = {**headers, "Prefer": "respond-async"}
    status, answer, body = _request(connection, "GET", "/fhir/$export", kickoff)
    if status != 202:
        raise SystemExit(f"$export kick-off answered {status}: {body[:300]!r}")
    status_path = urlsplit(answer["Content-Location"]).path
    load = os.getloadavg()[0]
    started = time.monotonic()
    done, cpu, rss = _child([sys.executable, "manage.py", "runexports"], env)
    process_seconds = time.monotonic() - started
    seconds = _job_seconds(database, status_path.rsplit("/", 1)[-1]) or process_seconds
    status, _, body = _request(connection, "GET", status_path, headers)
    if status != 200:
        raise SystemExit(f"the export did not finish ({status}): {done.stdout}{done.stderr}")
    manifest = json.loads(body)
    files = [item["url"].rsplit("/", 2)[-2:] for item in manifest["output"]]
    size = sum((Path(env["BULK_EXPORT_DIR"]) / key / name).stat().st_size for key, name in files)
    _request(connection, "DELETE", status_path, headers)  # the job and its files
    return Step(
        "system $export (runexports)",
        sum(item["count"] for item in manifest["output"]),
        seconds,
        megabytes=size / 1e6,
        cpu=cpu,
        rss_mib=rss,
        load=(load, os.getloadavg()[0]),
        note=f"{len(files)} types; the job's own time (the process, start-up included: "
        f"{process_seconds:,.1f} s)",
    )


def _job_seconds(database: str, key: str) -> float | None:
    """From the job's claim to its end, as the runner recorded them."""
    with psycopg.connect(database) as connection:
        row = connection.execute(
            "SELECT extract(epoch FROM finished - started) FROM directory_exportjob WHERE key = %s",
            [key],
        ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def _request(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection.request(method, path.replace("$", "%24"), body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.headers, response.read()


def _child(
    command: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess, float, int]:
    """Run a command to its end: its result, CPU seconds and peak RSS in MiB, counting the
    processes it forked and waited for (wait4 reports this one child's usage, whatever else
    this process runs, such as gunicorn)."""
    with open(os.devnull, "rb") as stdin, _scratch_file() as out, _scratch_file() as err:
        process = subprocess.Popen(  # noqa: S603 - this interpreter and manage.py
            command, cwd=ROOT, env=env, stdin=stdin, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(
            command, process.returncode, out.read().decode(), err.read().decode()
        )
    return done, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def _scratch_file():
    import tempfile

    return tempfile.TemporaryFile()


# ---------------------------------------------------------------- import


def _scratch_url(database: str) -> str:
    """A fresh, migrated database next to `database` (same server), dropped after use."""
    base, _, name = database.rpartition("/")
    scratch = f"{base}/{name}_bulk_scratch"
    _drop(scratch)
    run._ensure_database(scratch)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT, env=os.environ | run._env | {"DATABASE_URL": scratch},
        check=True, capture_output=True,
    )  # fmt: skip
    return scratch


def _drop(url: str) -> None:
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _import(database: str, path: Path, workers: int, name: str) -> Step:
    env = os.environ | run._env | {"DATABASE_URL": database}
    command = [sys.executable, "manage.py", "importndjson", str(path), "--quiet"]
    load = os.getloadavg()[0]
    started = time.monotonic()
    done, cpu, rss = _child([*command, f"--workers={workers}"], env)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"importndjson failed: {done.stdout}{done.stderr}")
    lines = sum(1 for _ in open(path, "rb"))  # noqa: SIM115 - counted and closed by the GC
    return Step(
        name,
        lines,
        seconds,
        megabytes=path.stat().st_size / 1e6,
        cpu=cpu,
        rss_mib=rss,
        load=(load, os.getloadavg()[0]),
        note=f"--workers {workers}; new ids",
    )


# ---------------------------------------------------------------- transactions


def _bundle(entries: list[dict]) -> bytes:
    return json.dumps(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": item,
                    "request": {"method": "PUT", "url": f"{item['resourceType']}/{item['id']}"},
                }
                for item in entries
            ],
        }
    ).encode()


def _transactions(
    port: int, headers: dict[str, str], bundles: list[list[dict]], concurrency: int
) -> Step:
    """POST the Bundles from `concurrency` threads, each on its own kept-alive connection."""
    bodies = iter([(len(b), _bundle(b)) for b in bundles])
    lock = threading.Lock()
    latencies: list[float] = []
    outcome = {"entries": 0, "failed": 0}
    post_headers = {
        **headers,
        "Content-Type": "application/fhir+json",
        "Prefer": "return=minimal",
    }

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                entries, body = next(bodies, (0, b""))
            if not body:
                return
            sent = time.monotonic()
            status, _, answer = _request(connection, "POST", "/fhir", post_headers, body)
            with lock:
                latencies.append(time.monotonic() - sent)
                if status == 200:
                    outcome["entries"] += entries
                else:
                    outcome["failed"] += 1
                    print(f"transaction answered {status}: {answer[:300]!r}", file=sys.stderr)

    load = os.getloadavg()[0]
    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    size = max((len(b) for b in bundles), default=0)
    return Step(
        f"transaction Bundles, c={concurrency}",
        outcome["entries"],
        seconds,
        unit="entries",
        load=(load, os.getloadavg()[0]),
        note=f"{len(bundles)} Bundles of up to {size} PUT (create) entries",
        latencies=latencies,
        failed=outcome["failed"],
    )


# ---------------------------------------------------------------- cleaning up


REMOVE = """
from django.db import transaction
from directory.models import Resource
with transaction.atomic():
    removed, _ = Resource.objects.filter(logical_id__startswith={tag!r}).delete()
print(removed)
"""


def _remove(tag: str) -> None:
    """Delete what the run stored (ids starting with `tag`), history and index rows with it."""
    run._django("shell", "-c", REMOVE.format(tag=tag), capture=True)


def _count(database: str) -> int:
    with psycopg.connect(database) as connection:
        return connection.execute("SELECT count(*) FROM directory_resource").fetchone()[0]


# ---------------------------------------------------------------- the table


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _table(options: argparse.Namespace, steps: list[Step], tag: str, resources: int) -> str:
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        f"Directory of {resources:,} resources (rows in directory_resource after the run); "
        f"{os.cpu_count()} cores, load average at the end {load} (1/5/15 min); "
        f"ids of the run start with {tag!r}"
        + (" (kept)." if options.keep else " (removed afterwards)."),
        "CPU and peak RSS: the measured process and the processes it forked "
        "(not PostgreSQL's backend, nor gunicorn for transactions).",
        "",
        "| step | items | seconds | items/s | MB/s | CPU s | peak RSS MiB | p50 / max ms "
        "| failed | load 1-min start → end | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for step in steps:
        mbps = step.megabytes / step.seconds if step.megabytes and step.seconds else None
        latency = "-"
        if step.latencies:
            ms = [1000 * value for value in step.latencies]
            latency = f"{statistics.median(ms):,.0f} / {max(ms):,.0f}"
        lines.append(
            f"| {step.name} | {step.items:,} {step.unit} | {step.seconds:,.1f} "
            f"| {step.rate:,.0f} | {_cell(mbps, ',.1f')} | {_cell(step.cpu, ',.1f')} "
            f"| {_cell(step.rss_mib, ',')} | {latency} | {step.failed} "
            f"| {step.load[0]:.1f} → {step.load[1]:.1f} | {step.note} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
