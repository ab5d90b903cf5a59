"""The reader in a child process: the same answers as in the server's own process, rules passed along, and a
child that dies or cannot start never costs an answer. Real model, real index, real child processes."""

import contextlib
import os
import pickle
import signal
import time

import pytest

from rag.answer.readers.fitted import FittedReader
from rag.answer.readers.process import ReaderProcess
from rag.config import Settings
from rag.index.lexical import Analyzer
from rag.language import rules
from rag.pipeline import Pipeline
from rag.types import Article
from rag.wiring import fitted_reader
from tests.conftest import make_settings, wait_until

pytestmark = pytest.mark.slow  # the real model, and child processes

QUESTIONS = [
    "How much aid was announced?",
    "When did Harris land in Guatemala?",
    "Who is Andrew Selee?",
    "What is the capital of Mongolia?",
    "How many regional politicians were labeled as corrupt?",
]


def comparable(answer) -> dict:
    d = answer.to_dict()
    d.pop("timings_ms")
    return d


@pytest.fixture
def pipelines(bundled_index, embedder):
    here = Pipeline(make_settings(bundled_index, reader="fitted", reader_process=False), embedder=embedder)
    child = Pipeline(make_settings(bundled_index, reader="fitted", reader_process=True), embedder=embedder)
    assert isinstance(child.parts.reader, ReaderProcess) and not isinstance(here.parts.reader, ReaderProcess)
    child.warm_up()
    yield here, child
    child.parts.reader.close()


def test_a_question_alone_is_read_here_and_one_among_others_in_the_child(pipelines):
    _, child = pipelines
    reader = child.parts.reader
    child.ask(QUESTIONS[0])
    list(child.ask_stream(QUESTIONS[0]))
    assert reader.sent == 0, "nothing else wanted the GIL"
    with child.parts.in_flight.held():  # another question being answered meanwhile
        child.ask(QUESTIONS[0])
        list(child.ask_stream(QUESTIONS[0]))
    assert reader.sent == 2 and child.parts.in_flight.count == 0


def test_answers_are_the_same_as_read_in_the_servers_own_process(pipelines):
    here, child = pipelines
    with child.parts.in_flight.held():
        for q in QUESTIONS:
            assert comparable(child.ask(q)) == comparable(here.ask(q)), q
    assert child.parts.reader.sent == len(QUESTIONS)
    assert child.parts.reader.restarts == 0 and child.parts.reader.given_up is None
    assert (here.reader, child.reader) == ("fitted, in this process", "fitted, in a child process")


def test_healthz_says_where_questions_are_read(pipelines):
    from fastapi.testclient import TestClient

    from web.app import create_app

    _, child = pipelines
    with TestClient(create_app(pipeline=child)) as client:
        for _ in range(100):  # the warm-up runs in the background
            body = client.get("/healthz").json()
            if body.get("model") == "ready":
                break
            time.sleep(0.1)
    assert body["reader"] == "fitted, in a child process"


def test_rules_switched_off_for_a_question_are_off_in_the_child(pipelines):
    here, child = pipelines
    q = "When did Harris land in Guatemala?"
    prepared = here.prepare(here.request(q))

    def spans(reader):
        return [
            (s.text, s.kind, round(s.probability, 9)) for s in reader.read(prepared.analysis, prepared.evidence).spans
        ]

    in_flight = child.parts.in_flight
    with in_flight.held(), in_flight.held():  # two questions at once: the child reads
        with rules.disabled("answer-type"):
            off_here, off_child = spans(here.parts.reader), spans(child.parts.reader)
        on_here, on_child = spans(here.parts.reader), spans(child.parts.reader)
    assert child.parts.reader.sent == 2
    assert off_here != on_here, "the rule must change this reading for the test to show anything"
    assert off_child == off_here and on_child == on_here


def test_a_child_killed_between_questions_is_replaced(pipelines):
    here, child = pipelines
    reader = child.parts.reader
    expected = comparable(here.ask(QUESTIONS[0]))
    first = reader._process.pid
    os.kill(first, signal.SIGKILL)
    reader._process.join(5)
    with child.parts.in_flight.held():
        assert comparable(child.ask(QUESTIONS[0])) == expected
    assert (reader.deaths, reader.restarts, reader.given_up, reader.sent) == (1, 1, None, 1)
    assert reader._process.pid != first and reader._process.is_alive()


def sentences(reading) -> list:
    return [(s.text, s.probability) for s in reading.sentences]


def question_read_here(pipeline):
    """A prepared question, and its sentences as a reader in this process ranks them."""
    prepared = pipeline.prepare(pipeline.request(QUESTIONS[0]))
    expected = sentences(FittedReader(Analyzer()).read(prepared.analysis, prepared.evidence))
    assert expected
    return prepared, expected


class DyingReader(FittedReader):
    def read(self, question, evidence):
        os._exit(3)


def dying_factory():
    return DyingReader(Analyzer())


