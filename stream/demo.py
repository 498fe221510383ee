"""`riverguard demo`: the embedded broker, a drifting stream with an incident, the service, a summary."""

from __future__ import annotations

import logging
import secrets
import tempfile
import threading
import time

import click

from stream.broker import EmbeddedBroker
from stream.config import Config
from stream.errors import RiverguardError
from stream.publish import publish
from stream.scenarios import generate
from stream.service import build_service, stop_on_signals

log = logging.getLogger(__name__)

TOPIC = "events"
ENDLESS = 10_000_000


def run_demo(events: int | None = None, admin_port: int = 8321, rate: float | None = None) -> dict:
    total = events or ENDLESS
    rate = rate or (2000.0 if events else 500.0)
    with EmbeddedBroker() as broker:
        snapshot_dir = tempfile.mkdtemp(prefix="riverguard-demo-")
        token = secrets.token_urlsafe(16)
        data = {
            "model": {"preset": "logistic_regression"},
            "kafka": {"bootstrap_servers": broker.bootstrap, "topic": TOPIC},
            "snapshots": {"dir": snapshot_dir, "key": secrets.token_hex(16), "every_events": 2000},
            "admin": {"port": admin_port, "token": token},
        }
        try:
            service = build_service(Config.build(data, env={}, source="<demo>"))
        except RiverguardError:
            if admin_port == 0:
                raise
            log.warning("port %d is taken; the admin server takes a free one instead", admin_port)
            data["admin"]["port"] = 0
            service = build_service(Config.build(data, env={}, source="<demo>"))

        producer = threading.Thread(
            target=publish,
            args=(broker.bootstrap, TOPIC, _with_bad_input(generate("demo", total))),
            kwargs={"total": total, "progress": False, "rate": rate},
            name="demo-producer",
            daemon=True,
        )
        producer.start()
        url = service.admin.url
        click.echo(f"riverguard demo: broker {broker.bootstrap}, {total if events else 'endless'} events at {rate:.0f}/s")
        click.echo(f"  status:  curl -H 'Authorization: Bearer {token}' {url}/api/status")
        click.echo(f"  metrics: {url}/metrics")
        click.echo(f"  token:   {token}")
        click.echo("  Ctrl-C stops it (a final snapshot is written)." if not events else "")

        stop = threading.Event()
        stop_on_signals(stop)
        ticker = threading.Thread(target=_tick, args=(service, stop), daemon=True)
        ticker.start()
        started = time.monotonic()
        status = service.run(stop, max_events=events)
        elapsed = time.monotonic() - started
        stop.set()
    _summary(status, elapsed, snapshot_dir, service.runner)
    return status


def _with_bad_input(events):
    """Now and then a broken message, as real feeds have: it must reach the dead-letter topic."""
    broken = (b'{"id": "broken", "x": {"salary": NaN}}', b"<html>502 Bad Gateway</html>", b'{"x": "n/a"}')
    for i, event in enumerate(events):
        yield broken[(i // 997) % len(broken)] if i % 997 == 996 else event


def _tick(service, stop: threading.Event) -> None:
    while not stop.wait(3.0):
        s = service.loop.status
        rolling = s.get("metric", {}).get("rolling")
        click.echo(
            f"  {s.get('events', 0):>8} events  mode={s.get('mode')}  "
            f"rolling {s.get('metric', {}).get('name')}={'-' if rolling is None else f'{rolling:.3f}'}"
        )


def _summary(status: dict, elapsed: float, snapshot_dir: str, runner) -> None:
    metric = status["metric"]
    rows = [
        ("events", status["events"]),
        ("predictions", status["predictions"]),
        ("labeled", status["labeled"]),
        ("learned", status["learned"]),
        ("invalid (dead-lettered)", sum(status["invalid"].values())),
        (f"{metric['name']} (all events)", _fmt(metric["value"])),
        (f"{metric['name']} (last window)", _fmt(metric["rolling"])),
        ("last snapshot", (status.get("last_snapshot") or {}).get("id")),
        ("longest snapshot stall", f"{runner.longest_stall * 1000:.1f} ms"),
        ("elapsed", f"{elapsed:.1f} s"),
        ("throughput", f"{status['events'] / elapsed:,.0f} events/s" if elapsed else "-"),
        ("snapshots in", snapshot_dir),
    ]
    width = max(len(name) for name, _ in rows)
    click.echo("\nsummary")
    for name, value in rows:
        click.echo(f"  {name:<{width}}  {value}")
    decisions = runner.decisions_view
    click.echo(f"\nguard decisions ({len(decisions)}; the demo's incident: salary x100 on events 40%-60%)")
    for d in decisions:
        click.echo(f"  event {d['at']:>7}  {d['action']:<8} {d['source']} -> {d['target']}: {d['reason']}")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"
