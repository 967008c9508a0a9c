"""What a collection page draws: series by modality and by body part, samples by material
type, a slice-thickness histogram and how complete the recorded attributes are. Read with
Core SQL over one collection; counts as the role may see them (obfuscated for researchers,
shares rounded to tens of per cent)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, String, func, select

from imaging_biobank.db._schema import metadata
from imaging_biobank.db.lookup import FoundCollection
from imaging_biobank.query.engine import as_seen

T = metadata.tables
# slice thickness bins in mm: (low, high) with high exclusive; None is open-ended
THICKNESS_BINS: tuple[tuple[float, float | None], ...] = (
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (4, 5),
    (5, 6),
    (6, 8),
    (8, 10),
    (10, None),
)
NOT_RECORDED = "not recorded"


@dataclass
class Figures:
    """The numbers behind one collection's charts."""

    series_by_modality: list[tuple[str, int]] = field(default_factory=list)
    series_by_body_part: list[tuple[str, int]] = field(default_factory=list)
    samples_by_material: list[tuple[str, int]] = field(default_factory=list)
    samples_by_temperature: list[tuple[str, int]] = field(default_factory=list)
    slice_thickness: list[tuple[str, int]] = field(default_factory=list)
    completeness: list[tuple[str, int]] = field(default_factory=list)  # label, per cent
    completeness_of: str = ""  # "series" or "samples"
    total: int = 0  # the series or samples the shares are of (as the role sees it)


