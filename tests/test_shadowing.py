"""The shadow admission policy (serving.shadowing), without Ray: shadow work starts only in the models'
idle time, at most `concurrency` at once, and stale or excess work is dropped, never queued without bound."""

from serving.shadowing import ShadowGate


def test_jobs_wait_while_a_model_answers_and_start_when_idle():
    gate = ShadowGate(capacity=10, concurrency=1, max_wait_s=5.0)
    assert gate.offer("a", now=0.0) and gate.offer("b", now=0.1)
    busy = gate.admit(now=0.2, answering=1)
    assert busy.start == [] and busy.expired == [] and gate.waiting == 2
    idle = gate.admit(now=0.3, answering=0)
    assert idle.start == [["a"]] and gate.running == 1 and gate.waiting == 1
    assert gate.admit(now=0.4, answering=0).start == []  # one in flight is the limit
    gate.finished()
    assert gate.admit(now=0.5, answering=0).start == [["b"]]


def test_concurrency_bounds_shadow_calls_in_flight():
    gate = ShadowGate(capacity=10, concurrency=3, max_wait_s=5.0)
    for job in "abcde":
        gate.offer(job, now=0.0)
    assert gate.admit(now=0.0, answering=0).start == [["a"], ["b"], ["c"]]
    assert gate.running == 3 and gate.waiting == 2


def test_a_full_queue_refuses_and_stale_jobs_expire_in_order():
    gate = ShadowGate(capacity=2, concurrency=1, max_wait_s=1.0)
    assert gate.offer("a", now=0.0) and gate.offer("b", now=0.8)
    assert not gate.offer("c", now=0.9)  # full: the caller drops it
    later = gate.admit(now=1.5, answering=2)
    assert later.expired == ["a"] and later.start == [] and gate.waiting == 1
    assert gate.admit(now=1.6, answering=0).start == [["b"]]
    assert gate.offer("d", now=1.7)


def test_a_zero_capacity_queue_drops_everything():
    gate = ShadowGate(capacity=0, concurrency=1, max_wait_s=1.0)
    assert not gate.offer("a", now=0.0)
    assert gate.admit(now=0.0, answering=0).start == []


def test_jobs_start_in_batches_when_full_or_when_the_oldest_has_waited():
    gate = ShadowGate(capacity=10, concurrency=1, max_wait_s=5.0, batch_size=3, batch_wait_s=0.5)
    gate.offer("a", now=0.0)
    gate.offer("b", now=0.1)
    assert gate.admit(now=0.2, answering=0).start == []  # two of three, the oldest 0.2 s old: wait
    assert gate.due_in(now=0.2) == 0.3
    gate.offer("c", now=0.3)
    assert gate.due_in(now=0.3) == 0.0
    assert gate.admit(now=0.3, answering=0).start == [["a", "b", "c"]]
    assert gate.due_in(now=0.3) is None
    gate.finished()
    gate.offer("d", now=1.0)
    assert gate.admit(now=1.4, answering=0).start == []
    assert gate.admit(now=1.5, answering=1).start == []  # due, but a model is answering
    assert gate.admit(now=1.6, answering=0).start == [["d"]]  # a partial batch once due


def test_batches_count_against_concurrency():
    gate = ShadowGate(capacity=10, concurrency=2, max_wait_s=5.0, batch_size=2)
    for job in "abcde":
        gate.offer(job, now=0.0)
    assert gate.admit(now=0.0, answering=0).start == [["a", "b"], ["c", "d"]]
    assert gate.running == 2 and gate.waiting == 1


def test_a_finished_batch_frees_one_slot_not_all():
    gate = ShadowGate(capacity=10, concurrency=2, max_wait_s=5.0)
    for job in "abcd":
        gate.offer(job, now=0.0)
    assert gate.admit(now=0.0, answering=0).start == [["a"], ["b"]]
    gate.finished()
    assert gate.running == 1
    assert gate.admit(now=0.1, answering=0).start == [["c"]]  # one still runs: one more, not two


def test_no_batch_wait_starts_a_partial_batch_at_once():
    # batch_wait_s 0 means "never hold a job back for company": offered and admitted in the same tick,
    # it starts then.
    gate = ShadowGate(capacity=10, concurrency=1, max_wait_s=5.0, batch_size=4, batch_wait_s=0.0)
    gate.offer("a", now=2.0)
    assert gate.due_in(now=2.0) == 0.0
    assert gate.admit(now=2.0, answering=0).start == [["a"]]
