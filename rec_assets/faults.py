"""Fault injection for the crash tests: ``crash_point(name)`` kills this process with SIGKILL when
``REC_CRASH_AT`` names that point (exactly, or its prefix before a ``:``), and does nothing otherwise.

The points sit where a write is half done (inside a transaction after its delete, between an artifact's
retirement and its replacement, after a checkpoint's temporary file is written), so the tests in
``rec_assets_tests/test_faults.py`` prove what survives a crash there. Read at call time, never at import.
"""

from __future__ import annotations

import os
import signal

CRASH_AT_ENV = "REC_CRASH_AT"


def crash_point(name: str) -> None:
    wanted = os.environ.get(CRASH_AT_ENV)
    if wanted and (name == wanted or name.startswith(wanted + ":")):
        os.kill(os.getpid(), signal.SIGKILL)
