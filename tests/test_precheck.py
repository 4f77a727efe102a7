"""The pre-check is derived from the models; a model it cannot mirror is refused at build time.

Agreement with the models on bodies is tested in test_fuzz.py.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import SchemaValidator

import suprsend_async
from suprsend_async import (
    SuprsendValidationError,
    Workflow,
    WorkflowTriggerRequest,
    _models,
    _rules,
)
from suprsend_async._models import User, WorkflowBody, WorkflowTriggerBody
from suprsend_async._precheck import Precheck, build_validators, precheck
from suprsend_async._rules import FORMATS

PACKAGE = Path(suprsend_async.__file__).parent


def module_tree(name: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{name}.py").read_text(), filename=f"{name}.py")


def imported_modules(tree: ast.Module) -> set[str]:
    """The package modules a module imports (``from . import x``, ``from ._x import y``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module is None:
                found.update(alias.name for alias in node.names)
            else:
                found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("suprsend_async.")
            )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("suprsend_async."):
            found.add((node.module or "").split(".")[1])
    return found


def test_validation_imports_go_one_way() -> None:
    """Rules <- models <- pre-check <- request preparation, and never back."""
    layers = ["_rules", "_models", "_precheck", "_requests"]
    for i, name in enumerate(layers):
        later = set(layers[i + 1 :])
        assert not imported_modules(module_tree(name)) & later, name
    assert "_models" in imported_modules(module_tree("_precheck"))
    assert "_rules" in imported_modules(module_tree("_models"))


def test_the_import_check_sees_each_import_form() -> None:
    tree = ast.parse(
        "from . import _a\nfrom ._b import x\nimport suprsend_async._c\n"
        "from suprsend_async._d import y\nfrom .. import far\nimport json\n"
    )
    assert imported_modules(tree) == {"_a", "_b", "_c", "_d"}


