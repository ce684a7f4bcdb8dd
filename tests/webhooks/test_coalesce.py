"""Coalescing bursts into batches of up to 200 records, with a fake clock (and once with the real timer)."""

from __future__ import annotations

import threading
import time

import pytest

from circuit_host.webhooks import Change, CoalesceKey, Coalescer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1000


class Sink:
    def __init__(self) -> None:
        self.batches: list[tuple[CoalesceKey, list[Change]]] = []
        self.lock = threading.Lock()

    def __call__(self, key: CoalesceKey, changes: list[Change]) -> None:
        with self.lock:
            self.batches.append((key, changes))

    def sizes(self) -> list[int]:
        return [sum(len(c.records) for c in changes) for _, changes in self.batches]


def change(n: int = 1, obj: str = "Contact", action: str = "insert", webhook_id: str | None = None) -> Change:
    return Change(
        webhook_id=webhook_id,
        occurred_at=None,
        object=obj,
        action=action,  # type: ignore[arg-type]
        records=[{"LastName": f"L{i}"} for i in range(n)],
    )


def coalescer(window_ms: float, sink: Sink, clock: Clock, max_records: int = 200) -> Coalescer:
    return Coalescer(window_ms, max_records, sink, clock=clock, background=False)


def test_changes_within_the_window_flush_together_when_it_ends() -> None:
    sink, clock = Sink(), Clock()
    c = coalescer(50, sink, clock)
    c.add("acme", "production", change(webhook_id="a"))
    clock.advance(30)
    c.add("acme", "production", change(2, webhook_id="b"))
    clock.advance(19)
    assert c.flush_due() == 0 and sink.batches == []
    assert c.pending_records() == 3
    clock.advance(1)  # 50 ms after the first change
    assert c.flush_due() == 1
    [(key, changes)] = sink.batches
    assert key == CoalesceKey("acme", "production", "Contact", "insert")
    assert [ch.webhook_id for ch in changes] == ["a", "b"]
    assert c.pending_records() == 0


def test_a_change_after_the_window_starts_a_new_batch() -> None:
    sink, clock = Sink(), Clock()
    c = coalescer(50, sink, clock)
    c.add("acme", "production", change())
    clock.advance(50)
    c.flush_due()
    c.add("acme", "production", change())
    clock.advance(49)
    c.flush_due()
    assert sink.sizes() == [1]
    clock.advance(1)
    c.flush_due()
    assert sink.sizes() == [1, 1]


def test_keys_are_tenant_env_object_and_action() -> None:
    sink, clock = Sink(), Clock()
    c = coalescer(50, sink, clock)
    c.add("acme", "production", change())
    c.add("acme", "production", change(action="update"))
    c.add("acme", "staging", change())
    c.add("beta", "production", change())
    c.add("acme", "production", change(obj="Task"))
    c.add("acme", "production", change())
    clock.advance(50)
    assert c.flush_due() == 5
    assert sorted(sink.sizes()) == [1, 1, 1, 1, 2]


def test_the_200_cap_flushes_at_once_and_never_splits_a_change_that_fits() -> None:
    sink, clock = Sink(), Clock()
    c = coalescer(1000, sink, clock)
    c.add("acme", "production", change(150, webhook_id="a"))
    c.add("acme", "production", change(50, webhook_id="b"))  # exactly 200: flushed now, no waiting
    assert sink.sizes() == [200]
    c.add("acme", "production", change(120, webhook_id="c"))
    c.add("acme", "production", change(100, webhook_id="d"))  # would be 220: "c" goes alone, "d" waits
    assert sink.sizes() == [200, 120]
    assert c.pending_records() == 100
    c.close()
    assert sink.sizes() == [200, 120, 100]
    assert [[ch.webhook_id for ch in changes] for _, changes in sink.batches] == [["a", "b"], ["c"], ["d"]]


def test_a_change_over_the_cap_is_cut_into_chunks_of_200() -> None:
    sink, clock = Sink(), Clock()
    c = coalescer(1000, sink, clock)
    c.add("acme", "production", change(30))
    big = change(450, webhook_id="big")
    c.add("acme", "production", big)
    assert sink.sizes() == [30, 200, 200]
    assert c.pending_records() == 50
    c.close()
    chunks = [changes[0] for _, changes in sink.batches[1:]]
    assert all(ch.webhook_id == "big" for ch in chunks)
    assert [r for ch in chunks for r in ch.records] == big.records  # order kept, nothing lost


