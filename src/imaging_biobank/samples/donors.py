"""Sample donors by pseudonym: the one place non-imaging imports find or create them.

Every source identifier (a sample sheet's donor id, an e-form's record id) goes through
the same keyed function as DICOM PatientIDs (``deid.pseudonym``), so the row found here is
the donor the images already have. A donor first met without a sex gets ``Unknown``, as
ingest does; a later row that knows the sex fills it in.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, insert, select

from imaging_biobank.db._schema import metadata
from imaging_biobank.samples.terms import TermRows
from imaging_biobank.vocab import catalog

T = metadata.tables
UNKNOWN_SEX = "Unknown"
IN_CHUNK = 500


def donor_ids(conn: Connection, pseudonyms: Iterable[str]) -> dict[str, int]:
    """The row id of each pseudonym's donor, creating (with sex ``Unknown``) those not
    stored yet."""
    wanted = list(dict.fromkeys(pseudonyms))
    donor = T["sample_donor"]
    found: dict[str, int] = {}
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start : start + IN_CHUNK]
        for id_, pseudonym in conn.execute(
            select(donor.c.id, donor.c.pseudonym).where(donor.c.pseudonym.in_(chunk))
        ):
            found[pseudonym] = int(id_)
    new = [p for p in wanted if p not in found]
    if new:
        unknown = TermRows(conn).id(catalog.resolve("sex", UNKNOWN_SEX))
        ids = conn.execute(
            insert(donor).returning(donor.c.id, sort_by_parameter_order=True),
            [{"pseudonym": p, "sex_id": unknown} for p in new],
        ).scalars()
        found.update(zip(new, (int(i) for i in ids), strict=True))
    return found
