"""The `riverguard` command line. Spellings here are a contract: scripts and checks depend on them."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path

import click

from stream.config import Config
from stream.errors import RiverguardError

log = logging.getLogger("riverguard")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # kafka-python logs retries and slow selector tasks at WARNING; riverguard reports what matters.
    logging.getLogger("kafka").setLevel(logging.ERROR)


class _Group(click.Group):
    """Turns riverguard's own errors into a one-line message and the error's exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RiverguardError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """riverguard: online learning from Kafka, guarded against drift."""
    _setup_logging(verbose)


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), required=True, help="TOML config file.")
@click.option("--max-events", type=click.IntRange(min=1), help="Stop cleanly (final snapshot) after N events.")
@click.option("--bootstrap", help="Overrides [kafka] bootstrap_servers.")
@click.option("--topic", help="Overrides [kafka] topic.")
@click.option("--snapshots-dir", help="Overrides [snapshots] dir.")
@click.option("--admin-port", type=int, help="Overrides [admin] port (0 picks a free port).")
def run(config_path, max_events, bootstrap, topic, snapshots_dir, admin_port) -> None:
    """Run the service from a TOML config (environment variables and flags override it)."""
    from stream.service import build_service, stop_on_signals

    config = Config.load(
        config_path,
        overrides={
            "kafka": {"bootstrap_servers": bootstrap, "topic": topic},
            "snapshots": {"dir": snapshots_dir},
            "admin": {"port": admin_port},
        },
    )
    stop = threading.Event()
    stop_on_signals(stop)
    service = build_service(config)
    if service.admin is not None:
        click.echo(f"admin: {service.admin.url}", err=True)
    status = service.run(stop, max_events=max_events)
    click.echo(json.dumps(status, indent=2, default=str))


@main.command()
@click.option("--port", type=click.IntRange(0, 65535), help="Port on 127.0.0.1 (default: a free one).")
def broker(port) -> None:
    """Run the embedded Kafka-compatible broker (Tansu) until interrupted."""
    from stream.broker import serve_forever

    serve_forever(port)


@main.command()
@click.option("--bootstrap", required=True, help="HOST:PORT of the broker.")
@click.option("--topic", required=True)
@click.option("--scenario", required=True, help="Synthetic stream; see `riverguard produce --list`.")
@click.option("--events", "count", type=click.IntRange(min=1), required=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--rate", type=float, help="Events per second (default: as fast as possible).")
def produce(bootstrap, topic, scenario, count, seed, rate) -> None:
    """Produce a synthetic stream with chosen drifts and incidents."""
    from stream.publish import publish
    from stream.scenarios import SCENARIOS, generate

    if scenario not in SCENARIOS:
        raise click.BadParameter(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}", param_hint="--scenario")
    sent = publish(bootstrap, topic, generate(scenario, count, seed=seed), total=count, rate=rate)
    click.echo(f"produced {sent} events to {topic}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--bootstrap", required=True, help="HOST:PORT of the broker.")
@click.option("--topic", required=True)
@click.option("--target", help="CSV column that holds the label ('last' for the last column).")
@click.option("--id-column", help="CSV column that holds the event id (default: the row number).")
@click.option("--no-header", is_flag=True, help="The CSV file has no header row.")
@click.option("--rate", type=float, help="Events per second (default: as fast as possible).")
def replay(file, bootstrap, topic, target, id_column, no_header, rate) -> None:
    """Replay a JSONL or CSV file (optionally .gz) into a topic, with a progress bar."""
    from stream.files import count_events, iter_events
    from stream.publish import publish

    events = iter_events(file, target=target, id_column=id_column, has_header=not no_header)
    sent = publish(bootstrap, topic, events, total=count_events(file, has_header=not no_header), rate=rate)
    click.echo(f"replayed {sent} events from {file} to {topic}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config (model, guard).")
@click.option("--no-guard", is_flag=True, help="Plain online learning, for comparison.")
@click.option("--window", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--report", "report_path", type=click.Path(dir_okay=False), required=True)
@click.option("--target", help="CSV column that holds the label ('last' for the last column).")
@click.option("--no-header", is_flag=True, help="The CSV file has no header row.")
def backtest(file, config_path, no_guard, window, report_path, target, no_header) -> None:
    """Run the service's loop offline over a file and write a JSON report."""
    from stream.backtest import backtest as run_backtest
    from stream.files import iter_events

    config = Config.load(config_path)
    events = iter_events(file, target=target, has_header=not no_header)
    report = run_backtest(events, config, guard=not no_guard, window=window)
    Path(report_path).write_text(json.dumps(report, indent=1))
    metric = report["metric"]
    value = "n/a" if metric["value"] is None else f"{metric['value']:.4f}"
    click.echo(
        f"{report['events']} events, {report['labeled']} labeled, {report['invalid']} invalid, "
        f"{metric['name']} {value}, {report['rollbacks']} rollbacks -> {report_path}"
    )


@main.group()
def snapshots() -> None:
    """List, show and verify snapshots in a directory (works while the service is stopped)."""


def _store(directory: str, key: str | None, config_path: str | None):
    from stream.snapshots import SnapshotStore

    if key is None:
        key = Config.load(config_path).snapshots.key if config_path else os.environ.get("RIVERGUARD_SNAPSHOTS_KEY")
    if not key:
        raise click.UsageError("the snapshot key is needed: --key, --config or RIVERGUARD_SNAPSHOTS_KEY")
    return SnapshotStore(directory, key.encode(), keep=10**9)


_dir_option = click.option("--dir", "directory", required=True, type=click.Path(file_okay=False))
_key_option = click.option("--key", help="HMAC key (default: --config or RIVERGUARD_SNAPSHOTS_KEY).")
_config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False))