def test_max_records_is_configurable() -> None:
    sink, clock = Sink(), Clock()
    c = coalescer(1000, sink, clock, max_records=3)
    for _ in range(7):
        c.add("acme", "production", change())
    assert sink.sizes() == [3, 3]
    c.close()
    assert sink.sizes() == [3, 3, 1]


def test_window_zero_flushes_immediately_in_the_caller() -> None:
    sink = Sink()
    seen: list[threading.Thread] = []

    def flush(key: CoalesceKey, changes: list[Change]) -> None:
        seen.append(threading.current_thread())
        sink(key, changes)

    c = Coalescer(0, 200, flush)
    c.add("acme", "production", change())
    c.add("acme", "production", change())
    assert sink.sizes() == [1, 1] and seen == [threading.current_thread()] * 2
    c.close()


def test_close_flushes_everything_and_refuses_more() -> None:
    sink, clock = Sink(), Clock()
    c = coalescer(10_000, sink, clock)
    c.add("acme", "production", change(3))
    c.add("beta", "dev", change(4))
    c.close()
    assert sorted(sink.sizes()) == [3, 4]
    with pytest.raises(RuntimeError, match="closed"):
        c.add("acme", "production", change())
    c.close()  # idempotent


def test_a_failing_flush_is_logged_and_does_not_stop_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    sink, clock = Sink(), Clock()
    calls: list[str] = []

    def flaky(key: CoalesceKey, changes: list[Change]) -> None:
        calls.append(key.tenant)
        if key.tenant == "acme":
            raise RuntimeError("database down")
        sink(key, changes)

    c = Coalescer(50, 200, flaky, clock=clock, background=False)
    c.add("acme", "production", change())
    c.add("beta", "production", change())
    clock.advance(50)
    c.flush_due()
    assert sorted(calls) == ["acme", "beta"] and sink.sizes() == [1]
    assert "webhook batch flush failed" in caplog.text


def test_a_flush_may_add_more_changes() -> None:
    sink, clock = Sink(), Clock()
    holder: list[Coalescer] = []

    def cascade(key: CoalesceKey, changes: list[Change]) -> None:
        sink(key, changes)
        if key.object == "Contact":
            holder[0].add(key.tenant, key.env, change(obj="Task"))

    c = Coalescer(0, 200, cascade, clock=clock, background=False)
    holder.append(c)
    c.add("acme", "production", change())
    assert [k.object for k, _ in sink.batches] == ["Contact", "Task"]


def test_batches_of_one_key_are_delivered_in_order_and_never_concurrently() -> None:
    delivered: list[int] = []
    active = 0
    overlap = False
    lock = threading.Lock()

    def slow(key: CoalesceKey, changes: list[Change]) -> None:
        nonlocal active, overlap
        with lock:
            active += 1
            overlap |= active > 1
        time.sleep(0.001)
        delivered.extend(int(ch.webhook_id or 0) for ch in changes)
        with lock:
            active -= 1

    c = Coalescer(0, 200, slow)
    counter = iter(range(1_000_000))
    counter_lock = threading.Lock()

    def producer() -> None:
        for _ in range(25):
            with counter_lock:  # ids are taken and added in one order
                c.add("acme", "production", change(webhook_id=str(next(counter))))

    threads = [threading.Thread(target=producer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.close()
    assert not overlap
    assert delivered == list(range(100))


def test_the_background_timer_flushes_when_the_window_ends() -> None:
    done = threading.Event()
    sink = Sink()

    def flush(key: CoalesceKey, changes: list[Change]) -> None:
        sink(key, changes)
        done.set()

    with Coalescer(30, 200, flush) as c:
        start = time.monotonic()
        c.add("acme", "production", change(webhook_id="a"))
        c.add("acme", "production", change(webhook_id="b"))
        assert done.wait(5), "the timer never flushed"
        elapsed = time.monotonic() - start
        assert elapsed >= 0.029
        assert sink.sizes() == [2]


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="flush"):
        Coalescer(10)
    with pytest.raises(ValueError):
        Coalescer(-1, 200, Sink())
    with pytest.raises(ValueError):
        Coalescer(10, 0, Sink())
