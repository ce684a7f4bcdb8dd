"""The plain FastAPI baseline of webhook intake (``bench_webhooks.py intake``): what storing a webhook costs
without Circuit Script.

``POST /v1/hooks/generic`` checks the ``X-Circuit-Signature`` HMAC over the raw body (the same scheme
and secret as the host), parses the JSON, and inserts the same inbox row the host stores (tenant,
environment, source, dedupe key under a unique index, object, action, the change as JSON, state) in
one transaction on a SQLite file in WAL mode: 202, or 200 for a delivery stored before. No API key,
no tenant settings, no job row, no metrics.

    python benchmarks/baseline_inbox_app.py --port 8091 --db /tmp/inbox.sqlite3 --secret S
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from fastapi import FastAPI, Request, Response  # noqa: E402

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL,
    env TEXT NOT NULL, source TEXT NOT NULL, dedupe_key TEXT NOT NULL, part INTEGER NOT NULL, object TEXT NOT NULL,
    action TEXT NOT NULL, change TEXT NOT NULL, records INTEGER NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL, next_attempt_at TEXT NOT NULL, received_at TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS webhook_inbox_dedupe ON webhook_inbox (tenant_id, source, dedupe_key, part);
"""


def create_app(db: Path, secret: str) -> FastAPI:
    setup = sqlite3.connect(db)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.executescript(SCHEMA)
    setup.close()
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "connection"):
            local.connection = sqlite3.connect(db, timeout=30, isolation_level=None, check_same_thread=False)
        return local.connection  # type: ignore[no-any-return]

    app = FastAPI()

    @app.post("/v1/hooks/generic", status_code=202)
    async def hook(request: Request, response: Response) -> dict[str, Any]:
        body = await request.body()
        parts = dict(p.split("=", 1) for p in request.headers["x-circuit-signature"].split(","))
        expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts["v1"]) or abs(time.time() - int(parts["t"])) > 300:
            response.status_code = 401
            return {"detail": "bad signature"}
        event = json.loads(body)
        change = {"records": event["records"], "occurred_at": event["occurred_at"], "webhook_id": event["id"]}
        now = datetime.now(UTC).isoformat()
        conn = connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "INSERT INTO webhook_inbox (tenant_id, env, source, dedupe_key, part, object, action, change, records,"
                " state, attempts, next_attempt_at, received_at) VALUES"
                " ('default', 'production', 'generic', ?, 0, ?, ?, ?, ?, 'pending', 0, ?, ?) RETURNING id",
                (event["id"], event["object"], event["operation"], json.dumps(change), len(event["records"]), now, now),
            ).fetchone()
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK")
            response.status_code = 200
            return {"duplicate": True}
        return {"accepted": 1, "inbox_ids": [row[0]]}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.db, args.secret), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
