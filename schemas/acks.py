"""Alert acknowledgements on ``twin.alert-acks``: a person has seen an alert.

Example::

    {"alert_id": "p-0001:news2-high:3", "by": "rn-4411", "at": "2026-11-23T10:21:00Z"}
"""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from schemas.base import WireModel

__all__ = ["AlertAck"]


class AlertAck(WireModel):
    """Acknowledgement of one alert (the ``alert_id`` of :class:`schemas.alert.Alert`).

    >>> AlertAck.model_validate_json('{"alert_id": "a1", "by": "rn-4411",'
    ...     '"at": "2026-11-23T10:21:00Z"}').by
    'rn-4411'
    """

    alert_id: str = Field(min_length=1, max_length=200)
    by: str = Field(min_length=1, max_length=200, description="Staff id of who acknowledged.")
    at: AwareDatetime = Field(description="When it was acknowledged, with offset.")
