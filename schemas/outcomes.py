"""Observed outcomes on ``twin.outcomes``: the labels online models learn from.

Example::

    {"patient_id": "p-0001", "outcome": "in_hospital_death", "value": 0,
     "observed_at": "2026-11-30T12:00:00Z"}
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from schemas.base import PatientId, WireModel

__all__ = ["OutcomeEvent", "OutcomeName"]

OutcomeName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$"),
    Field(description="snake_case outcome, e.g. in_hospital_death, icu_admission_24h."),
]


class OutcomeEvent(WireModel):
    """One observed outcome for one patient.

    >>> OutcomeEvent.model_validate_json('{"patient_id": "p1", "outcome": "icu_admission",'
    ...     '"value": 1, "observed_at": "2026-11-30T12:00:00Z"}').value
    1.0
    """

    patient_id: PatientId
    outcome: OutcomeName
    value: float = Field(description="Outcome value: 0/1 for events, or a measured quantity.")
    observed_at: AwareDatetime = Field(description="When the outcome occurred, with offset.")
