"""Operations of several steps, written once for the sync and the asyncio client.

A plan is a generator that yields steps and receives their results: a `Call` to send, a `Sleep`,
an `Apply` of the caller's function, or a `RunIn` (the caller's function inside a transaction).
`run_plan` executes steps with blocking calls, `arun_plan` with coroutines; an error of a step is
thrown back into the plan, which handles it or lets it propagate. So a retry loop such as
`update_with_optimistic_lock` exists once and the two clients cannot drift apart.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from db4client._wire import Call

T = TypeVar("T")


@dataclass(frozen=True)
class Sleep:
    """Wait this many seconds."""

    seconds: float


@dataclass(frozen=True)
class Apply:
    """Call the caller's `fn(arg)` (awaited by the async runner when it returns an awaitable)."""

    fn: Callable[[Any], Any]
    arg: Any


@dataclass(frozen=True)
class RunIn:
    """Run `fn(tx)` inside `with tx` (`async with` and awaited by the async runner): the
    transaction commits when fn returns, is discarded when it raises."""

    tx: Any
    fn: Callable[[Any], Any]


Step = Call[Any] | Sleep | Apply | RunIn
Plan = Generator[Step, Any, T]


class _Invokes(Protocol):
    def _invoke(self, call: Call[T]) -> T: ...


class _InvokesAsync(Protocol):
    def _invoke(self, call: Call[T]) -> Awaitable[T]: ...


def run_plan(client: _Invokes, plan: Plan[T]) -> T:
    """Execute a plan with blocking calls; its return value."""
    value: Any = None
    error: Exception | None = None
    while True:
        try:
            step = plan.throw(error) if error is not None else plan.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            value = _run_step(client, step)
        except Exception as err:  # noqa: BLE001  # the plan decides what it handles
            error = err


def _run_step(client: _Invokes, step: Step) -> Any:
    if isinstance(step, Call):
        return client._invoke(step)
    if isinstance(step, Sleep):
        time.sleep(step.seconds)
        return None
    if isinstance(step, Apply):
        return step.fn(step.arg)
    with step.tx:
        return step.fn(step.tx)


async def arun_plan(client: _InvokesAsync, plan: Plan[T]) -> T:
    """Execute a plan with coroutines; its return value."""
    value: Any = None
    error: Exception | None = None
    while True:
        try:
            step = plan.throw(error) if error is not None else plan.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        try:
            value = await _arun_step(client, step)
        except Exception as err:  # noqa: BLE001  # the plan decides what it handles
            error = err


async def _arun_step(client: _InvokesAsync, step: Step) -> Any:
    if isinstance(step, Call):
        return await client._invoke(step)
    if isinstance(step, Sleep):
        await asyncio.sleep(step.seconds)
        return None
    if isinstance(step, Apply):
        return await _maybe_await(step.fn(step.arg))
    async with step.tx:
        return await _maybe_await(step.fn(step.tx))


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
