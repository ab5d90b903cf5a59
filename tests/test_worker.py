"""The model worker: one owner thread for every model call. Pure logic, no model."""

import gc
import threading
import weakref

import pytest

from rag.worker import ModelWorker

from .conftest import wait_until


class Payload:
    """Stands for a job's argument that holds memory, such as an ingest encoder."""


def test_jobs_run_on_one_thread_in_order_and_raise_in_the_caller():
    worker = ModelWorker()
    seen = []
    futures = [worker.submit(lambda i: seen.append((i, threading.current_thread().name)) or i, i) for i in range(5)]
    assert [f.result(10) for f in futures] == list(range(5))
    assert [i for i, _ in seen] == list(range(5)) and {name for _, name in seen} == {"model-worker"}
    with pytest.raises(ValueError, match="bad input"):
        worker.run(lambda: (_ for _ in ()).throw(ValueError("bad input")))


def test_a_finished_job_keeps_nothing_of_its_arguments_alive():
    worker = ModelWorker()
    payload = Payload()
    ref = weakref.ref(payload)
    worker.run(lambda p: None, payload)
    del payload
    # The result is handed over before the worker lets go of the job, so give it a moment.
    assert wait_until(lambda: gc.collect() >= 0 and ref() is None), "the worker still holds the last job's arguments"
