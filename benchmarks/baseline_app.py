"""The plain FastAPI baseline of ``bench_server.py``: Virtual LPR's work natively, with sqlite3.

``POST /v1/records/Contact`` takes the host's body (``{"records": [...]}``) and, in one transaction
on a SQLite file in WAL mode (one connection per worker thread, as the host's pool has): inserts the
contacts, reads the census setting (the trigger's one query), scores them with
``native_vlpr.score`` (the guest's logic in Python), updates their score fields, inserts a Task
per grade-A contact, and commits. No sandbox, no governor, no execution record: what the same
request costs without Circuit Script.

    python benchmarks/baseline_app.py --port 8090 --db /tmp/baseline.sqlite3
"""

from __future__ import annotations

import argparse
import itertools
import os
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from benchmarks.native_vlpr import NEXT_ACTION, grade, score  # noqa: E402

CONTACT_FIELDS = (
    "FirstName",
    "LastName",
    "Title",
    "Email",
    "Company_Size__c",
    "Website_Visits__c",
    "Emails_Opened__c",
    "Called_Business__c",
    "LeadSource",
    "MailingPostalCode",
)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS contact (_row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    {", ".join(f.lower() for f in CONTACT_FIELDS)}, vlpr_score__c INTEGER, vlpr_grade__c TEXT, next_action__c TEXT);
CREATE TABLE IF NOT EXISTS task (_row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    subject TEXT, priority TEXT, status TEXT, whoid TEXT, description TEXT);
CREATE TABLE IF NOT EXISTS circuit_setting (name TEXT PRIMARY KEY, value TEXT);
"""


class RecordWrite(BaseModel):
    records: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


def create_app(db: Path) -> FastAPI:
    setup = sqlite3.connect(db)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.executescript(SCHEMA)
    setup.close()
    local = threading.local()
    prefix = os.urandom(4).hex()
    counter = itertools.count()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "connection"):
            local.connection = sqlite3.connect(db, timeout=30, isolation_level=None, check_same_thread=False)
            local.connection.execute("PRAGMA journal_mode=WAL")
        return local.connection  # type: ignore[no-any-return]

    app = FastAPI()

    @app.post("/v1/records/Contact")
    def write(body: RecordWrite) -> dict[str, Any]:
        conn = connection()
        ids = [f"003{prefix}{next(counter):08d}" for _ in body.records]
        contacts = [{**r, "Id": i} for r, i in zip(body.records, ids, strict=True)]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                f"INSERT INTO contact (id, {', '.join(f.lower() for f in CONTACT_FIELDS)}) "
                f"VALUES (?{', ?' * len(CONTACT_FIELDS)})",
                [(c["Id"], *(c.get(f) for f in CONTACT_FIELDS)) for c in contacts],
            )
            conn.execute("SELECT value FROM circuit_setting WHERE name = 'census_url' LIMIT 1").fetchall()
            updates, tasks = [], []
            for contact in contacts:
                total = score(contact, {})
                letter = grade(total)
                updates.append((total, letter, NEXT_ACTION[letter], contact["Id"]))
                if total >= 70:
                    name = " ".join(n for n in (contact.get("FirstName"), contact.get("LastName")) if n)
                    tasks.append(
                        (f"00T{prefix}{next(counter):08d}", f"CRITICAL: call {name} (VLPR {total})", contact["Id"])
                    )
            conn.executemany(
                "UPDATE contact SET vlpr_score__c = ?, vlpr_grade__c = ?, next_action__c = ? WHERE id = ?", updates
            )
            conn.executemany(
                "INSERT INTO task (id, subject, priority, status, whoid, description) "
                "VALUES (?, ?, 'High', 'Not Started', ?, 'Virtual LPR grade A')",
                tasks,
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return {"ids": ids, "created": [True] * len(ids)}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.db), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
