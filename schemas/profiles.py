"""Patient profiles on ``twin.profiles``: the slowly changing context of a twin.

Example::

    {"patient_id": "p-0001", "age": 71, "sex": "female", "ward": "AMU-2",
     "region": "north", "spo2_scale": 2, "conditions": ["copd", "t2dm"],
     "updated_at": "2026-11-23T08:00:00Z"}

The topic is compacted by ``patient_id``; when two profiles of a patient
arrive, the one with the later ``updated_at`` wins (a profile without
``updated_at`` never replaces one that has it).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from schemas.base import PatientId, WireModel, plausible

__all__ = ["MAX_CONDITIONS", "PatientProfile", "Sex", "Spo2Scale"]

Sex = Literal["female", "male", "other", "unknown"]
MAX_CONDITIONS = 50


def _exact_int(value: object) -> object:
    # Literal[1, 2] alone accepts true and 1.0, even in strict mode.
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


Spo2Scale = Annotated[Literal[1, 2], BeforeValidator(_exact_int)]
"""NEWS2 SpO2 scale: 1 is the default, 2 the prescribed 88-92 % target."""

_Age = Annotated[int, plausible("age", (0, 130, "years"))]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class PatientProfile(WireModel):
    """Who the patient is, as far as the twin's scores need to know.

    ``spo2_scale`` 2 is NEWS2's SpO2 Scale 2: the 88-92 % target range a
    clinician prescribes for patients with hypercapnic respiratory failure
    (e.g. some COPD). It must be a documented decision, never inferred from a
    diagnosis (Royal College of Physicians, *National Early Warning Score
    (NEWS) 2*, 2017). Scale 1 applies otherwise.

    >>> PatientProfile.model_validate_json('{"patient_id": "p1", "spo2_scale": 2}').spo2_scale
    2
    """

    patient_id: PatientId
    age: _Age | None = Field(None, description="Age in completed years.")
    sex: Sex = "unknown"
    ward: ShortText | None = None
    region: ShortText | None = None
    spo2_scale: Spo2Scale = Field(1, description="NEWS2 SpO2 scale (1 or 2).")
    conditions: list[ShortText] = Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        description="Known conditions: short codes (e.g. 'copd') or SNOMED CT ids.",
    )
    updated_at: AwareDatetime | None = Field(None, description="When this profile was written.")

    def supersedes(self, other: PatientProfile) -> bool:
        """True if this profile should replace ``other`` (latest ``updated_at`` wins).

        Ties and a missing ``updated_at`` on this profile keep ``other``, unless
        ``other`` has none either: then the newer arrival wins.
        """
        if self.updated_at is None:
            return other.updated_at is None
        return other.updated_at is None or self.updated_at > other.updated_at