def shown_share(part: int, whole: int, role: str, step: int = 10) -> int:
    """``part`` of ``whole`` in per cent; for researchers rounded to tens, and never 0 when
    some are filled nor 100 when some are missing (so small numbers do not show); of fewer
    than ``2 * step`` only none (0), some (50) or all (100), as finer shares would narrow
    down the small total the obfuscated count hides."""
    if whole <= 0:
        return 0
    exact = 100 * part / whole
    if role != "researcher":
        return round(exact)
    if whole < 2 * step:
        return 0 if part == 0 else 100 if part == whole else 50
    rounded = int((exact + 5) // 10 * 10)
    if part and rounded == 0:
        return 10
    if part < whole and rounded == 100:
        return 90
    return rounded


def _grouped(conn: Connection, query: Any, role: str, step: int) -> list[tuple[str, int]]:
    rows = [(str(label or NOT_RECORDED), int(n)) for label, n in conn.execute(query)]
    merged: dict[str, int] = {}
    for label, n in rows:
        merged[label] = merged.get(label, 0) + n
    ordered = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
    return [(label, as_seen(n, role, step)) for label, n in ordered]


def thickness_label(low: float, high: float | None) -> str:
    return f"\u2265{low:g}" if high is None else f"{low:g}\u2013{high:g}"


def _thickness(values: Sequence[float], role: str, step: int) -> list[tuple[str, int]]:
    counts = [0] * len(THICKNESS_BINS)
    for value in values:
        for i, (low, high) in enumerate(THICKNESS_BINS):
            if value >= low and (high is None or value < high):
                counts[i] += 1
                break
    return [
        (thickness_label(low, high), as_seen(n, role, step))
        for (low, high), n in zip(THICKNESS_BINS, counts, strict=True)
    ]


def _filled(column: Any) -> Any:
    """How many rows have a value (text columns: a non-empty one)."""
    if isinstance(column.type, String):  # Text too
        return func.count(func.nullif(func.trim(column), ""))
    return func.count(column)


def image_figures(conn: Connection, found: FoundCollection, role: str, step: int) -> Figures:
    """Series of an image collection by modality, body part, slice thickness; completeness."""
    s, m, b = T["imaging_series"], T["modality"], T["body_part_examined"]
    acq, rec, info, study = (
        T["acquisition_parameters"],
        T["reconstruction_parameters"],
        T["modality_information"],
        T["imaging_study"],
    )
    mine = s.c.image_collection_id == found.id
    by_modality = (
        select(func.coalesce(m.c.code, s.c.modality_value), func.count())
        .select_from(s.outerjoin(m, m.c.id == s.c.modality_id))
        .where(mine)
        .group_by(m.c.code, s.c.modality_value)
    )
    by_body_part = (
        select(
            func.coalesce(b.c.code, s.c.body_part_examined_value, s.c.anatomic_region_meaning),
            func.count(),
        )
        .select_from(s.outerjoin(b, b.c.id == s.c.body_part_examined_id))
        .where(mine)
        .group_by(b.c.code, s.c.body_part_examined_value, s.c.anatomic_region_meaning)
    )
    thickness = conn.execute(
        select(acq.c.slice_thickness)
        .join(s, s.c.id == acq.c.imaging_series_id)
        .where(mine, acq.c.slice_thickness.is_not(None))
    ).scalars()
    attributes = (
        ("Modality", s.c.modality_value),
        (
            "Body part examined",
            func.coalesce(s.c.body_part_examined_value, s.c.anatomic_region_code),
        ),
        ("Series description", s.c.series_description),
        ("Study date", study.c.study_date),
        ("Patient age", study.c.patient_age_years),
        ("Manufacturer", info.c.manufacturer),
        ("Model", info.c.manufacturer_model_name),
        ("Slice thickness", acq.c.slice_thickness),
        ("Pixel spacing", acq.c.pixel_spacing_row),
        ("Reconstruction kernel", rec.c.convolution_kernel),
    )
    row = conn.execute(
        select(func.count(), *(_filled(column) for _, column in attributes))
        .select_from(
            s.join(study, study.c.id == s.c.imaging_study_id)
            .outerjoin(acq, acq.c.imaging_series_id == s.c.id)
            .outerjoin(rec, rec.c.imaging_series_id == s.c.id)
            .outerjoin(info, info.c.id == acq.c.modality_information_id)
        )
        .where(mine)
    ).one()
    total = int(row[0])
    return Figures(
        series_by_modality=_grouped(conn, by_modality, role, step),
        series_by_body_part=_grouped(conn, by_body_part, role, step),
        slice_thickness=_thickness([float(v) for v in thickness], role, step) if total else [],
        completeness=[
            (label, shown_share(int(n), total, role, step))
            for (label, _), n in zip(attributes, row[1:], strict=True)
        ]
        if total
        else [],
        completeness_of="series",
        total=as_seen(total, role, step),
    )


def sample_figures(conn: Connection, found: FoundCollection, role: str, step: int) -> Figures:
    """Samples of a sample collection by material type and storage temperature; how many
    have each attribute recorded."""
    x, mt, st, d = T["sample"], T["material_type"], T["storage_temperature"], T["sample_donor"]
    mine = x.c.collection_id == found.id
    by_material = (
        select(mt.c.label, func.count())
        .select_from(x.outerjoin(mt, mt.c.id == x.c.material_type_id))
        .where(mine)
        .group_by(mt.c.label)
    )
    by_temperature = (
        select(st.c.label, func.count())
        .select_from(x.outerjoin(st, st.c.id == x.c.storage_temperature_id))
        .where(mine)
        .group_by(st.c.label)
    )
    attributes = (
        ("Material type", x.c.material_type_id),
        ("Storage temperature", x.c.storage_temperature_id),
        ("Creation date", x.c.creation_date),
        ("Anatomical site", func.coalesce(x.c.anatomical_site_code, x.c.anatomical_site_free_text)),
        ("Donor sex", d.c.sex_id),
    )
    row = conn.execute(
        select(func.count(), *(_filled(column) for _, column in attributes))
        .select_from(x.outerjoin(d, d.c.id == x.c.sample_donor_id))
        .where(mine)
    ).one()
    total = int(row[0])
    return Figures(
        samples_by_material=_grouped(conn, by_material, role, step),
        samples_by_temperature=_grouped(conn, by_temperature, role, step),
        completeness=[
            (label, shown_share(int(n), total, role, step))
            for (label, _), n in zip(attributes, row[1:], strict=True)
        ]
        if total
        else [],
        completeness_of="samples",
        total=as_seen(total, role, step),
    )


def collection_figures(
    conn: Connection, found: FoundCollection, *, role: str, step: int = 10
) -> Figures:
    """The figures of one collection, for its kind."""
    if found.kind == "image":
        return image_figures(conn, found, role, step)
    if found.kind == "sample_tissue":
        return sample_figures(conn, found, role, step)
    return Figures()
