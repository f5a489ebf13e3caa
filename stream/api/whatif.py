"""What-if: apply hypothetical values to a copy of a twin with the real core functions.

The hypothetical event is applied one second after the twin's newest vitals
(or newest event), so it is the latest reading and is never treated as late.
The stored twin is never touched: the core mutates ``state.copy()`` only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas.alert import Alert
from schemas.labs import LabEvent
from schemas.vitals import VITAL_FIELDS, VitalsEvent
from stream.api.models import WhatIfRequest, WhatIfResult
from stream.api.views import assessment_view, current
from twin.apply import apply_lab, apply_vitals
from twin.assess import assess
from twin.config import TwinConfig
from twin.state import TwinState

__all__ = ["WhatIfError", "what_if"]


class WhatIfError(ValueError):
    """The hypothetical values are not a valid event (e.g. a lab unit that is not known)."""


def what_if(state: TwinState, request: WhatIfRequest, cfg: TwinConfig) -> WhatIfResult:
    """Scores before and after ``request`` and the alerts it would raise; ``state`` unchanged."""
    base = state.last_vitals_at if state.last_vitals_at is not None else state.newest_event_at
    at = (base if base is not None else datetime.now(tz=UTC).timestamp()) + 1.0
    when = datetime.fromtimestamp(at, tz=UTC)
    before = current(state, cfg)
    trial = state.copy()
    alerts: list[Alert] = []
    tag = uuid.uuid4().hex
    try:
        for i, lab in enumerate(request.labs):
            event = LabEvent(
                event_id=f"what-if:{tag}:lab{i}",
                patient_id=state.patient_id,
                observed_at=when,
                analyte=lab.analyte,
                value=lab.value,
                unit=lab.unit,
            )
            alerts.extend(apply_lab(trial, event, cfg, at) or [])
        measured = {k: v for k in VITAL_FIELDS if (v := getattr(request, k)) is not None}
        if measured:
            vitals = VitalsEvent(
                event_id=f"what-if:{tag}:vitals",
                patient_id=state.patient_id,
                observed_at=when,
                source="what-if",
                **measured,
            )
            alerts.extend(apply_vitals(trial, vitals, cfg, at) or [])
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors(include_input=False))
        raise WhatIfError(problems) from exc
    after_at = trial.last_vitals_at if trial.last_vitals_at is not None else at
    return WhatIfResult(
        patient_id=state.patient_id,
        at=when,
        before=None if before is None else assessment_view(before),
        after=assessment_view(assess(trial, cfg, at=after_at)),
        alerts=alerts,
    )
