"""IdleSlot: opened once, dropped when idle, never under a user. Pure logic, with a stand-in for the object."""

from __future__ import annotations

import threading
import time

from rag.encoders.idle_slot import IdleSlot
from tests.conftest import wait_until


class Opener:
    """Counts its calls; each open gives a new object, or None to say there is none."""

    def __init__(self, gives: bool = True, seconds: float = 0.0) -> None:
        self.calls = 0
        self.gives = gives
        self.seconds = seconds

    def __call__(self):
        self.calls += 1
        time.sleep(self.seconds)
        return object() if self.gives else None


def test_opened_once_however_many_ask_at_once():
    opener = Opener(seconds=0.2)
    slot = IdleSlot(opener)
    got = []
    threads = [threading.Thread(target=lambda: got.append(slot.get())) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opener.calls == 1 and len({id(g) for g in got}) == 1 and got[0] is slot.value


def test_nothing_to_open_is_remembered_and_never_dropped():
    opener = Opener(gives=False)
    slot = IdleSlot(opener, idle_seconds=0.05)
    assert slot.hold() is None and slot.get() is None
    time.sleep(0.15)
    assert slot.get() is None and opener.calls == 1


def test_dropped_after_idle_and_opened_anew():
    opener = Opener()
    slot = IdleSlot(opener, idle_seconds=0.1)
    first = slot.hold()
    slot.let_go()
    assert slot.value is first
    assert wait_until(lambda: slot.value is None)
    second = slot.hold()
    slot.let_go()
    assert second is not first and opener.calls == 2


def test_never_dropped_while_held_and_dropped_after_the_last_let_go():
    slot = IdleSlot(Opener(), idle_seconds=0.05)
    first = slot.hold()
    slot.let_go()  # arms the timer
    held = slot.hold()
    time.sleep(0.25)  # the timer has fired, several idle periods over
    assert slot.value is first is held
    slot.let_go()
    assert wait_until(lambda: slot.value is None)


def test_a_use_resets_the_wait():
    slot = IdleSlot(Opener(), idle_seconds=0.3)
    value = slot.hold()
    slot.let_go()
    for _ in range(4):  # a use every 0.15 s keeps it past 0.6 s
        time.sleep(0.15)
        slot.hold()
        slot.let_go()
    assert slot.value is value
    assert wait_until(lambda: slot.value is None)


def test_idle_zero_keeps_it():
    slot = IdleSlot(Opener(), idle_seconds=0)
    value = slot.hold()
    slot.let_go()
    time.sleep(0.1)
    assert slot.value is value
