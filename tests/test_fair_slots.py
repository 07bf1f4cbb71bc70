"""Worker slots go to the requests that have waited longest."""

from __future__ import annotations

import threading
import time

from analyzer.service.slots import FairSlots


def test_a_freed_slot_goes_to_the_longest_waiter():
    slots = FairSlots(1)
    assert slots.acquire(timeout=1)
    order: list[int] = []
    lock = threading.Lock()

    def wait_then_work(i: int) -> None:
        assert slots.acquire(timeout=30)
        with lock:
            order.append(i)
        time.sleep(0.01)
        slots.release()

    threads = []
    for i in range(8):  # arrive one after another while the slot is held
        thread = threading.Thread(target=wait_then_work, args=(i,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5
        while len(slots.waiting) < i + 1:
            assert time.monotonic() < deadline
            time.sleep(0.001)
    slots.release()
    for thread in threads:
        thread.join(30)
    assert order == list(range(8))


def test_a_waiter_that_times_out_leaves_the_line():
    slots = FairSlots(1)
    assert slots.acquire(timeout=1)
    started = time.monotonic()
    assert slots.acquire(timeout=0.2) is False
    assert 0.15 < time.monotonic() - started < 5 and not slots.waiting
    slots.release()
    assert slots.acquire(timeout=0.1)  # the line is not blocked by the one who left
