"""The admin HTTP server: status, snapshots, commands, `/metrics` and health, on 127.0.0.1 by default.

Handlers never touch the model. They read the status dict the loop publishes and the snapshot
files, and they *submit* commands that the loop applies between records.

A bearer token is required for every mutating call, and for reads unless `public_reads` is set.
`/metrics`, `/healthz` and `/readyz` stay open so that Prometheus and orchestrators can reach them.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from pathlib import Path

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stream.errors import RiverguardError

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 60.0
DASHBOARD_DIR = Path(__file__).parent / "dashboard"  # plain HTML/CSS/JS, no build step


def create_app(runner, registry, *, token: str, public_reads: bool = False) -> Starlette:
    """Build the ASGI app around a runner (its loop, its snapshot store) and a metrics registry."""
    loop = runner.loop
    store = runner.store

    def authorised(request: Request, mutating: bool) -> Response | None:
        if not mutating and public_reads:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse(
                {"error": "a bearer token is required (Authorization: Bearer <token>)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None

    async def command(name: str, **args) -> Response:
        try:
            future = loop.commands.submit(name, **args)
            result = await asyncio.wait_for(asyncio.wrap_future(future), COMMAND_TIMEOUT)
        except asyncio.TimeoutError:
            return JSONResponse({"error": f"{name}: the loop did not apply it within {COMMAND_TIMEOUT:.0f}s"}, 504)
        except (RiverguardError, KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": f"{name}: {exc}"}, status_code=409)
        return JSONResponse(result)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        if runner.ready.is_set():
            return PlainTextResponse("ready")
        return PlainTextResponse("not ready: resuming from snapshot", status_code=503)

    async def status(request: Request) -> Response:
        if (denied := authorised(request, mutating=False)) is not None:
            return denied
        return JSONResponse(loop.status)

    async def snapshots(request: Request) -> Response:
        if (denied := authorised(request, mutating=False)) is not None:
            return denied
        rows = await run_in_threadpool(_snapshot_rows, store)
        return JSONResponse({"snapshots": rows})

    async def snapshot_show(request: Request) -> Response:
        if (denied := authorised(request, mutating=False)) is not None:
            return denied
        wanted = request.path_params["snapshot_id"]
        rows = await run_in_threadpool(_snapshot_rows, store)
        row = next((r for r in rows if r.get("id") == wanted), None)
        if row is None:
            return JSONResponse({"error": f"no snapshot {wanted!r}"}, status_code=404)
        return JSONResponse(row)

    async def history(request: Request) -> Response:
        if (denied := authorised(request, mutating=False)) is not None:
            return denied
        try:
            since = int(request.query_params.get("since", -1))  # -1: everything in the ring
        except ValueError:
            return JSONResponse({"error": "since must be a sample sequence number"}, status_code=400)
        return JSONResponse({"samples": runner.history.since(since)})

    async def decisions(request: Request) -> Response:
        if (denied := authorised(request, mutating=False)) is not None:
            return denied
        limit = _int(request.query_params.get("limit"), default=100)
        rows = runner.decisions_view[-limit:] if limit else []
        return JSONResponse({"decisions": rows[::-1], "alarms": runner.alarms_view[-limit:][::-1]})

    def mutation(name: str, *fields: str):
        async def handler(request: Request) -> Response:
            if (denied := authorised(request, mutating=True)) is not None:
                return denied
            body = {}
            if fields:
                try:
                    body = await request.json() if await request.body() else {}
                except ValueError:
                    return JSONResponse({"error": "the body must be JSON"}, status_code=400)
                unknown = set(body) - set(fields)
                if unknown:
                    return JSONResponse({"error": f"unknown fields {sorted(unknown)}; allowed: {list(fields)}"}, 400)
            body.update(request.path_params)
            return await command(name, **body)

        return handler

    async def dashboard_page(request: Request) -> Response:
        return FileResponse(DASHBOARD_DIR / "index.html")

    return Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/api/status", status),
            Route("/api/snapshots", snapshots),
            Route("/api/snapshots/{snapshot_id}", snapshot_show),
            Route("/api/snapshots/{snapshot}/pin", mutation("pin", "pinned"), methods=["POST"]),
            Route("/api/snapshot", mutation("snapshot"), methods=["POST"]),
            Route("/api/decisions", decisions),
            Route("/api/history", history),
            Route("/", dashboard_page),
            Mount("/static", StaticFiles(directory=DASHBOARD_DIR), name="static"),
            Route("/api/pause", mutation("pause"), methods=["POST"]),
            Route("/api/resume", mutation("resume"), methods=["POST"]),
            Route("/api/promote", mutation("promote"), methods=["POST"]),
            Route("/api/rollback", mutation("rollback", "to", "last_good", "resume"), methods=["POST"]),
        ]
    )


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(value)) if value is not None else default
    except ValueError:
        return default


def _snapshot_rows(store) -> list[dict]:
    pins = store.pins()
    rows = []
    for meta, path, problem in reversed(store.list()):
        row = meta.to_dict() if meta is not None else {"id": path.name}
        row.update(valid=problem is None, problem=problem, pinned=row.get("id") in pins, path=str(path))
        rows.append(row)
    return rows


class AdminServer:
    """Runs the app with uvicorn on a background thread; `port` is known once `start` returns."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 8321) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.host = host
        self.port = port
        self._thread = threading.Thread(target=self.server.run, name="riverguard-admin", daemon=True)

    def start(self, timeout: float = 10.0) -> "AdminServer":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RiverguardError(f"admin server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=5)