def private_names_read(tree: ast.Module, module: str) -> set[str]:
    """Names starting with ``_`` read from ``module``, as ``module._x`` or imported by name."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == module and node.attr.startswith("_"):
                found.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and node.module == module:
            found.update(a.name for a in node.names if a.name.startswith("_"))
    return found


def test_the_precheck_reads_no_private_name_of_the_models_or_rules() -> None:
    tree = module_tree("_precheck")
    assert private_names_read(tree, "_models") == set()
    assert private_names_read(tree, "_rules") == set()
    # The check itself finds both forms.
    sample = ast.parse("from ._models import _x, y\n_models._z\n_models.w\n")
    assert private_names_read(sample, "_models") == {"_x", "_z"}


class _Checked(BaseModel):
    model_config = ConfigDict(defer_build=True)
    a: int = 0

    @model_validator(mode="after")
    def _rule(self) -> _Checked:
        return self


class _WithInit(BaseModel):
    model_config = ConfigDict(defer_build=True)
    a: int = 0

    def model_post_init(self, context: object, /) -> None:
        pass


def test_a_model_validator_without_a_mapping_rule_is_refused() -> None:
    with pytest.raises(TypeError, match=r"_Checked\._rule has no rule in VALIDATOR_RULES"):
        Precheck(_Checked)


def test_a_model_with_its_own_init_steps_is_refused() -> None:
    with pytest.raises(TypeError, match="no pre-check for the model schema of _WithInit"):
        Precheck(_WithInit)


def test_built_once_per_model() -> None:
    assert precheck(WorkflowTriggerBody) is precheck(WorkflowTriggerBody)


def test_build_validators_builds_both_prechecks_and_their_models() -> None:
    precheck.cache_clear()
    build_validators()
    assert precheck.cache_info().currsize == 2
    assert precheck.cache_info().hits == 0
    for model in (WorkflowTriggerBody, WorkflowBody):
        assert model.__pydantic_complete__
        assert isinstance(model.__pydantic_validator__, SchemaValidator)


def test_formats_are_all_run_as_patterns() -> None:
    """Every format check of the models becomes a pattern in the pre-check (no Python call)."""
    from suprsend_async._precheck import _PATTERNS

    assert set(_PATTERNS) == set(FORMATS)
    assert {check.__name__ for check in FORMATS} >= {
        "check_email",
        "check_phone",
        "check_locale",
        "check_slack_member_id",
        "check_slack_channel_id",
        "check_slack_access_token",
        "check_teams_service_url",
    }


def python_says(check: object, value: str) -> bool:
    try:
        check(value)  # type: ignore[operator]
    except ValueError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_each_pattern_means_the_same_in_rust_and_python(data: st.DataObject) -> None:
    """pydantic-core's regex engine reads each expression as Python's ``re`` does: same
    verdicts on values built to match, values near them, and anything else."""
    from suprsend_async._precheck import _PATTERNS

    check = data.draw(st.sampled_from(sorted(FORMATS, key=lambda c: c.__name__)))
    regex = FORMATS[check]
    near = st.from_regex(regex, fullmatch=True).flatmap(
        lambda s: st.sampled_from([s, s + "\n", "\n" + s, s[1:], s + " ", s.upper(), s[:-1]])
    )
    value = data.draw(st.one_of(near, st.text(max_size=12)))
    rust = SchemaValidator({"type": "str", "strict": True, "pattern": _PATTERNS[check]})
    assert rust.isinstance_python(value) == python_says(check, value), (check.__name__, value)


def test_model_instances_inside_a_dict_are_left_to_the_models() -> None:
    body = {"workflow": "w", "recipients": [User(distinct_id="u1", email="a@example.com")]}
    assert not precheck(WorkflowTriggerBody).accepts(body)
    prepared = WorkflowTriggerRequest(body).prepare()  # the models accept them
    assert b'"$email": ["a@example.com"]' in prepared.content


@pytest.mark.parametrize(
    ("user", "valid"),
    [
        ({"distinct_id": "u1"}, True),
        ({"distinct_id": None, "is_transient": True}, True),
        ({"is_transient": True}, True),
        ({"distinct_id": None}, False),
        ({"distinct_id": ""}, False),
        ({"distinct_id": "u1", "is_transient": False}, True),
        ({"is_transient": False}, False),
        ({}, False),
    ],
)
def test_identity_rule_with_and_without_a_distinct_id(user: dict[str, object], valid: bool) -> None:
    body = {"workflow": "w", "recipients": [user]}
    assert precheck(WorkflowTriggerBody).accepts(body) is valid
    try:
        WorkflowTriggerBody.model_validate(body, by_alias=True, by_name=False)
    except ValueError:
        assert not valid
    else:
        assert valid


def test_integers_json_cannot_write_are_refused_as_before() -> None:
    body = {"workflow": "w", "recipients": ["u"], "data": {"n": 10**5000}}
    assert not precheck(WorkflowTriggerBody).accepts(body)
    with pytest.raises(SuprsendValidationError, match="4300 digits"):
        WorkflowTriggerRequest(body).prepare()
    for n in (2**64, -(2**64), 10**400):  # written alike by both encoders, on either path
        big = {"workflow": "w", "recipients": ["u"], "data": {"n": n}}
        record = WorkflowTriggerRequest(big).prepare()
        assert json.loads(record.content)["data"]["n"] == n
        assert record.exact_size() == len(json.dumps(json.loads(record.content))) + 200


def test_legacy_delay_beyond_64_bits_takes_the_general_path() -> None:
    body = {
        "name": "wf",
        "template": "tpl",
        "notification_category": "transactional",
        "users": [{"distinct_id": "u"}],
        "delay": 2**70,
    }
    assert not precheck(WorkflowBody).accepts(body)
    assert json.loads(Workflow(body).prepare().content)["delay"] == 2**70


def test_a_recipient_that_is_a_mapping_but_not_a_dict_gets_the_models_error() -> None:
    body = {"workflow": "w", "recipients": [MappingProxyType({"distinct_id": "u"})]}
    assert not precheck(WorkflowTriggerBody).accepts(body)
    with pytest.raises(SuprsendValidationError, match="recipients\\[0\\]: must be a distinct_id"):
        WorkflowTriggerRequest(body).prepare()


def test_time_zones_are_looked_up_in_rust_and_mean_what_the_models_mean() -> None:
    names = _rules.zone_names()
    assert "Europe/Berlin" in names and "UTC" in names
    # Every listed name is one the models accept: the look-up is never looser.
    assert all(_rules._known_timezone(name) for name in names)
    check = precheck(_models.WorkflowTriggerBody)
    body = {"workflow": "w", "recipients": [{"distinct_id": "u", "$timezone": "Asia/Kolkata"}]}
    assert check.accepts(body)
    for bad in ("Mars/Base", " UTC", "", "America"):
        body["recipients"][0]["$timezone"] = bad  # type: ignore[index]
        assert not check.accepts(body)
