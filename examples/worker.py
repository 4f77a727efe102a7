"""Async workers that trigger SuprSend workflows.

1. ``run_anyio_worker``: a plain anyio worker reading jobs from a stream, several at a time.
2. ``broker``: a taskiq broker whose tasks share one client, created when the worker starts.
   The in-memory broker runs tasks in-process (for tests and this example); in production swap
   it for a real broker (Redis, RabbitMQ...) and start workers with ``taskiq worker``.

A module to import into your worker, not a script: it needs ``pip install taskiq`` for the
broker part. ``tests/test_examples.py`` runs both workers against the emulator.
"""

from __future__ import annotations

from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream
from taskiq import Context, InMemoryBroker, TaskiqDepends, TaskiqEvents, TaskiqState

from suprsend_async import AsyncSuprsend, TriggerResponse, WorkflowTriggerRequest

# -- 1. a plain anyio worker -------------------------------------------------------------


async def run_anyio_worker(
    jobs: ObjectReceiveStream[dict[str, Any]], *, parallel: int = 8
) -> list[TriggerResponse]:
    """Trigger one workflow per job until the stream closes; ``parallel`` at a time."""
    results: list[TriggerResponse] = []
    limiter = anyio.CapacityLimiter(parallel)

    async with AsyncSuprsend() as client:

        async def handle(job: dict[str, Any]) -> None:
            async with limiter:
                result = await client.workflows.trigger(
                    WorkflowTriggerRequest(
                        {
                            "workflow": job["workflow"],
                            "recipients": [job["user_id"]],
                            "data": job.get("data", {}),
                        },
                        idempotency_key=job["job_id"],  # a redelivered job is not sent twice
                    )
                )
                results.append(result)

        async with anyio.create_task_group() as tg, jobs:
            async for job in jobs:
                tg.start_soon(handle, job)
    return results


# -- 2. a taskiq worker --------------------------------------------------------------------

broker = InMemoryBroker()


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def open_client(state: TaskiqState) -> None:
    state.suprsend = AsyncSuprsend()


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def close_client(state: TaskiqState) -> None:
    await state.suprsend.aclose()


@broker.task
async def send_welcome(user_id: str, email: str, context: Context = TaskiqDepends()) -> str:
    client: AsyncSuprsend = context.state.suprsend
    result = await client.workflows.trigger(
        WorkflowTriggerRequest(
            {"workflow": "welcome", "recipients": [{"distinct_id": user_id, "$email": [email]}]},
            idempotency_key=f"welcome-{user_id}",
        )
    )
    result.raise_for_status()  # a failed task is retried by the broker's own policy
    return result.message_id or result.message
