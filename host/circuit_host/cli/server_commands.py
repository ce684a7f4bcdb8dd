"""Commands run where the server's data is: serve, tenant create."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..settings import HostSettings, configure_logging

DEFAULT_DATA_DIR = Path(".circuit")


def master_key_from_environment() -> str | None:
    """``CIRCUIT_MASTER_KEY``, read here at the edge; unset, the key file in the data directory is used."""
    return os.environ.get("CIRCUIT_MASTER_KEY") or None


def cmd_serve(args: argparse.Namespace, settings: HostSettings) -> int:
    import uvicorn

    from ..observability import install_tracer_provider, tracer_provider_from_environment
    from ..server import ServerSettings, create_app
    from ..server.bootstrap import bootstrap
    from ..server.state import ServerState
    from ..server.worker_processes import prepare_environment

    flags = {
        "host": args.host,
        "port": args.port,
        "data_dir": args.data_dir,
        "db_url": args.db,
        "public_url": args.public_url,
        "job_workers": args.job_workers,
        "workers": args.workers,
        "observability": {"log_format": args.log_format, "log_level": args.log_level},
        "outbox_retry": {
            "max_attempts": args.outbox_attempts,
            "base_delay_s": args.outbox_backoff,
            "lease_s": args.outbox_lease,
        },
    }
    server_settings = ServerSettings.from_environment(os.environ, flags, data_dir=DEFAULT_DATA_DIR)
    observability = server_settings.observability
    public = server_settings.public_url
    configure_logging(observability.log_level, json_lines=observability.log_format == "json")
    tracer_provider = tracer_provider_from_environment(os.environ)  # OTEL_*: the SDK's own configuration
    if tracer_provider is not None:
        install_tracer_provider(tracer_provider)
    state = ServerState(server_settings)
    workers = server_settings.workers
    try:
        boot = bootstrap(state)
        host = f"[{server_settings.host}]" if ":" in server_settings.host else server_settings.host
        print(f"Circuit Script host listening on http://{host}:{server_settings.port}")
        if workers > 1:
            print(f"  processes:   {workers} (each with {server_settings.job_workers} job worker threads)")
        print(f"  public URL:  {public}")
        print(f"  tenant:      {boot.tenant_id}")
        if boot.admin_key is None or boot.webhook_urls is None:
            print(f"  admin key and production webhook URLs: in {boot.credentials} (shown on the first start only)")
        else:
            print(f"  admin key:   {boot.admin_key}   (shown this once; also in {boot.credentials})")
            print("  production webhooks:")
            for source, url in boot.webhook_urls.items():
                print(f"    {source:<15} {url}")
        print(f"  dashboard:   {public}/dashboard/   (sign in with an API key)")
        print(f"  API docs:    {public}/docs", flush=True)
        # Open dashboard streams (server-sent events) never end on their own: give them 5 s at shutdown.
        serving: dict[str, Any] = {
            "host": server_settings.host,
            "port": server_settings.port,
            "log_level": "warning",
            "timeout_graceful_shutdown": 5,
        }
        if workers > 1:  # server/worker_processes.py: each process builds its own state
            state.close()
            prepare_environment(server_settings)
            target = "circuit_host.server.worker_processes:worker_app"
            uvicorn.run(target, factory=True, workers=workers, **serving)
        else:
            uvicorn.run(create_app(server_settings, state), **serving)
    finally:
        state.close()
        if tracer_provider is not None:
            tracer_provider.shutdown()  # export the spans still in the batch
    return 0


def cmd_tenant_create(args: argparse.Namespace, settings: HostSettings) -> int:
    from ..server import ServerSettings
    from ..server.master_key import open_platform

    flags = {"data_dir": args.data_dir, "db_url": args.db}
    server_settings = ServerSettings.from_environment(os.environ, flags, data_dir=DEFAULT_DATA_DIR)
    with open_platform(server_settings) as platform:
        tenant = platform.tenants.create_tenant(args.name)
        _, key = platform.tenants.create_api_key(tenant.id, ["admin"], "created by circuit tenant create")
    print(f"tenant:    {tenant.id}")
    print(f"admin key: {key}   (shown once; it is stored hashed)")
    return 0


def register(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the host server (FastAPI on uvicorn)",
        description="Every option, and every server setting without one, may also be set as a CIRCUIT_* "
        "environment variable (CIRCUIT_PORT, CIRCUIT_DB_URL, CIRCUIT_PUBLIC_URL, ...; see server/README.md); "
        "an option given here wins.",
    )
    serve.add_argument("--host", default=None, help="address to listen on (127.0.0.1; CIRCUIT_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (8080; CIRCUIT_PORT)")
    serve.add_argument("--data-dir", type=Path, default=None, help="(.circuit; CIRCUIT_DATA_DIR)")
    serve.add_argument(
        "--db", default=None, help="postgresql:// URL to share with other servers (SQLite; CIRCUIT_DB_URL)"
    )
    serve.add_argument(
        "--public-url",
        default=None,
        help="the URL clients reach this server at, behind TLS or a proxy; webhook URLs use it "
        "(http://HOST:PORT; CIRCUIT_PUBLIC_URL)",
    )
    serve.add_argument(
        "--job-workers",
        type=int,
        default=None,
        help="job threads in this server (default 2; 0: `circuit worker` runs them)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes on the one socket, one core each (1; CIRCUIT_WORKERS)",
    )
    serve.add_argument("--log-format", choices=("console", "json"), default=None, help="json: one object a line")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=None)
    serve.add_argument("--outbox-attempts", type=int, help="CRM write attempts before dead-lettering (8)")
    serve.add_argument("--outbox-backoff", type=float, help="first CRM write retry delay in s, doubling (2)")
    serve.add_argument(
        "--outbox-lease",
        type=float,
        help="s a CRM write being sent stays claimed; a server that died mid-send has it retried after this (300)",
    )
    serve.set_defaults(func=cmd_serve)

    tenant = sub.add_parser("tenant", help="operator commands on the server's data (run where the data is)")
    tenant_sub = tenant.add_subparsers(dest="tenant_command", required=True)
    create = tenant_sub.add_parser("create", help="create a tenant and print its first admin API key")
    create.add_argument("name")
    create.add_argument("--data-dir", type=Path, default=None, help="(.circuit; CIRCUIT_DATA_DIR)")
    create.add_argument("--db", default=None, help="the server's postgresql:// URL, if it uses one (CIRCUIT_DB_URL)")
    create.set_defaults(func=cmd_tenant_create)
