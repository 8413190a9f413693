"""Imported at start-up by the worker processes tests/faults starts (their PYTHONPATH begins here): installs the
faults the test asked for in its environment (tests/faults/inject.py). Only those tests and bench/bench_poll.py (a slow
disk for its workers) put this folder on a path."""

import os

if any(key.startswith("STAGEBACKUP_TEST_") for key in os.environ):
    from tests.faults import inject

    inject.install()