@snapshots.command("list")
@_dir_option
@_key_option
@_config_option
def snapshots_list(directory, key, config_path) -> None:
    store = _store(directory, key, config_path)
    pins = store.pins()
    click.echo(f"{'id':<18} {'reason':<13} {'events':>9} {'metric':>8}  {'parent':<18} {'created':<19}  status")
    for meta, path, problem in store.list():
        if meta is None:
            click.echo(f"{path.name:<18} {'?':<13} {'?':>9} {'?':>8}  {'?':<18} {'?':<19}  REFUSED")
            continue
        metric = (meta.metric or {}).get("rolling")
        status = "REFUSED" if problem else ("pinned" if meta.id in pins else "ok")
        click.echo(
            f"{meta.id:<18} {meta.reason:<13} {meta.events:>9} {_fmt(metric):>8}  {meta.parent or '-':<18} "
            f"{_iso(meta.created):<19}  {status}"
        )


@snapshots.command("show")
@click.argument("snapshot_id")
@_dir_option
@_key_option
@_config_option
def snapshots_show(snapshot_id, directory, key, config_path) -> None:
    store = _store(directory, key, config_path)
    meta = store.verify(store.path_of(snapshot_id))
    click.echo(json.dumps({**meta.to_dict(), "pinned": meta.id in store.pins()}, indent=2))


@snapshots.command("pin")
@click.argument("snapshot_id")
@click.option("--unpin", is_flag=True)
@_dir_option
@_key_option
@_config_option
def snapshots_pin(snapshot_id, unpin, directory, key, config_path) -> None:
    """Keep a snapshot whatever retention says (or release it with --unpin)."""
    store = _store(directory, key, config_path)
    store.verify(store.path_of(snapshot_id))
    store.pin(snapshot_id, not unpin)
    click.echo(f"{'unpinned' if unpin else 'pinned'} {snapshot_id}")


@snapshots.command("verify")
@_dir_option
@_key_option
@_config_option
def snapshots_verify(directory, key, config_path) -> None:
    """Check every snapshot's signature; exit 3 if any is refused."""
    store = _store(directory, key, config_path)
    refused = 0
    for _meta, path, problem in store.list():
        if problem:
            refused += 1
            click.echo(f"REFUSED {problem}")
        else:
            click.echo(f"ok      {path}")
    if refused:
        sys.exit(3)


