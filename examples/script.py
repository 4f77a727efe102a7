"""A plain script: trigger a workflow, then a bulk, with the sync client.

export SUPRSEND_WORKSPACE_KEY=... SUPRSEND_WORKSPACE_SECRET=...
python examples/script.py
"""

from __future__ import annotations

import sys

from suprsend_async import Suprsend, WorkflowTriggerRequest


def main() -> int:
    with Suprsend() as client:
        single = client.workflows.trigger(
            WorkflowTriggerRequest(
                body={
                    "workflow": "weekly_report",
                    "recipients": [{"distinct_id": "ops-lead", "$email": ["ops@example.com"]}],
                    "data": {"week": 48},
                },
                tenant_id="acme",
            )
        )
        print("single:", single)

        bulk = client.workflows.bulk_trigger_instance()
        for i in range(250):
            bulk.append(
                WorkflowTriggerRequest(
                    body={
                        "workflow": "weekly_report",
                        "recipients": [f"user-{i}"],
                        "data": {"week": 48},
                    }
                )
            )
        result = bulk.trigger()
        print(f"bulk: {result.status}, {result.success}/{result.total} accepted")
        for failed in result.failed_records:
            print(f"  record {failed.index} failed ({failed.code}): {failed.error}")
    return 0 if single.success and result.failure == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
