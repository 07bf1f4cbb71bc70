"""A fixed number of slots handed out first come, first served.

``threading.Semaphore`` wakes an arbitrary waiter when a slot frees, so under load a request could wait
its whole ``worker_slot_wait_s`` while later ones went ahead. :class:`FairSlots` queues the waiters and
gives a freed slot to the one that has waited longest.
"""

from __future__ import annotations

import collections
import threading
import time


class FairSlots:
    def __init__(self, count: int) -> None:
        self.free = count
        self.cond = threading.Condition()
        self.waiting: collections.deque[object] = collections.deque()

    def acquire(self, timeout: float) -> bool:
        """Take a slot within ``timeout`` seconds, in arrival order; False when none came."""
        ticket = object()
        deadline = time.monotonic() + timeout
        with self.cond:
            self.waiting.append(ticket)
            try:
                while not (self.free > 0 and self.waiting[0] is ticket):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self.cond.wait(left)
                self.free -= 1
                return True
            finally:
                self.waiting.remove(ticket)
                self.cond.notify_all()  # the next in line may now be first

    def release(self) -> None:
        with self.cond:
            self.free += 1
            self.cond.notify_all()
