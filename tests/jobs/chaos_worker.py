"""A worker process for the chaos tests: ``python -m tests.jobs.chaos_worker BACKEND URL MARKERS``.

Its one job kind, ``chaos.commit``, records its effect (a row in ``chaos_effects``) in the same
transaction that completes the job (``JobRun.complete_in``), and adds it only if no earlier attempt
did (an attempt killed after committing, on the fleet backend). A first attempt can be told to
hang before or after that commit, so the test can SIGKILL the process there. Each attempt leaves
a marker file ``<job id>.<attempts>.<started|committed>`` in MARKERS.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from circuit_host.jobs import JobQueue, JobRun, Worker

from .conftest import open_queue

EFFECTS = "chaos_effects"


def create_effects(queue: JobQueue) -> None:
    engine: sa.Engine = queue.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {EFFECTS} (job_id BIGINT NOT NULL, attempt INTEGER NOT NULL)")


def handler(queue: JobQueue, markers: Path) -> object:
    engine: sa.Engine = queue.engine  # type: ignore[attr-defined]

    def commit(run: JobRun) -> None:
        job = run.job
        (markers / f"{job.id}.{job.attempts}.started").touch()
        first = job.attempts == 0
        if first and job.payload.get("hang") == "before_commit":
            time.sleep(3600)
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.dialect.name == "sqlite" else "BEGIN")
            try:
                run.complete_in(conn)  # fences out a worker that lost the job, and locks it
                done = conn.exec_driver_sql(f"SELECT count(*) FROM {EFFECTS} WHERE job_id = {int(job.id)}").scalar()
                if not done:
                    conn.exec_driver_sql(f"INSERT INTO {EFFECTS} VALUES ({int(job.id)}, {int(job.attempts)})")
                time.sleep(float(job.payload.get("work_s", 0)))
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
        (markers / f"{job.id}.{job.attempts}.committed").touch()
        if first and job.payload.get("hang") == "after_commit":
            time.sleep(3600)

    return commit


def main(backend: str, url: str, markers: str) -> None:
    queue = open_queue(backend, url)
    create_effects(queue)
    with Worker(queue, {"chaos.commit": handler(queue, Path(markers))}, concurrency=4):  # type: ignore[dict-item]
        print("ready", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main(*sys.argv[1:4])
