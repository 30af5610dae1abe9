"""Restarts by policy, backoff in virtual time, escalation, no message lost."""

from __future__ import annotations

import pytest
import trio

from actors import (
    Actor,
    ActorFailed,
    ActorStopped,
    ActorSystem,
    Directive,
    Escalation,
    RestartPolicy,
)


class Flaky(Actor):
    """Counts; fails on "boom"; records every incarnation's start time."""

    def __init__(self, starts: list, handled: list | None = None) -> None:
        self.starts = starts
        self.handled = handled if handled is not None else []
        self.count = 0

    async def on_start(self) -> None:
        self.starts.append(trio.current_time())

    async def receive(self, message):
        if message == "boom":
            raise RuntimeError("boom")
        if message == "count":
            return self.count
        self.count += 1
        self.handled.append(message)
        return self.count


async def test_a_failure_restarts_the_actor_with_fresh_state(autojump_clock):
    starts: list = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Flaky(starts))
        await ref.ask("a")
        await ref.ask("b")
        assert await ref.ask("count") == 2
        with pytest.raises(RuntimeError):
            await ref.ask("boom")
        assert await ref.ask("count") == 0  # a new instance
        assert len(starts) == 2


async def test_messages_waiting_behind_a_failure_are_not_lost(autojump_clock):
    starts: list = []
    handled: list = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Flaky(starts, handled))
        for message in ["m1", "boom", "m2", "m3"]:
            await ref.tell(message)
        await ref.ask("count")
    assert handled == ["m1", "m2", "m3"]
    assert len(starts) == 2


async def test_backoff_schedule_is_exact_in_virtual_time(autojump_clock):
    starts: list = []
    policy = RestartPolicy(max_restarts=3, within=100, backoff=1.0, factor=2.0, max_backoff=3.0)
    async with ActorSystem(policy=policy, escalation=Escalation.STOP_CHILD) as system:
        ref = system.spawn(lambda: Flaky(starts))
        t0 = trio.current_time()
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await ref.ask("boom")
            await ref.ask("count")  # waits for the restart
    # restarts after 1 s, 2 s, then capped at 3 s
    assert [round(t - t0, 6) for t in starts] == [0, 1.0, 3.0, 6.0]


async def test_exceeding_the_restart_limit_escalates_out_of_the_system(autojump_clock):
    starts: list = []
    policy = RestartPolicy(max_restarts=2, within=10, backoff=0)
    with pytest.raises(ActorFailed, match="exceeded 2 restart"):
        async with ActorSystem(policy=policy) as system:
            ref = system.spawn(lambda: Flaky(starts))
            for _ in range(3):
                with pytest.raises(RuntimeError):
                    await ref.ask("boom")
            await trio.sleep_forever()  # the escalation cancels the body
    assert len(starts) == 3


async def test_restarts_outside_the_window_do_not_accumulate(autojump_clock):
    starts: list = []
    policy = RestartPolicy(max_restarts=2, within=10, backoff=0)
    async with ActorSystem(policy=policy) as system:
        ref = system.spawn(lambda: Flaky(starts))
        for _ in range(6):
            with pytest.raises(RuntimeError):
                await ref.ask("boom")
            await trio.sleep(6)  # at most 2 failures in any 10 s window
        assert await ref.ask("count") == 0
    assert len(starts) == 7


async def test_waiting_askers_get_actor_failed_when_it_gives_up(autojump_clock):
    policy = RestartPolicy(max_restarts=0, within=10)
    results: list = []
    async with ActorSystem(policy=policy, escalation=Escalation.STOP_CHILD) as system:
        ref = system.spawn(lambda: Flaky([]))

        async def ask_and_record(message):
            try:
                results.append(await ref.ask(message))
            except Exception as exc:  # noqa: BLE001 - recording what the asker saw
                results.append(type(exc))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask_and_record, "boom")
            await trio.sleep(0)
            nursery.start_soon(ask_and_record, "after")
    assert results == [RuntimeError, ActorFailed]


