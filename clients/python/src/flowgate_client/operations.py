"""Turns each `calls` builder into a client method with the builder's own typed signature.

`FlowgateClient.get_run(run_id)` is `calls.get_run(run_id)` sent by that client; writing the
method once here for the blocking client and once for the asyncio one keeps every signature,
default and docstring in exactly one place (`calls`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from flowgate_client.calls import Call

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")
H = TypeVar("H")


class Sender(Protocol):
    def send(self, call: Call[Any]) -> Any: ...


class AsyncSender(Protocol):
    async def send(self, call: Call[Any]) -> Any: ...


def operation(builder: Callable[P, Call[T]]) -> Callable[Concatenate[Any, P], T]:
    """A method of the blocking client: build the call, send it, return the parsed answer."""

    @wraps(builder)
    def method(self: Sender, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.send(builder(*args, **kwargs))

    return method


def async_operation(builder: Callable[P, Call[T]]) -> Callable[Concatenate[Any, P], Awaitable[T]]:
    """A coroutine method of the asyncio client, as `operation`."""

    @wraps(builder)
    async def method(self: AsyncSender, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(builder(*args, **kwargs))

    return method


def handle_operation(
    builder: Callable[P, Call[R]], handle: Callable[[Any, R], H]
) -> Callable[Concatenate[Any, P], H]:
    """A method that sends the call and wraps its answer in a handle (e.g. `Approval`)."""

    @wraps(builder)
    def method(self: Sender, *args: P.args, **kwargs: P.kwargs) -> H:
        return handle(self, self.send(builder(*args, **kwargs)))

    return method


def async_handle_operation(
    builder: Callable[P, Call[R]], handle: Callable[[Any, R], H]
) -> Callable[Concatenate[Any, P], Awaitable[H]]:
    """The coroutine form of `handle_operation`."""

    @wraps(builder)
    async def method(self: AsyncSender, *args: P.args, **kwargs: P.kwargs) -> H:
        return handle(self, await self.send(builder(*args, **kwargs)))

    return method
