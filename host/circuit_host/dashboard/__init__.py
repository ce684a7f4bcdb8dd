"""The operator's dashboard: static HTML, JavaScript modules and CSS, served by the host at
``/dashboard`` (``server/routers/dashboard.py``); it reads the same API every client does."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
SWAGGER_UI = STATIC / "vendor" / "swagger-ui"  # swagger-ui-dist, vendored: /docs works offline