async def test_stop_child_escalation_keeps_siblings_running(autojump_clock):
    policy = RestartPolicy(max_restarts=0, within=10)
    async with ActorSystem(policy=policy, escalation=Escalation.STOP_CHILD) as system:
        bad = system.spawn(lambda: Flaky([]))
        good = system.spawn(lambda: Flaky([]))
        with pytest.raises(RuntimeError):
            await bad.ask("boom")
        await trio.sleep(1)
        assert not bad.is_alive
        with pytest.raises(ActorStopped):
            await bad.tell("x")
        assert await good.ask("x") == 1


async def test_nested_supervisor_escalates_to_its_parent(autojump_clock):
    policy = RestartPolicy(max_restarts=0, within=10)
    async with ActorSystem(policy=policy, escalation=Escalation.STOP_CHILD) as system:
        outside = system.spawn(lambda: Flaky([]))
        team = await system.start_supervisor("team", escalation=Escalation.RAISE)
        member_a = team.spawn(lambda: Flaky([]))
        member_b = team.spawn(lambda: Flaky([]))
        await member_b.ask("x")
        with pytest.raises(RuntimeError):
            await member_a.ask("boom")
        await trio.sleep(1)
        # The whole team went down with its failing member...
        assert not member_b.is_alive and team.finished.is_set()
        # ...and the root, set to STOP_CHILD, kept everything else.
        assert await outside.ask("y") == 1


async def test_resume_directive_keeps_state():
    policy = RestartPolicy(decide=lambda exc: Directive.RESUME)
    starts: list = []
    async with ActorSystem(policy=policy) as system:
        ref = system.spawn(lambda: Flaky(starts))
        await ref.ask("a")
        with pytest.raises(RuntimeError):
            await ref.ask("boom")
        assert await ref.ask("count") == 1
    assert len(starts) == 1


async def test_stop_directive_stops_without_escalating(autojump_clock):
    policy = RestartPolicy(decide=lambda exc: Directive.STOP)
    async with ActorSystem(policy=policy) as system:
        ref = system.spawn(lambda: Flaky([]))
        with pytest.raises(RuntimeError):
            await ref.ask("boom")
        await trio.sleep(1)
        assert not ref.is_alive


async def test_a_crash_in_the_actors_own_nursery_restarts_it(autojump_clock):
    starts: list = []

    class WithHelper(Actor):
        async def on_start(self):
            starts.append(trio.current_time())
            self.nursery.start_soon(self._helper)

        async def _helper(self):
            await trio.sleep(5)
            if len(starts) == 1:
                raise ValueError("helper died")
            await trio.sleep_forever()

        async def receive(self, message):
            return len(starts)

    async with ActorSystem() as system:
        ref = system.spawn(WithHelper)
        assert await ref.ask("n") == 1
        await trio.sleep(6)
        assert await ref.ask("n") == 2


async def test_on_start_failure_counts_as_a_failure(autojump_clock):
    attempts: list = []

    class BadStart(Actor):
        async def on_start(self):
            attempts.append(1)
            if len(attempts) < 3:
                raise OSError("not yet")

        async def receive(self, message):
            return "ok"

    async with ActorSystem(policy=RestartPolicy(max_restarts=5, backoff=0.5)) as system:
        ref = system.spawn(BadStart)
        assert await ref.ask("hi") == "ok"
    assert len(attempts) == 3


async def test_on_stop_runs_on_restart_and_on_stop(autojump_clock):
    events: list = []

    class Hooks(Actor):
        async def on_start(self):
            events.append("start")

        async def on_stop(self):
            await trio.sleep(0.1)  # an await in on_stop is fine
            events.append("stop")

        async def receive(self, message):
            if message == "boom":
                raise RuntimeError
            return message

    async with ActorSystem() as system:
        ref = system.spawn(Hooks)
        with pytest.raises(RuntimeError):
            await ref.ask("boom")
        await ref.ask("x")
    assert events == ["start", "stop", "start", "stop"]
