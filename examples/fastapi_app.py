"""A FastAPI app that triggers SuprSend workflows.

One AsyncSuprsend per process, created in the lifespan and closed with it; handlers get it as a
dependency. Credentials and base URL come from SUPRSEND_WORKSPACE_KEY, SUPRSEND_WORKSPACE_SECRET
and SUPRSEND_BASE_URL.

    pip install 'suprsend-async' fastapi uvicorn
    uvicorn examples.fastapi_app:app
"""

from __future__ import annotations

import hashlib
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
        yield


app = FastAPI(lifespan=lifespan)


def suprsend(request: Request) -> AsyncSuprsend:
    client: AsyncSuprsend = request.app.state.suprsend
    return client


Suprsend = Annotated[AsyncSuprsend, Depends(suprsend)]


class Comment(BaseModel):
    document: str
    author_id: str
    owner_id: str
    text: str


@app.post("/comments")
async def add_comment(comment: Comment, client: Suprsend) -> dict[str, Any]:
    """Notify the document's owner, waiting for SuprSend to accept the trigger."""
    try:
        result = await client.workflows.trigger(
            WorkflowTriggerRequest(
                {
                    "workflow": "new_comment",
                    "actor": comment.author_id,
                    "recipients": [comment.owner_id],
                    "data": {"document": comment.document, "text": comment.text},
                },
                # Stable across processes and retries: the same comment is never notified twice.
                idempotency_key="comment-"
                + hashlib.sha256(
                    f"{comment.document}|{comment.author_id}|{comment.text}".encode()
                ).hexdigest()[:32],
            )
        )
    except SuprsendValidationError as exc:
        raise HTTPException(status_code=422, detail=[str(e) for e in exc.errors]) from None
    if not result.success:
        raise HTTPException(status_code=502, detail=f"notification not accepted: {result.message}")
    return {"notified": True, "message_id": result.message_id}


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
async def remind(invoice: Invoice, background: BackgroundTasks, client: Suprsend) -> dict[str, int]:
    """Queue reminders to every customer of an invoice, in the background."""
    background.add_task(remind_all, client, invoice)
    return {"queued": len(invoice.customer_ids)}
