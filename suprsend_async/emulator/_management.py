"""The management API (``v1/...``): its namespaces, over one store of entities.

Each namespace (tenants and brands today; users, objects, lists and messages later) is a module
that adds its routes to the `Router` and keeps its entities in tables of the
`Store`.
"""

from __future__ import annotations

from ._answer import Answer
from ._fanout import FanOut
from ._identity import IdentityEvents
from ._lists import ListsApi
from ._objects import ObjectsApi
from ._routing import Router
from ._runs import RunsApi
from ._store import Store
from ._tenants import TenantsApi
from ._users import UsersApi

__all__ = ["Management"]


class Management:
    """The management API's namespaces over one store (``db``: SQLite file, else memory)."""

    def __init__(self, db: str | None = None) -> None:
        self.store = Store(db)
        self.router = Router()
        self.tenants = TenantsApi(self.store, self.router)
        self.tenants.seed()
        self.users = UsersApi(self.store, self.router)
        self.lists = ListsApi(self.store, self.router)
        self.runs = RunsApi(self.store, self.router, self.lists.members)
        self.objects = ObjectsApi(self.store, self.router)
        self.fanout = FanOut(self.store, self.objects)
        self.identity = IdentityEvents(self.store)

    @property
    def version(self) -> int:
        """Goes up on every change of the store (the inbox page's live stream watches it)."""
        return self.store.version

    def handle(self, method: str, raw_path: str, query_string: str, body: bytes) -> Answer:
        """The answer to an authenticated ``v1/...`` request."""
        self.runs.settle()  # delayed runs that fell due are delivered before any answer
        return self.router.dispatch(method, raw_path, query_string, body)

    def reset(self) -> None:
        """Forget every entity, then put back the defaults a new workspace has."""
        self.store.clear()
        self.lists.reset()
        self.tenants.seed()

    def close(self) -> None:
        """Close the store's database connection (no-op in memory)."""
        self.store.close()
