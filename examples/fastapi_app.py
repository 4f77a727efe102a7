"""A FastAPI app that triggers SuprSend workflows.

One AsyncSuprsend per process, created in the lifespan and closed with it; handlers get it as a
dependency. Credentials and base URL come from SUPRSEND_WORKSPACE_KEY, SUPRSEND_WORKSPACE_SECRET
and SUPRSEND_BASE_URL.

    pip install 'suprsend-async' fastapi uvicorn
    uvicorn examples.fastapi_app:app
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from suprsend_async import AsyncSuprsend, SuprsendValidationError, WorkflowTriggerRequest


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncSuprsend() as client:
        app.state.suprsend = client
        app.state.comments = {}
        yield


app = FastAPI(lifespan=lifespan)


def suprsend(request: Request) -> AsyncSuprsend:
    client: AsyncSuprsend = request.app.state.suprsend
    return client


# Named so that it does not shadow the library's own sync client, ``suprsend_async.Suprsend``.
SuprsendClient = Annotated[AsyncSuprsend, Depends(suprsend)]


class Comment(BaseModel):
    document: str
    author_id: str
    owner_id: str
    text: str


def save_comment(comment: Comment) -> str:
    """Store the comment and return its id (a database insert in a real app)."""
    comment_id = f"c-{uuid.uuid4().hex}"
    app.state.comments[comment_id] = comment
    return comment_id


@app.post("/comments")
async def add_comment(comment: Comment, client: SuprsendClient) -> dict[str, Any]:
    """Store a comment, then notify the document's owner, waiting for SuprSend to accept."""
    comment_id = save_comment(comment)
    try:
        result = await client.workflows.trigger(
            WorkflowTriggerRequest(
                {
                    "workflow": "new_comment",
                    "actor": comment.author_id,
                    "recipients": [comment.owner_id],
                    "data": {"document": comment.document, "text": comment.text},
                },
                # The key names this comment, not its text: a retry of this trigger is skipped
                # by SuprSend, while a second comment saying the same thing is a new notification.
                idempotency_key=f"comment-{comment_id}",
            )
        )
    except SuprsendValidationError as exc:
        raise HTTPException(status_code=422, detail=[str(e) for e in exc.errors]) from None
    if not result.success:
        raise HTTPException(status_code=502, detail=f"notification not accepted: {result.message}")
    return {"comment_id": comment_id, "notified": True, "message_id": result.message_id}


class Invoice(BaseModel):
    invoice_id: str
    customer_ids: list[str]
    amount: str


async def remind_all(client: AsyncSuprsend, invoice: Invoice) -> None:
    # Runs after the response is sent; the bulk keys make a re-run safe.
    result = await client.workflows.bulk_trigger(
        (
            {
                "workflow": "invoice_due",
                "recipients": [customer],
                "data": {
                    "invoice": invoice.invoice_id,
                    "amount": invoice.amount,
                    "key": f"{invoice.invoice_id}-{customer}",
                },
            }
            for customer in invoice.customer_ids
        ),
        idempotency_key_from="data.key",
    )
    app.state.last_bulk = result


@app.post("/invoices/remind", status_code=202)
async def remind(
    invoice: Invoice, background: BackgroundTasks, client: SuprsendClient
) -> dict[str, int]:
    """Queue reminders to every customer of an invoice, in the background."""
    background.add_task(remind_all, client, invoice)
    return {"queued": len(invoice.customer_ids)}
