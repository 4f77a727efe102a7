"""The pre-check is derived from the models; a model it cannot mirror is refused at build time.

Agreement with the models on bodies is tested in test_fuzz.py.
"""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest
from pydantic import BaseModel, ConfigDict, model_validator

from suprsend_async import SuprsendValidationError, Workflow, WorkflowTriggerRequest
from suprsend_async._models import User, WorkflowBody, WorkflowTriggerBody
from suprsend_async._precheck import Precheck, precheck


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
    with pytest.raises(TypeError, match=r"_Checked\._rule has no rule in MODEL_RULES"):
        Precheck(_Checked)


def test_a_model_with_its_own_init_steps_is_refused() -> None:
    with pytest.raises(TypeError, match="no pre-check for the model schema of _WithInit"):
        Precheck(_WithInit)


def test_built_once_per_model() -> None:
    assert precheck(WorkflowTriggerBody) is precheck(WorkflowTriggerBody)


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
