"""What starting a local service on loopback needs (the UI, a broker, workers): a free port, children that obey
SIGINT/SIGTERM, and the GraphQL query a launcher polls a backfill with."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

HOST = "127.0.0.1"

BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs { runId status tags { key value } } error { message } }
    ... on PythonError { message }
  }
}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def default_signals() -> None:
    """``preexec_fn`` of a child: a parent started in the background may ignore SIGINT/SIGTERM; the child must not,
    or it cannot be stopped."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stop_group(process: subprocess.Popen, stop_signal: int = signal.SIGTERM, grace_s: float = 30.0) -> None:
    """``stop_signal`` to the child's process group (``dg dev`` stops its own children on SIGINT), SIGKILL to
    what is left after the grace period."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, stop_signal)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # children that survived (celery's pool, dg dev's servers)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)
