"""Laboratory results on ``twin.labs``, with the unit table that makes them comparable.

Example::

    {"event_id": "lis-3:88121", "patient_id": "p-0001",
     "observed_at": "2026-11-23T09:40:00Z", "source": "lis-3",
     "loinc": "2823-3", "analyte": "potassium", "value": 6.8, "unit": "mmol/L"}

``value`` and ``unit`` are kept exactly as sent; ``value_canonical`` and
``unit_canonical`` give the same result in the analyte's canonical unit. A unit
that is not in :data:`ANALYTES` is rejected with reason ``unknown_unit``: a lab
value is never converted by guessing (glucose 7 could be mmol/L or nonsense).

Conversion factors (molar masses and SI factors) are from the AMA Manual of
Style SI conversion table (https://www.amamanualofstyle.com/page/si-conversion-calculator)
unless a comment names another source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Literal, get_args

from pydantic import AwareDatetime, Field, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from schemas.base import EventId, PatientId, SourceName, WireModel, check_plausible

__all__ = [
    "ANALYTES",
    "ANALYTE_ALIASES",
    "LOINC_TO_ANALYTE",
    "AnalyteName",
    "AnalyteSpec",
    "LabEvent",
    "LoincCode",
    "UnitConversion",
    "analyte_for_loinc",
    "normalise_unit",
    "to_canonical",
]

AnalyteName = Literal[
    "potassium",
    "sodium",
    "glucose",
    "creatinine",
    "lactate",
    "haemoglobin",
    "white_cell_count",
    "platelets",
    "ph",
    "bicarbonate",
    "troponin",
    "troponin_i",
    "troponin_t",
    "hba1c",
    "bilirubin",
]
"""Canonical analyte names (British spelling, snake_case)."""

LoincCode = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{1,7}-[0-9]$"),
    Field(description="LOINC code, e.g. 2823-3."),
]

# Accepted spellings that are not canonical; decoded events carry the canonical name.
ANALYTE_ALIASES: Mapping[str, AnalyteName] = MappingProxyType(
    {
        "hemoglobin": "haemoglobin",
        "wbc": "white_cell_count",
        "white_blood_cell_count": "white_cell_count",
        "platelet_count": "platelets",
        "pH": "ph",
        "hco3": "bicarbonate",
        "hemoglobin_a1c": "hba1c",
        "total_bilirubin": "bilirubin",
    }
)


def normalise_unit(unit: str) -> str:
    """Fold the spelling variants of one unit into a lookup key.

    Case, spaces and both micro signs (U+00B5, U+03BC) are folded; nothing else.

    >>> normalise_unit(" µmol/L ") == normalise_unit("umol/l") == normalise_unit("\\u03bcmol/L")
    True
    """
    return unit.strip().replace("\u00b5", "u").replace("\u03bc", "u").replace(" ", "").lower()


@dataclass(frozen=True, slots=True)
class UnitConversion:
    """``canonical = value * multiply / divide + add`` (affine, so HbA1c fits too)."""

    multiply: float = 1.0
    divide: float = 1.0
    add: float = 0.0

    def apply(self, value: float) -> float:
        """Convert ``value`` to the canonical unit.

        >>> UnitConversion(divide=18.016).apply(180.0)
        9.991119005328597
        """
        return value * self.multiply / self.divide + self.add


SAME = UnitConversion()


@dataclass(frozen=True, slots=True)
class AnalyteSpec:
    """What twinstream knows about one analyte.

    ``units`` maps each accepted unit (as displayed) to its conversion into
    ``unit``; lookups go through :func:`normalise_unit`. ``low``/``high`` are
    plausibility bounds in the canonical unit, not reference ranges.
    """

    loinc: frozenset[str]
    unit: str
    units: Mapping[str, UnitConversion]
    low: float
    high: float
    _index: Mapping[str, UnitConversion] = field(init=False, repr=False, compare=False)
    _exact: Mapping[str, UnitConversion] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {normalise_unit(name): conv for name, conv in self.units.items()}
        object.__setattr__(self, "_index", MappingProxyType(index))
        # Units spelled exactly as listed (nearly every message) skip the folding;
        # a listed spelling whose folded key another one took keeps the slow path.
        exact = {
            name: conv for name, conv in self.units.items() if index[normalise_unit(name)] is conv
        }
        object.__setattr__(self, "_exact", MappingProxyType(exact))

    def conversion(self, unit: str) -> UnitConversion | None:
        """The conversion for ``unit`` into the canonical unit, or None if not accepted."""
        conv = self._exact.get(unit)
        return conv if conv is not None else self._index.get(normalise_unit(unit))


_MMOL_L = {"mmol/L": SAME, "mEq/L": SAME}  # monovalent ions: 1 mEq = 1 mmol
# 10^9/L = 10^3/µL = 1/nL (exact SI prefixes); "10*9/L" is the UCUM spelling.
_PER_NL = {
    unit: SAME for unit in ("10^9/L", "10*9/L", "x10^9/L", "/nL", "K/uL", "10^3/uL", "10*3/uL")
}
# Cardiac troponin I: serum/plasma, blood, high-sensitivity. Troponin T: serum/plasma, hs.
_TROPONIN_I = frozenset({"10839-9", "42757-5", "89579-7"})
_TROPONIN_T = frozenset({"6598-7", "67151-1"})
# ng/mL = µg/L = 1000 ng/L; pg/mL = ng/L (exact SI prefixes).
_TROPONIN_UNITS = {
    "ng/L": SAME,
    "pg/mL": SAME,
    "ug/L": UnitConversion(multiply=1000.0),
    "ng/mL": UnitConversion(multiply=1000.0),
}
# hs-troponin results reach ~10^5 ng/L in large infarcts; 10^6 leaves room.
_TROPONIN_BOUNDS = (0.0, 1_000_000.0)

ANALYTES: Mapping[AnalyteName, AnalyteSpec] = MappingProxyType(
    {
        # Serum/plasma, blood, arterial, venous.
        "potassium": AnalyteSpec(
            frozenset({"2823-3", "6298-4", "32713-0", "39789-3"}), "mmol/L", _MMOL_L, 0.5, 15.0
        ),
        "sodium": AnalyteSpec(frozenset({"2951-2", "2947-0"}), "mmol/L", _MMOL_L, 80.0, 200.0),
        "glucose": AnalyteSpec(
            frozenset({"2345-7", "2339-0", "41653-7", "14749-6", "15074-8", "14743-9"}),
            "mmol/L",
            # Glucose C6H12O6 180.16 g/mol: 1 mmol/L = 18.016 mg/dL.
            {"mmol/L": SAME, "mg/dL": UnitConversion(divide=18.016)},
            0.5,
            150.0,
        ),
        "creatinine": AnalyteSpec(
            frozenset({"2160-0", "38483-4", "14682-9"}),
            "mg/dL",
            # Creatinine 113.12 g/mol: 1 mg/dL = 88.42 µmol/L (AMA; KDIGO 2012 uses 88.4).
            {"mg/dL": SAME, "umol/L": UnitConversion(divide=88.42)},
            0.05,
            40.0,
        ),
        "lactate": AnalyteSpec(
            frozenset({"2524-7", "32693-4", "2518-9", "2519-7"}),
            "mmol/L",
            # Lactic acid 90.08 g/mol: 1 mmol/L = 9.008 mg/dL.
            {**_MMOL_L, "mg/dL": UnitConversion(divide=9.008)},
            0.0,
            40.0,
        ),
        "haemoglobin": AnalyteSpec(
            frozenset({"718-7", "20509-6", "30313-1", "59260-0"}),
            "g/dL",
            # mmol/L counts the Hb monomer, 16 114.5 g/mol: 1 mmol/L = 1.611 g/dL
            # (ICSH; van Kampen & Zijlstra, Clin Chim Acta 1961;6:538).
            {
                "g/dL": SAME,
                "g/L": UnitConversion(divide=10.0),
                "mmol/L": UnitConversion(multiply=1.611),
            },
            1.0,
            25.0,
        ),
        "white_cell_count": AnalyteSpec(
            frozenset({"6690-2", "26464-8", "804-5"}), "10^9/L", _PER_NL, 0.0, 1000.0
        ),
        "platelets": AnalyteSpec(
            frozenset({"777-3", "26515-7", "778-1"}), "10^9/L", _PER_NL, 0.0, 5000.0
        ),
        # Arterial, venous, blood. "[pH]" is the UCUM code; "1" is UCUM's unity.
        "ph": AnalyteSpec(
            frozenset({"2744-1", "2746-6", "11558-4"}),
            "pH",
            {"": SAME, "1": SAME, "pH": SAME, "[pH]": SAME},
            6.3,
            8.0,
        ),
        "bicarbonate": AnalyteSpec(
            frozenset({"1963-8", "1959-6", "1960-4", "14627-4"}), "mmol/L", _MMOL_L, 1.0, 60.0
        ),
        # Assay not stated: accepts either assay's LOINC. Decision thresholds differ
        # between I and T, so prefer troponin_i / troponin_t where the sender knows.
        "troponin": AnalyteSpec(
            _TROPONIN_I | _TROPONIN_T, "ng/L", _TROPONIN_UNITS, *_TROPONIN_BOUNDS
        ),
        "troponin_i": AnalyteSpec(_TROPONIN_I, "ng/L", _TROPONIN_UNITS, *_TROPONIN_BOUNDS),
        "troponin_t": AnalyteSpec(_TROPONIN_T, "ng/L", _TROPONIN_UNITS, *_TROPONIN_BOUNDS),
        "hba1c": AnalyteSpec(
            frozenset({"4548-4", "17856-6", "4549-2", "59261-8"}),
            "%",
            # IFCC-NGSP master equation: NGSP % = 0.09148 * IFCC mmol/mol + 2.152
            # (Hoelzel et al., Clin Chem 2004;50:166-174; ngsp.org/ifccngsp.asp).
            {"%": SAME, "mmol/mol": UnitConversion(multiply=0.09148, add=2.152)},
            2.0,
            25.0,
        ),
        "bilirubin": AnalyteSpec(
            frozenset({"1975-2", "42719-5", "14631-6"}),
            "mg/dL",
            # Bilirubin 584.66 g/mol: 1 mg/dL = 17.1 µmol/L.
            {"mg/dL": SAME, "umol/L": UnitConversion(divide=17.1)},
            0.0,
            80.0,
        ),
    }
)


def _build_loinc_index() -> Mapping[str, AnalyteName]:
    index: dict[str, AnalyteName] = {}
    for name, spec in ANALYTES.items():
        if name == "troponin":  # generic: its codes belong to troponin_i / troponin_t
            continue
        for code in spec.loinc:
            if code in index:
                raise RuntimeError(f"LOINC {code} listed for {index[code]} and {name}")
            index[code] = name
    return MappingProxyType(index)


LOINC_TO_ANALYTE: Mapping[str, AnalyteName] = _build_loinc_index()
"""The analyte a LOINC code measures (the FHIR decoder's lookup)."""

if set(ANALYTES) != set(get_args(AnalyteName)):  # pragma: no cover - import-time guard
    raise RuntimeError("ANALYTES and AnalyteName disagree")


def analyte_for_loinc(code: str) -> AnalyteName | None:
    """The canonical analyte measured by LOINC ``code``, or None if twinstream does not map it.

    >>> analyte_for_loinc("2823-3")
    'potassium'
    >>> analyte_for_loinc("0000-0") is None
    True
    """
    return LOINC_TO_ANALYTE.get(code)


def to_canonical(analyte: AnalyteName, value: float, unit: str) -> float | None:
    """``value`` in ``unit`` expressed in the analyte's canonical unit; None if the unit is unknown.

    >>> round(to_canonical("creatinine", 88.42, "µmol/L"), 6)
    1.0
    >>> to_canonical("glucose", 5.0, "g/furlong") is None
    True
    """
    conversion = ANALYTES[analyte].conversion(unit)
    return None if conversion is None else conversion.apply(value)


class LabEvent(WireModel):
    """One laboratory result for one patient, as sent plus its canonical form.

    >>> ev = LabEvent.model_validate_json('{"event_id": "e1", "patient_id": "p1",'
    ...     '"observed_at": "2026-11-23T09:40:00Z", "analyte": "glucose",'
    ...     '"value": 180, "unit": "mg/dL"}')
    >>> ev.canonical()
    ('glucose', 9.991119005328597, 'mmol/L')
    """

    event_id: EventId
    patient_id: PatientId
    observed_at: AwareDatetime = Field(
        description="Specimen collection time, ISO 8601 with offset."
    )
    source: SourceName | None = None
    analyte: AnalyteName = Field(
        description="Canonical analyte name; aliases such as 'hemoglobin' are accepted."
    )
    loinc: LoincCode | None = Field(None, description="Must be one of the analyte's LOINC codes.")
    unit: str = Field(max_length=32, description="Unit as reported (UCUM or common spelling).")
    value: float = Field(description="Result in `unit`, as reported.")

    @field_validator("analyte", mode="before")
    @classmethod
    def _canonical_name(cls, value: object) -> object:
        if isinstance(value, str):
            return ANALYTE_ALIASES.get(value, value)
        return value

    @field_validator("loinc")
    @classmethod
    def _loinc_matches(cls, code: str | None, info: ValidationInfo) -> str | None:
        analyte: AnalyteName | None = info.data.get("analyte")
        if code is not None and analyte is not None and code not in ANALYTES[analyte].loinc:
            raise PydanticCustomError(
                "loinc_mismatch",
                "LOINC code is not one of {analyte}'s codes",
                {"analyte": analyte},
            )
        return code

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str, info: ValidationInfo) -> str:
        analyte: AnalyteName | None = info.data.get("analyte")
        if analyte is not None and ANALYTES[analyte].conversion(unit) is None:
            raise PydanticCustomError(
                "unknown_unit",
                "unit not accepted for {analyte}; use one of: {accepted}",
                {"analyte": analyte, "accepted": ", ".join(ANALYTES[analyte].units)},
            )
        return unit

    @field_validator("value")
    @classmethod
    def _plausible(cls, value: float, info: ValidationInfo) -> float:
        data = info.data
        analyte: AnalyteName | None = data.get("analyte")
        unit: str | None = data.get("unit")
        if analyte is not None and unit is not None:
            # to_canonical and check_plausible, spelled out: this runs for every lab.
            spec = ANALYTES[analyte]
            conversion = spec.conversion(unit)
            if conversion is not None:
                canonical = conversion.apply(value)
                if not (spec.low <= canonical <= spec.high):
                    check_plausible(analyte, canonical, spec.low, spec.high, spec.unit)
        return value

    @property
    def unit_canonical(self) -> str:
        """The analyte's canonical unit."""
        return ANALYTES[self.analyte].unit

    @property
    def value_canonical(self) -> float:
        """``value`` converted to :attr:`unit_canonical`."""
        converted = to_canonical(self.analyte, self.value, self.unit)
        if converted is None:  # pragma: no cover - validation guarantees a known unit
            raise RuntimeError("LabEvent built without validation")
        return converted

    def canonical(self) -> tuple[str, float, str]:
        """``(analyte, value_canonical, unit_canonical)``."""
        return self.analyte, self.value_canonical, self.unit_canonical
