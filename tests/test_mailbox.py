import threading
import time

import pytest

from livematte.mailbox import Mailbox, MailboxClosed


def test_newest_item_wins_and_replacements_are_counted():
    box = Mailbox()
    for i in range(5):
        assert box.put(i)
    assert box.get(timeout=0) == 4
    assert box.dropped == 4
    assert box.get(timeout=0) is None


def test_lossless_producer_waits_for_the_consumer():
    box = Mailbox(lossless=True)
    got = []

    def produce():
        for i in range(50):
            box.put(i)
        box.close()

    thread = threading.Thread(target=produce)
    thread.start()
    while True:
        try:
            item = box.get(timeout=5)
        except MailboxClosed:
            break
        got.append(item)
    thread.join()
    assert got == list(range(50))
    assert box.dropped == 0


def test_last_item_survives_close_then_closed_is_raised():
    box = Mailbox()
    box.put("last")
    box.close()
    assert box.get() == "last"
    with pytest.raises(MailboxClosed):
        box.get()


def test_producer_error_reaches_the_consumer():
    box = Mailbox()
    box.close(ValueError("decoder broke"))
    with pytest.raises(MailboxClosed) as err:
        box.get()
    assert isinstance(err.value.__cause__, ValueError)


def test_discard_releases_a_blocked_lossless_producer():
    box = Mailbox(lossless=True)
    box.put(1)
    result = []
    thread = threading.Thread(target=lambda: result.append(box.put(2)))
    thread.start()
    time.sleep(0.05)
    box.discard()
    thread.join(timeout=5)
    assert result == [False]
    assert not thread.is_alive()