def test_a_child_dying_while_it_reads_costs_no_answer_and_is_given_up_after_three_deaths(bundled, caplog):
    reader = ReaderProcess(dying_factory, FittedReader(Analyzer()))
    reader.warm_up()
    prepared, expected = question_read_here(bundled)
    for deaths in (1, 2, 3):
        got = reader.read(prepared.analysis, prepared.evidence)  # read here, once the child died reading it
        assert sentences(got) == expected
        assert reader.deaths == deaths
    assert reader.restarts == 2 and reader._process is None
    assert reader.given_up == "the reader process died 3 times, the last time: EOFError"
    assert "this question is read here" in caplog.text
    assert sentences(reader.read(prepared.analysis, prepared.evidence)) == expected


class HangingReader(FittedReader):
    def read(self, question, evidence):
        time.sleep(3600)


def hanging_factory():
    return HangingReader(Analyzer())


def test_a_child_stuck_in_a_reading_is_killed_and_the_question_read_here(bundled, monkeypatch):
    from rag.answer.readers import process

    monkeypatch.setattr(process, "READ_TIMEOUT", 1.0)
    reader = ReaderProcess(hanging_factory, FittedReader(Analyzer()))
    reader.warm_up()
    stuck = reader._process
    prepared, expected = question_read_here(bundled)
    started = time.monotonic()
    got = reader.read(prepared.analysis, prepared.evidence)
    assert sentences(got) == expected
    assert time.monotonic() - started < 10 and reader.deaths == 1 and not stuck.is_alive()
    reader.close()


def broken_factory():
    raise RuntimeError("no reader here")


def test_a_child_that_cannot_build_its_reader_is_given_up_and_questions_are_read_here(bundled, caplog):
    reader = ReaderProcess(broken_factory, FittedReader(Analyzer()))
    reader.warm_up()
    assert "could not build its reader: RuntimeError: no reader here" in reader.given_up
    assert reader.where.startswith("in this process (the reader process could not build its reader")
    assert "read in the server's own process from now on" in caplog.text
    prepared, expected = question_read_here(bundled)
    assert sentences(reader.read(prepared.analysis, prepared.evidence)) == expected


def test_the_web_app_reads_in_a_child_on_two_cores_unless_told_not_to(tmp_path, monkeypatch):
    """The fitted reader only: the span reader's model computes off the GIL, on the model worker."""
    from rag.answer.readers.span import SpanReader
    from web.app import create_app

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    auto = create_app(Settings(_env_file=None, index_dir=tmp_path, reader="fitted"))
    assert isinstance(auto.state.pipeline.parts.reader, ReaderProcess)
    assert auto.state.settings.reader_process is True
    off = create_app(Settings(_env_file=None, index_dir=tmp_path, reader="fitted", reader_process=False))
    assert isinstance(off.state.pipeline.parts.reader, FittedReader)
    spans = create_app(Settings(_env_file=None, index_dir=tmp_path, reader="span"))
    assert isinstance(spans.state.pipeline.parts.reader, SpanReader)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    one_core = create_app(Settings(_env_file=None, index_dir=tmp_path, reader="fitted"))
    assert isinstance(one_core.state.pipeline.parts.reader, FittedReader)
    # the CLI and the eval
    assert not isinstance(Pipeline(make_settings(tmp_path, reader="fitted")).parts.reader, ReaderProcess)


def test_a_stopped_child_holds_no_question_past_its_deadline_and_is_replaced(bundled, monkeypatch):
    """SIGSTOP the child while several questions, each larger than a pipe holds, are asked at once: each is
    answered within the deadlines (sending, waiting for the pipe, waiting for the reading), the stopped child is
    replaced, and the reader says it is stuck meanwhile."""
    from concurrent.futures import ThreadPoolExecutor

    from rag.answer.readers import process

    monkeypatch.setattr(process, "READ_TIMEOUT", 1.0)
    reader = ReaderProcess(fitted_reader, FittedReader(Analyzer()))
    reader.warm_up()
    stopped = reader._process
    prepared, expected = question_read_here(bundled)
    big = prepared.evidence
    big.articles["padding"] = Article(id="padding", title="", text="x" * 200_000)
    assert len(pickle.dumps((prepared.analysis, big))) > process.PIPE_BUFFER
    os.kill(stopped.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            seen_stuck = pool.submit(lambda: wait_until(lambda: reader.stuck, 5))
            got = list(pool.map(lambda _: reader.read(prepared.analysis, big), range(4)))
        elapsed = time.monotonic() - started
        assert all(sentences(g) == expected for g in got)
        assert elapsed < 8, f"questions waited {elapsed:.1f} s behind a stopped child"
        assert seen_stuck.result() and not reader.stuck
        assert reader.deaths == 1 and not stopped.is_alive()
        assert sentences(reader.read(prepared.analysis, prepared.evidence)) == expected
        assert reader._process is not None and reader._process.pid != stopped.pid and reader.sent >= 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stopped.pid, signal.SIGKILL)
        reader.close()