def _online(f):
    """--url/--token for commands that talk to a running service (or take them from --config)."""
    f = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="Take the admin address and token from this config.")(f)
    f = click.option("--token", envvar="RIVERGUARD_ADMIN_TOKEN", help="Bearer token (or RIVERGUARD_ADMIN_TOKEN).")(f)
    f = click.option("--url", envvar="RIVERGUARD_URL", help="Admin API (default http://127.0.0.1:8321).")(f)
    return f


def _client(url, token, config_path):
    from stream.client import AdminClient

    if config_path:
        admin = Config.load(config_path).admin
        url = url or f"http://{admin.host}:{admin.port}"
        token = token or admin.token
    return AdminClient(url or "http://127.0.0.1:8321", token)


def _show(result: dict) -> None:
    click.echo(json.dumps(result, indent=2, default=str))


@main.command()
@_online
def status(url, token, config_path) -> None:
    """Show a running service's status."""
    _show(_client(url, token, config_path).get("/api/status"))


@main.command()
@_online
def pause(url, token, config_path) -> None:
    """Stop learning until an operator resumes (the guard never resumes by itself)."""
    _show(_client(url, token, config_path).post("/api/pause"))


@main.command()
@_online
def resume(url, token, config_path) -> None:
    """Resume learning with the live model (drops a quarantine candidate)."""
    _show(_client(url, token, config_path).post("/api/resume"))


@main.command()
@_online
def promote(url, token, config_path) -> None:
    """Make the quarantine candidate (or the fresh model, if it did better) live and resume learning."""
    _show(_client(url, token, config_path).post("/api/promote"))


@main.command()
@click.option("--to", "target", help="Snapshot id to roll back to.")
@click.option("--last-good", is_flag=True, help="The snapshot the guard restored, or the newest taken while learning.")
@click.option("--resume", "resume_learning", is_flag=True, help="Resume learning at once (default: pause).")
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="Offline: the snapshot directory of a stopped service.")
@click.option("--key", help="Offline: HMAC key (default: --config or RIVERGUARD_SNAPSHOTS_KEY).")
@_online
def rollback(target, last_good, resume_learning, directory, key, url, token, config_path) -> None:
    """Roll the live model back to a snapshot; learning pauses unless --resume.

    Online it asks the running service; with --dir it works on a stopped service's snapshots.
    """
    if bool(target) == bool(last_good):
        raise click.UsageError("give exactly one of --to SNAPSHOT_ID or --last-good")
    if directory:
        from stream.control import rollback_offline

        if last_good:
            raise click.UsageError("--last-good needs the running service; offline, name the snapshot with --to")
        store = _store(directory, key, config_path)
        meta, decision = rollback_offline(store, target, resume=resume_learning)
        _show({"snapshot": meta.id, "restored_from": target, "mode": decision.target, "offsets": meta.offsets})
        return
    body = {"resume": resume_learning, **({"to": target} if target else {"last_good": True})}
    _show(_client(url, token, config_path).post("/api/rollback", body))


@main.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
@_online
def decisions(limit, as_json, url, token, config_path) -> None:
    """The guard's newest decisions, with their reasons and evidence."""
    rows = _client(url, token, config_path).get(f"/api/decisions?limit={limit}")["decisions"]
    if as_json:
        _show(rows)
        return
    for row in rows:
        snaps = ", ".join(f"{k}={v}" for k, v in (row.get("evidence", {}).get("snapshots") or {}).items())
        click.echo(f"{_iso(row['time'])}  event {row['at']:>9}  {row['action']:<8} {row['trigger']:<6} "
                   f"{row['source']} -> {row['target']}")
        click.echo(f"    {row['reason']}")
        if snaps:
            click.echo(f"    snapshots: {snaps}")


@main.command()
@click.option("--events", "count", type=click.IntRange(min=1), help="Finish by itself after N events.")
@click.option("--port", "admin_port", type=click.IntRange(0, 65535), default=8321, show_default=True,
              help="Admin/dashboard port (0: a free one).")
@click.option("--rate", type=float, help="Events per second the producer sends (default: 2000, or 1000 with --events).")
def demo(count, admin_port, rate) -> None:
    """Embedded broker + a drifting stream with an incident + the service; prints a summary at the end."""
    from stream.demo import run_demo

    run_demo(events=count, admin_port=admin_port, rate=rate)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    main()
