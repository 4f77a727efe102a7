"""A fast acceptance check derived from the request models.

Validating a record against the pydantic models builds a model instance for the body and for
every inline recipient, and runs several small Python functions per channel key. The SDK does
not keep that result (it sends the caller's own keys and values), so on the hot path it first
asks a cheaper question: does this plain dict pass the same rules? That check runs almost
entirely in pydantic-core:

* each model becomes a typed dict with the same fields, aliases and extra-key rule, so no
  instance is built and absent fields are not filled with defaults;
* the explicit-null guard disappears (a null then simply fails the inner type);
* "one value or a list" becomes a Rust union of a strict list and one value;
* format checks (Python functions of one regular expression each) become the same expressions
  run by pydantic-core (``_rules.FORMATS``), and the time zone check a look-up of the zone
  database's names (``_rules.zone_names``);
* model validators run as the same rules across fields, on the validated dict
  (``_models.VALIDATOR_RULES``).

It also asks for plain JSON: every value a model types as ``Any`` (``data``, ``metadata``,
custom properties) must be a ``str``, ``int``, ``bool``, ``None``, a finite ``float`` that is 0
or at least 1e-4 in size, a ``list`` or a ``dict`` with ``str`` keys, all strictly (no tuples,
sets or bytes), so a body it accepts is encoded by pydantic-core exactly as ``json.dumps`` would
encode it (see ``_serialize.encode_plain``).

The check may be stricter than the models (a tuple, a ``datetime`` in ``data``, a model instance
inside a dict) but never looser: whatever it refuses is validated and encoded the general way,
and only the models' answer (and their error messages) reaches the caller. Tests hold both to
that, on generated bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic_core import SchemaValidator

from . import _models, _rules

__all__ = ["Precheck", "build_validators", "precheck"]

# Format checks and their regular expressions, run by pydantic-core instead: each check is a
# fullmatch, which anchoring the same expression reproduces.
_PATTERNS: dict[Callable[..., Any], str] = {
    check: f"^(?:{regex.pattern})$" for check, regex in _rules.FORMATS.items()
}


_PLAIN = "suprsend_async.plain-json"
_PLAIN_REF: dict[str, Any] = {"type": "definition-ref", "schema_ref": _PLAIN}
# Integer fields of the models (a delay) take the general path beyond 64 bits: json.dumps
# refuses integers over 4,300 digits, which pydantic-core would write. (In plain values, an
# integer too big for a float fails the float choices too.)
_INT_RANGE: dict[str, Any] = {"ge": -(2**63), "le": 2**63 - 1}

# Floats smaller than 1e-4 (but not 0) are the only finite ones pydantic-core writes differently
# from json.dumps ("1e-5" against "1e-05"); they take the general path.
_PLAIN_JSON: dict[str, Any] = {
    "type": "union",
    "mode": "left_to_right",
    "ref": _PLAIN,
    # Most frequent first: each choice tried and failed costs an error object in Rust.
    "choices": [
        {"type": "str", "strict": True},
        {"type": "int", "strict": True, **_INT_RANGE},
        {"type": "list", "strict": True, "items_schema": _PLAIN_REF},
        {
            "type": "dict",
            "strict": True,
            "keys_schema": {"type": "str", "strict": True},
            "values_schema": _PLAIN_REF,
        },
        {"type": "bool", "strict": True},
        {"type": "none"},
        {"type": "float", "strict": True, "allow_inf_nan": False, "ge": 1e-4},
        {"type": "float", "strict": True, "allow_inf_nan": False, "le": -1e-4},
        {"type": "float", "strict": True, "ge": 0.0, "le": 0.0},
    ],
}
_STRICT_TYPES = {"str", "int", "bool", "float", "list", "dict", "literal"}

# Discriminators (Python functions) whose choices take disjoint inputs, so a Rust union that
# tries each in turn accepts the same values. Recipients are the one case needing help: a dict
# with ``object_type`` is an object recipient even where it would also pass as a user, so the
# pre-check's users refuse that key (see ``_NotAUserKey``).
_UNTAGGED = {_rules.recipient_kind, _rules.actor_kind, _rules.token_kind, _rules.delay_kind}


class _NotAUserKey:
    """Never instantiated: a value of a key that must be absent fails ``isinstance`` against it."""


_ABSENT: dict[str, Any] = {"type": "is-instance", "cls": _NotAUserKey}


def _with_rule(rule: Callable[[Mapping[str, Any]], None]) -> Callable[[dict[str, Any]], Any]:
    def check(values: dict[str, Any]) -> dict[str, Any]:
        rule(values)
        return values

    return check


def _function(schema: dict[str, Any]) -> Any:
    return schema["function"]["function"]


def _field(field: dict[str, Any]) -> dict[str, Any]:
    inner = field["schema"]
    required = inner["type"] != "default"
    if not required:
        inner = inner["schema"]  # absent stays absent: defaults are never validated anyway
    out: dict[str, Any] = {"type": "typed-dict-field", "schema": _derive(inner)}
    out["required"] = required
    if "validation_alias" in field:
        out["validation_alias"] = field["validation_alias"]
    return out


def _typed_dict(model: dict[str, Any]) -> dict[str, Any]:
    fields = model["schema"]
    if fields["type"] != "model-fields" or model.get("custom_init") or model.get("post_init"):
        raise TypeError(f"no pre-check for the model schema of {model['cls'].__name__}")
    out: dict[str, Any] = {
        "type": "typed-dict",
        "strict": True,  # a dict: the models' discriminators take no other Mapping
        "fields": {name: _field(f) for name, f in fields["fields"].items()},
        "extra_behavior": model["config"].get("extra_fields_behavior", "ignore"),
        # Wire names only, as the SDK asks of the models; set here, as passing them on every
        # call costs more than the rest of a small check.
        "config": {"validate_by_alias": True, "validate_by_name": False},
    }
    if issubclass(model["cls"], _models.User):
        out["fields"]["~object_type"] = {
            "type": "typed-dict-field",
            "schema": _ABSENT,
            "required": False,
            "validation_alias": "object_type",
        }
    if out["extra_behavior"] == "allow":
        out["extras_schema"] = _PLAIN_REF
    if "ref" in model:
        out["ref"] = model["ref"]
    return out


def _derive(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_derive(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind == "any":
        return _PLAIN_REF
    if kind == "model":
        return _typed_dict(schema)
    if kind == "tagged-union" and schema["discriminator"] in _UNTAGGED:
        choices = [_derive(choice) for choice in schema["choices"].values()]
        return {"type": "union", "choices": choices, "mode": "left_to_right"}
    derived = None
    if kind == "function-before":
        derived = _before(schema)
    elif kind == "function-after":
        derived = _after(schema)
    if derived is not None:
        return derived
    out = {key: _derive(value) for key, value in schema.items()}
    if kind in _STRICT_TYPES:
        out["strict"] = True  # lax mode would let tuples, sets or bytes through
    if kind == "int":
        out = {**_INT_RANGE, **out}  # the model's own bounds, where it has them, stay
    return out


def _before(schema: dict[str, Any]) -> dict[str, Any] | None:
    """A ``function-before`` the pre-check runs in Rust, or ``None`` to derive it as it is."""
    fn = _function(schema)
    if fn is _rules.not_null:
        inner = schema["schema"]
        derived: dict[str, Any] = _derive(inner["schema"] if inner["type"] == "nullable" else inner)
        return derived
    if fn is _rules.one_or_many:
        many = {**_derive(schema["schema"]), "strict": True}
        one = many["items_schema"]
        return {"type": "union", "choices": [many, one], "mode": "left_to_right"}
    return None


def _after(schema: dict[str, Any]) -> dict[str, Any] | None:
    """A ``function-after`` as a model rule or a pattern, or ``None`` to derive it as it is."""
    fn = _function(schema)
    rule = _models.VALIDATOR_RULES.get(fn)
    if rule is not None:
        return _ruled(schema, rule)
    if schema["schema"].get("type") == "model":
        raise TypeError(
            f"model validator {fn.__qualname__} has no rule in VALIDATOR_RULES"
            " (declare it with _applying)"
        )
    inner = {k: v for k, v in schema["schema"].items() if k != "metadata"}
    if fn in _PATTERNS and inner == {"type": "str", "strict": True}:
        return {"type": "str", "strict": True, "pattern": _PATTERNS[fn]}
    if fn is _rules.check_timezone and inner == {"type": "str", "strict": True}:
        # The zone database's names, looked up in Rust: a name missing from the list (one
        # the database holds under another spelling) is left to the models.
        return {"type": "literal", "expected": _rules.zone_names()}
    return None


def _ruled(schema: dict[str, Any], rule: _rules.FieldsRule) -> dict[str, Any]:
    """A model validator as its rule (``_models.VALIDATOR_RULES``) over the derived fields."""
    fields = _derive(schema["schema"])
    checked = {
        **schema,
        "function": {"type": "no-info", "function": _with_rule(rule.check)},
        "schema": fields,
    }
    met_by = rule.met_by
    if met_by is None:
        return checked
    # Most values give the field that satisfies the rule: try the fields with it
    # required (no Python call) first, and the rule only for the others.
    given = fields["fields"][met_by]
    inner = given["schema"]
    required = {
        **given,
        "required": True,
        "schema": inner["schema"] if inner["type"] == "nullable" else inner,
    }
    quick = {**fields, "fields": {**fields["fields"], met_by: required}}
    quick.pop("ref", None)
    checked.pop("ref", None)
    union = {"type": "union", "choices": [quick, checked], "mode": "left_to_right"}
    if "ref" in schema:
        union["ref"] = schema["ref"]
    return union


class Precheck:
    """The derived check for one request model: ``accepts(body)`` is quick and never raises."""

    __slots__ = ("_validator", "accepts")

    def __init__(self, model: type[BaseModel]) -> None:
        model.model_rebuild()
        derived = _derive(model.__pydantic_core_schema__)
        if derived["type"] != "definitions":
            derived = {"type": "definitions", "schema": derived, "definitions": []}
        derived["definitions"].append(_PLAIN_JSON)
        self._validator = SchemaValidator(derived)
        self.accepts: Callable[[Any], bool] = self._validator.isinstance_python
        """Whether a body certainly passes the model and is plain JSON (``False``: ask the
        model, and encode it the general way). The validator's own method: no Python frame
        between the caller and pydantic-core, on a path taken once per record."""


@cache
def precheck(model: type[BaseModel]) -> Precheck:
    """The pre-check of a request model, built on first use."""
    return Precheck(model)


def build_validators() -> None:
    """Build the request models' validators and their pre-checks now (once per process).

    The models defer building at import so importing the SDK stays quick; a client calls this
    when it is created, at an app's start-up, so the first trigger does not pay for it.
    """
    precheck(_models.WorkflowTriggerBody)
    precheck(_models.WorkflowBody)
