"""Tenants, brands and tenants' preference categories, as the management API answers them.

Where each rule comes from is written in ``docs/protocol.md``. In short:

* Brands and tenants share one table. SuprSend renamed brands to tenants ("Tenants (previously
  named as brands)", docs.suprsend.com/docs/node-tenants), the two carry the same fields, and
  both default to an entity with id ``default``; ``v1/brand/`` is the old name of the same
  entities, so a tenant stored through one path is read through the other, with ``brand_id``
  and ``brand_name`` for ``tenant_id`` and ``tenant_name``.
* Ids are case-insensitive (stored in lower case), at most 64 characters of ``a-z 0-9 _ -``.
* An upsert merges: given fields replace stored ones, ``properties`` is merged on its first-level
  keys, and a ``social_links`` entry set to ``null`` is left as it was (``""`` clears it).
* Preference categories are defined per workspace in SuprSend's dashboard. The emulator seeds
  `DEFAULT_CATEGORIES` (its own invention, one per root category) and lets the control API
  (``PUT /_emulator/categories``) replace them; a tenant's overrides live in a table of their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ._answer import Answer, not_found, validation_error
from ._routing import ApiRequest, Router, json_object, limit_offset, listing, query_flag
from ._store import Document, Page, Store

__all__ = ["DEFAULT_CATEGORIES", "DEFAULT_TENANT", "TenantsApi", "check_categories"]

_ID = re.compile(r"[a-z0-9_-]{1,64}")
_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
CHANNELS: Final = frozenset(
    ("email", "sms", "whatsapp", "androidpush", "inbox", "iospush", "slack", "webpush", "ms_teams")
)
PREFERENCES: Final = ("opt_in", "opt_out", "cant_unsubscribe")
ROOT_CATEGORIES: Final = ("system", "transactional", "promotional")
SOCIAL_LINKS: Final = (
    "website",
    "facebook",
    "linkedin",
    "twitter",
    "instagram",
    "medium",
    "discord",
    "telegram",
    "youtube",
)
_TEXT_FIELDS = ("logo", "timezone", "embedded_preference_url", "hosted_preference_domain")
_COLORS = ("primary_color", "secondary_color", "tertiary_color")

DEFAULT_TENANT: Final[Document] = {
    "tenant_id": "default",
    "tenant_name": "Default tenant",
    "logo": None,
    "timezone": None,
    "blocked_channels": None,
    "embedded_preference_url": None,
    "hosted_preference_domain": None,
    "primary_color": None,
    "secondary_color": None,
    "tertiary_color": None,
    "social_links": dict.fromkeys(SOCIAL_LINKS, ""),
    "properties": {},
}
"""The tenant every workspace starts with (SuprSend creates ``default`` for the organisation)."""

DEFAULT_CATEGORIES: Final[tuple[Document, ...]] = (
    {
        "category": "account-security",
        "name": "Account and security",
        "description": "Sign-in alerts and password changes",
        "root_category": "system",
        "default_preference": "cant_unsubscribe",
        "default_mandatory_channels": ["email"],
        "tags": ["security"],
    },
    {
        "category": "order-updates",
        "name": "Order updates",
        "description": "Status changes of an order",
        "root_category": "transactional",
        "default_preference": "opt_in",
        "tags": ["orders"],
    },
    {
        "category": "newsletter",
        "name": "Newsletter",
        "description": "News and offers",
        "root_category": "promotional",
        "default_preference": "opt_out",
        "tags": ["marketing"],
    },
)
"""The preference categories a new emulator has (the emulator's own example set)."""

# What a tenant may override on a category (tenant.py's docstring in the official SDK, and
# docs.suprsend.com/reference/update-tenant-preference-single-category).
_OVERRIDES = (
    "enabled_for_tenant",
    "visible_to_subscriber",
    "preference",
    "mandatory_channels",
    "opt_in_channels",
    "blocked_channels",
)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def entity_id(raw: str, what: str) -> str | Answer:
    """A tenant or brand id as stored (lower case), or the 400 that refuses it."""
    key = raw.strip().lower()
    if len(key) > 64:
        return validation_error(f"{what}: at most 64 characters, got {len(key)}")
    if not _ID.fullmatch(key):
        return validation_error(f"{what}: only a-z, 0-9, '_' and '-' are allowed, got {raw!r}")
    return key


def _channels(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        return f"{name}: must be a list of channels or null"
    unknown = sorted(set(value) - CHANNELS)
    return f"{name}: unknown channels {', '.join(unknown)}" if unknown else None


def _tenant_problem(body: Mapping[str, Any], creating: bool, name_key: str) -> str | None:
    """Why an upsert body is refused, or ``None``."""
    name = body.get(name_key)
    if (creating or name_key in body) and (not isinstance(name, str) or not name.strip()):
        return f"{name_key}: required, a non-empty string"
    for key in _TEXT_FIELDS:
        if body.get(key) is not None and not isinstance(body[key], str):
            return f"{key}: must be a string or null"
    for key in _COLORS:
        value = body.get(key)
        if value is not None and not (isinstance(value, str) and _COLOR.fullmatch(value)):
            return f"{key}: must be a hex colour such as #ff0000, or null"
    links = body.get("social_links")
    if links is not None and not (
        isinstance(links, dict) and all(v is None or isinstance(v, str) for v in links.values())
    ):
        return "social_links: must be an object of URLs (strings or null)"
    if body.get("properties") is not None and not isinstance(body["properties"], dict):
        return "properties: must be an object"
    return _channels("blocked_channels", body.get("blocked_channels"))


def merged_tenant(
    key: str, old: Document | None, body: Mapping[str, Any], default: Document | None
) -> Document:
    """The tenant after an upsert of ``body`` onto ``old`` (``None``: a new tenant, whose
    colours not given are the default tenant's)."""
    base = dict(old) if old is not None else {**DEFAULT_TENANT, "tenant_id": key}
    if old is None and default is not None:
        base.update({c: default.get(c) for c in _COLORS})
    for field in ("tenant_name", "blocked_channels", *_TEXT_FIELDS, *_COLORS):
        if field in body:
            base[field] = body[field]
    links = dict(base.get("social_links") or {})
    links.update({k: v for k, v in (body.get("social_links") or {}).items() if v is not None})
    base["social_links"] = links
    base["properties"] = {**(base.get("properties") or {}), **(body.get("properties") or {})}
    base["tenant_id"] = key
    base["updated_at"] = _now()
    return base


def as_brand(tenant: Document) -> Document:
    """A stored tenant as ``v1/brand/`` shows it."""
    out = {"brand_id": tenant["tenant_id"], "brand_name": tenant.get("tenant_name")}
    out.update({k: v for k, v in tenant.items() if k not in ("tenant_id", "tenant_name")})
    return out


def check_categories(value: Any) -> list[Document] | str:
    """Category definitions for ``PUT /_emulator/categories``, or why they are refused."""
    if not isinstance(value, list):
        return "a JSON array of categories is expected"
    out: list[Document] = []
    for i, item in enumerate(value):
        where = f"[{i}]"
        if not isinstance(item, dict):
            return f"{where}: must be an object"
        slug = item.get("category")
        if not isinstance(slug, str) or not slug.strip():
            return f"{where}.category: required, a non-empty string (the category's slug)"
        root = item.get("root_category", "transactional")
        pref = item.get("default_preference", "opt_in")
        if root not in ROOT_CATEGORIES:
            return f"{where}.root_category: one of {', '.join(ROOT_CATEGORIES)}"
        if pref not in PREFERENCES:
            return f"{where}.default_preference: one of {', '.join(PREFERENCES)}"
        for key in ("default_mandatory_channels", "default_opt_in_channels"):
            problem = _channels(f"{where}.{key}", item.get(key))
            if problem:
                return problem
        tags = item.get("tags")
        if tags is not None and not (
            isinstance(tags, list) and all(isinstance(t, str) for t in tags)
        ):
            return f"{where}.tags: must be a list of strings or null"
        out.append({**item, "category": slug, "root_category": root, "default_preference": pref})
    return out


def category_view(definition: Document, override: Document | None) -> Document:
    """A category as a tenant sees it: the definition, and the tenant's overrides (null when
    the tenant has not set them)."""
    tags = definition.get("tags")
    view: Document = {
        "name": definition.get("name") or definition["category"],
        "category": definition["category"],
        "description": definition.get("description"),
        "tags": tags,
        "effective_tags": list(tags) if tags else None,
        "root_category": definition["root_category"],
        "default_preference": definition["default_preference"],
        "default_mandatory_channels": definition.get("default_mandatory_channels"),
        "default_opt_in_channels": definition.get("default_opt_in_channels"),
        "enabled_for_tenant": True,
        "visible_to_subscriber": True,
        "preference": None,
        "mandatory_channels": None,
        "opt_in_channels": None,
        "blocked_channels": None,
        "updated_at": None,
    }
    if override:
        view.update({k: v for k, v in override.items() if v is not None or k in _OVERRIDES})
    return view


def _override_problem(body: Mapping[str, Any]) -> str | None:
    pref = body.get("preference")
    if pref is not None and pref not in PREFERENCES:
        return f"preference: one of {', '.join(PREFERENCES)}"
    for key in ("enabled_for_tenant", "visible_to_subscriber"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            return f"{key}: must be true, false or null"
    for key in ("mandatory_channels", "opt_in_channels", "blocked_channels"):
        problem = _channels(key, body.get(key))
        if problem:
            return problem
    if body.get("digest_schedule") is not None and not isinstance(body["digest_schedule"], dict):
        return "digest_schedule: must be an object or null"
    if body.get("properties") is not None and not isinstance(body["properties"], list):
        return "properties: must be a list or null"
    return None


class TenantsApi:
    """``v1/tenant/...`` and ``v1/brand/...`` over the store's tables."""

    def __init__(self, store: Store, router: Router) -> None:
        self.tenants = store.table("tenants")
        self.categories = store.table("preference_categories")
        self.overrides = store.table("tenant_category_preferences")
        self._meta = store.table("_meta")
        router.add("v1/tenant/", GET=self.list_tenants)
        router.add("v1/tenant/{id}/", GET=self.get, POST=self.upsert, DELETE=self.delete)
        router.add("v1/tenant/{id}/preference/category/", GET=self.list_categories)
        router.add(
            "v1/tenant/{id}/preference/category/{category}/",
            GET=self.get_category,
            PATCH=self.update_category,
        )
        router.add("v1/brand/", GET=self.list_brands)
        router.add("v1/brand/{id}/", GET=self.get_brand, POST=self.upsert_brand)

    def seed(self) -> None:
        """Put in what a new workspace has (once: a restart with ``--db`` keeps the data)."""
        if self._meta.get("tenants_seeded") is not None:
            return
        self.tenants.upsert("default", {**DEFAULT_TENANT, "updated_at": _now()})
        self.define_categories(list(DEFAULT_CATEGORIES))
        self._meta.upsert("tenants_seeded", {"at": _now()})

    def define_categories(self, definitions: list[Document]) -> None:
        """Replace the workspace's preference categories (tenants' overrides are kept)."""
        self.categories.clear()
        for definition in definitions:
            self.categories.upsert(definition["category"], definition)

    # -- tenants and brands ---------------------------------------------------------------

    def _list(self, req: ApiRequest, shown: Callable[[Document], Any]) -> Answer:
        paging = limit_offset(req.query, default_limit=20, max_limit=1000)
        if isinstance(paging, Answer):
            return paging
        limit, offset = paging
        return listing(self.tenants.page(offset, limit), limit, offset, shown)

    def _found(self, raw: str, what: str) -> Document | Answer:
        key = entity_id(raw, what)
        if isinstance(key, Answer):
            return key
        tenant = self.tenants.get(key)
        return tenant if tenant is not None else not_found(f"{what} '{key}' not found")

    def _upsert(self, req: ApiRequest, what: str, name_key: str) -> Document | Answer:
        """Store a tenant (``what``: the id's name; ``name_key``: the name's, ``tenant_name``
        or ``brand_name``)."""
        key = entity_id(req.params["id"], what)
        body = json_object(req.body)
        if isinstance(key, Answer):
            return key
        if isinstance(body, Answer):
            return body
        old = self.tenants.get(key)
        problem = _tenant_problem(body, old is None, name_key)
        if problem is not None:
            return validation_error(problem)
        if name_key in body:
            body["tenant_name"] = body.pop(name_key)
        return self.tenants.upsert(key, merged_tenant(key, old, body, self.tenants.get("default")))

    def list_tenants(self, req: ApiRequest) -> Answer:
        return self._list(req, lambda d: d)

    def get(self, req: ApiRequest) -> Answer:
        found = self._found(req.params["id"], "tenant_id")
        return found if isinstance(found, Answer) else Answer(200, found)

    def upsert(self, req: ApiRequest) -> Answer:
        stored = self._upsert(req, "tenant_id", "tenant_name")
        return stored if isinstance(stored, Answer) else Answer(201, stored)

    def delete(self, req: ApiRequest) -> Answer:
        found = self._found(req.params["id"], "tenant_id")
        if isinstance(found, Answer):
            return found
        key = found["tenant_id"]
        self.tenants.delete(key)
        for definition in self.categories:
            self.overrides.delete(f"{key}/{definition['category']}")
        return Answer(204, None)

    def list_brands(self, req: ApiRequest) -> Answer:
        return self._list(req, as_brand)

    def get_brand(self, req: ApiRequest) -> Answer:
        found = self._found(req.params["id"], "brand_id")
        return found if isinstance(found, Answer) else Answer(200, as_brand(found))

    def upsert_brand(self, req: ApiRequest) -> Answer:
        stored = self._upsert(req, "brand_id", "brand_name")
        return stored if isinstance(stored, Answer) else Answer(201, as_brand(stored))

    # -- preference categories --------------------------------------------------------------

    def _view(self, tenant: str, definition: Document) -> Document:
        return category_view(definition, self.overrides.get(f"{tenant}/{definition['category']}"))

    def list_categories(self, req: ApiRequest) -> Answer:
        tenant = self._found(req.params["id"], "tenant_id")
        if isinstance(tenant, Answer):
            return tenant
        paging = limit_offset(req.query, default_limit=10, max_limit=1000)
        if isinstance(paging, Answer):
            return paging
        disabled = query_flag(req.query, "include_disabled")
        if isinstance(disabled, Answer):
            return disabled
        # ``locale`` picks translations of names and descriptions, which the emulator has not.
        wanted = {t.strip() for t in req.query.get("tags", "").split(",") if t.strip()}
        views = [
            view
            for view in (self._view(tenant["tenant_id"], d) for d in self.categories)
            if (disabled or view["enabled_for_tenant"] is not False)
            and (not wanted or wanted & set(view["effective_tags"] or ()))
        ]
        limit, offset = paging
        page = Page(views[offset : offset + limit], len(views))
        return listing(page, limit, offset, lambda d: d)

    def _category(self, req: ApiRequest) -> tuple[str, Document] | Answer:
        tenant = self._found(req.params["id"], "tenant_id")
        if isinstance(tenant, Answer):
            return tenant
        definition = self.categories.get(req.params["category"])
        if definition is None:
            return not_found(f"category '{req.params['category']}' not found")
        return tenant["tenant_id"], definition

    def get_category(self, req: ApiRequest) -> Answer:
        found = self._category(req)
        return found if isinstance(found, Answer) else Answer(200, self._view(*found))

    def update_category(self, req: ApiRequest) -> Answer:
        found = self._category(req)
        if isinstance(found, Answer):
            return found
        body = json_object(req.body)
        if isinstance(body, Answer):
            return body
        problem = _override_problem(body)
        if problem is not None:
            return validation_error(problem)
        tenant, definition = found
        key = f"{tenant}/{definition['category']}"
        known = (*_OVERRIDES, "digest_schedule", "properties")
        override = {**(self.overrides.get(key) or {}), **{k: body[k] for k in known if k in body}}
        override["updated_at"] = _now()
        self.overrides.upsert(key, override)
        return Answer(200, self._view(tenant, definition))
