"""InsurancePlan builder: a payer's product, its networks and coverage areas."""

from __future__ import annotations

from .elements import concept, profiled, ref
from .terminology import PLAN_TYPE_SYSTEM, PRODUCT_TYPE_SYSTEM


def insurance_plan(
    iid: str,
    name: str,
    *,
    product: tuple[str, str],
    payer_id: str,
    network_ids: list[str],
    area_ids: list[str],
    plan_types: list[tuple[str, str]],
) -> dict:
    """A Plan-Net InsurancePlan (an insurance product and its plans)."""
    return {
        "resourceType": "InsurancePlan",
        "id": iid,
        "meta": profiled("InsurancePlan"),
        "status": "active",
        "type": [concept(PRODUCT_TYPE_SYSTEM, *product)],
        "name": name,
        "ownedBy": ref("Organization", payer_id),
        "administeredBy": ref("Organization", payer_id),
        "coverageArea": [ref("Location", a) for a in area_ids],
        "network": [ref("Organization", n) for n in network_ids],
        # Plan-Net: plan types are distinct within a product.
        "plan": [{"type": concept(PLAN_TYPE_SYSTEM, *t)} for t in plan_types],
    }
