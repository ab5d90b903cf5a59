"""The model worker: one owner thread for every model call. Pure logic, no model."""

import gc
import threading
import weakref

import pytest

from rag.encoders.worker import BACKGROUND, ModelWorker
from tests.conftest import wait_until


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


def test_a_question_job_overtakes_every_waiting_background_job():
    worker = ModelWorker()
    started, release, order = threading.Event(), threading.Event(), []

    def background(i):
        if i == 0:
            started.set()
            release.wait(10)
        order.append(f"ingest {i}")

    jobs = [worker.submit(background, i, priority=BACKGROUND) for i in range(4)]
    assert started.wait(10)  # the first ingest job is running; three more wait
    question = worker.submit(lambda: order.append("question"))
    release.set()
    question.result(10)
    [j.result(10) for j in jobs]
    assert order == ["ingest 0", "question", "ingest 1", "ingest 2", "ingest 3"]
