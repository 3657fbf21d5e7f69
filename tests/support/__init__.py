"""Test-only helpers: a real Celery worker subprocess (`worker.CeleryWorker`), `wait_for`."""

from tests.support.wait import wait_for
from tests.support.worker import CeleryWorker

__all__ = ["CeleryWorker", "wait_for"]
