"""Imported at start-up by the worker processes tests/faults starts (their PYTHONPATH begins here): installs the
faults the test asked for in its environment (tests/faults/inject.py). Nothing else ever puts this folder on a path."""

import os

if any(key.startswith("STAGEBACKUP_TEST_") for key in os.environ):
    from tests.faults import inject

    inject.install()
