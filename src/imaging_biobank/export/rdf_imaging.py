"""The individual level as RDF: donors (by pseudonym), their samples and events (diagnoses),
the DICOM hierarchy (studies, series with their modality, body part, dataset type, equipment
and acquisition and reconstruction parameters; instances on request), and the analyses with
their segmentations and imaging biomarkers. Only in a data manager's (``full``) graph."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Final

from rdflib import RDF, RDFS, URIRef
from rdflib import Literal as Lit
from sqlalchemy import ColumnElement, Integer, Select, false, literal, select, union

from imaging_biobank.catalogue.descriptors import member_donors
from imaging_biobank.db._schema import metadata
from imaging_biobank.export.rdf_build import Builder
from imaging_biobank.export.rdf_catalogue import collection_iri
from imaging_biobank.export.rdf_terms import DCTERMS, IB, PROV, XSD, attributes_of, snomed

T = metadata.tables
SEGMENTATION_CLASS: Final = {
    "manual": IB.ManualSegmentation,
    "semi_automated": IB.SemiAutomatedSegmentation,
    "automated": IB.AutomatedSegmentation,
}
BIOMARKER_CLASS: Final = {
    "textural": IB.TexturalFeatures,
    "deep": IB.DeepFeatures,
    "dynamic_signal": IB.DynamicSignalFeatures,
    "reported": IB.ReportedBiomarker,
}
# the kind tables of imaging_biomarker and the columns they add
BIOMARKER_DETAILS: Final = {
    "textural_features": {
        "feature_family": IB.featureFamily,
        "aggregation_method": IB.aggregationMethod,
        "discretisation": IB.discretisation,
        "image_filter": IB.imageFilter,
    },
    "deep_features": {
        "model_name": IB.modelName,
        "model_version": IB.modelVersion,
        "layer": IB.layer,
        "feature_index": IB.featureIndex,
    },
    "dynamic_signal_features": {
        "pharmacokinetic_model": IB.pharmacokineticModel,
        "input_function": IB.inputFunction,
        "time_point_seconds": IB.timePointSeconds,
    },
    "reported_biomarker": {
        "sr_sop_instance_uid": IB.srInstance,
        "tracking_identifier": IB.trackingIdentifier,
        "tracking_uid": IB.trackingUid,
        "method": IB.method,
    },
}
SNOMED_SCHEMES: Final = ("SCT",)  # SRT (SNOMED RT) codes are not SNOMED CT ids
_PARTIAL: Final = (
    (re.compile(r"\d{4}"), XSD.gYear),
    (re.compile(r"\d{4}-\d{2}"), XSD.gYearMonth),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), XSD.date),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"), XSD.dateTime),
)


def partial_date(text: str | None) -> Lit | None:
    """An ISO 8601 date as precise as it was given (``2018`` a gYear, ``2018-03`` a
    gYearMonth, ...); anything else as plain text."""
    if not text or not text.strip():
        return None
    text = text.strip()
    for pattern, datatype in _PARTIAL:
        if pattern.fullmatch(text):
            return Lit(text, datatype=datatype)
    return Lit(text)


def _digest(*parts: object) -> str:
    """A short stable key of some values (for rows without an identifier of their own)."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _by(rows: Iterable[Sequence[Any]]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = defaultdict(list)
    for key, value in rows:
        found[int(key)].append(value)
    return found


class Individuals:
    """Adds the individual-level rows of the scope's collections to a builder's graph."""

    def __init__(self, b: Builder):
        self.b = b
        c = T["collection"]
        self.identifiers = {
            int(i): str(s) for i, s in b.conn.execute(select(c.c.id, c.c.identifier))
        }
        self.ids = b.scope.ids
        self.image_ids = [c.id for c in b.scope.of_kind("image")]
        self.donors: dict[int, URIRef] = {}
        self.series: dict[int, URIRef] = {}
        self.series_uid: dict[int, str] = {}
        self.segmentations: dict[int, URIRef] = {}

    def add(self) -> None:
        self.add_donors()
        self.add_samples()
        self.add_events()
        self.add_dicom()
        if self.b.options.instances:
            self.add_instances()
        self.add_analyses()

    # --- donors, samples, events ------------------------------------------------------------

    def memberships(self) -> Select[Any]:
        """(collection id, donor id) of the scope: each collection's members as the catalogue
        counts them (``member_donors``: declared members and the donors of its items)."""
        nothing = select(literal(0, Integer).label("cid"), literal(0, Integer).label("did"))
        parts: list[Select[Any, Any]] = [nothing.where(false())]  # (a scope may be empty)
        for found in self.b.scope.collections:
            members = member_donors(found.id, found.kind).subquery()
            parts.append(
                select(literal(found.id, Integer).label("cid"), members.c.donor_id.label("did"))
            )
        return select(union(*parts).subquery())

    def add_donors(self) -> None:
        b, d = self.b, T["sample_donor"]
        members = self.memberships().subquery()
        pairs = b.conn.execute(select(members.c.did, members.c.cid)).all()
        donor_ids = select(members.c.did)
        for row in b.conn.execute(select(d).where(d.c.id.in_(donor_ids)).order_by(d.c.pseudonym)):
            iri = b.mint.item("donor", row.pseudonym)
            self.donors[int(row.id)] = iri
            b.graph.add((iri, RDF.type, IB.SampleDonor))
            b.add(iri, DCTERMS.identifier, row.pseudonym)
            b.add(iri, IB.sex, b.term("sex", row.sex_id))
            year = (row.birth_date or "")[:4]
            if re.fullmatch(r"\d{4}", year):  # a year at most: never the full birth date
                b.add(iri, IB.birthYear, Lit(year, datatype=XSD.gYear))
        for did, cid in pairs:
            b.add(self.donors[int(did)], IB.collection, collection_iri(b, self.identifiers[cid]))
        for link, table, predicate in (
            ("sample_donor_miabis_dataset_type", "miabis_dataset_type", IB.miabisDatasetType),
            ("sample_donor_use_access_condition", "use_access_condition", IB.useAccessCondition),
        ):
            t = T[link]
            rows = b.conn.execute(
                select(t.c.sample_donor_id, t.c[f"{table}_id"]).where(
                    t.c.sample_donor_id.in_(donor_ids)
                )
            )
            for did, term in rows:
                b.add(self.donors[int(did)], predicate, b.term(table, term))
        b.tally("donors", len(self.donors))

    def add_samples(self) -> None:
        b, s = self.b, T["sample"]
        rows = b.conn.execute(
            select(s)
            .where(s.c.collection_id.in_(self.ids))
            .order_by(s.c.collection_id, s.c.identifier)
        ).all()
        iris = {
            int(r.id): b.mint.item("sample", self.identifiers[r.collection_id], r.identifier)
            for r in rows
        }
        for row in rows:
            iri = iris[int(row.id)]
            b.graph.add((iri, RDF.type, IB.Sample))
            b.add(iri, DCTERMS.identifier, row.identifier)
            b.add(iri, IB.collection, collection_iri(b, self.identifiers[row.collection_id]))
            b.add(iri, IB.donor, self.donors.get(int(row.sample_donor_id)))
            b.add(iri, IB.materialType, b.term("material_type", row.material_type_id))
            b.add(
                iri,
                IB.storageTemperature,
                b.term("storage_temperature", row.storage_temperature_id),
            )
            b.add(iri, IB.creationDate, partial_date(row.creation_date))
            b.add(iri, IB.anatomicalSiteOntology, row.anatomical_site_ontology)
            b.add(iri, IB.anatomicalSiteVersion, row.anatomical_site_version)
            b.add(iri, IB.anatomicalSiteCode, row.anatomical_site_code)
            b.add(iri, IB.anatomicalSiteDescription, row.anatomical_site_description)
            b.add(iri, IB.sampleSource, b.term("sample_source", row.sample_source_id))
        sample_ids = select(s.c.id).where(s.c.collection_id.in_(self.ids))
        for link, table, predicate in (
            ("sample_disease", "disease", IB.diagnosis),
            ("sample_use_access_condition", "use_access_condition", IB.useAccessCondition),
        ):
            t = T[link]
            found = b.conn.execute(
                select(t.c.sample_id, t.c[f"{table}_id"]).where(t.c.sample_id.in_(sample_ids))
            )
            for sid, term in found:
                b.add(iris[int(sid)], predicate, b.term(table, term))
        b.tally("samples", len(rows))

    def add_events(self) -> None:
        """The events (diagnoses, ...) of the scope's donors: a donor's diagnoses describe the
        donor, whichever collection brought them (as the cohort engine's diagnosis key)."""
        b, e = self.b, T["event"]
        members = self.memberships().subquery()
        rows = b.conn.execute(
            select(e).where(e.c.sample_donor_id.in_(select(members.c.did))).order_by(e.c.identifier)
        ).all()
        for row in rows:
            iri = b.mint.item("event", row.identifier)
            b.graph.add((iri, RDF.type, IB.Event))
            b.add(iri, DCTERMS.identifier, row.identifier)
            b.add(iri, IB.donor, self.donors.get(int(row.sample_donor_id)))
            b.add(iri, IB.eventType, row.event_type)
            b.add(iri, IB.eventDate, partial_date(row.event_date))
            b.add(iri, IB.ageAtEvent, row.age_at_event, XSD.decimal)
            b.add(iri, IB.ageUnit, b.term("age_unit", row.age_unit_id))
            b.add(iri, IB.diagnosis, b.term("disease", row.disease_id))
        b.tally("events", len(rows))

    # --- DICOM ----------------------------------------------------------------------------

    def _series_ids(self) -> Select[Any]:
        s = T["imaging_series"]
        return select(s.c.id).where(s.c.image_collection_id.in_(self.image_ids))

    def _by_series(self, table: str, *extra: Any) -> dict[int, Any]:
        t = T[table]
        query = select(t, *extra).where(t.c.imaging_series_id.in_(self._series_ids()))
        if table == "reconstruction_parameters":
            a = T["algorithm"]
            query = query.outerjoin(a, a.c.id == t.c.algorithm_id)
        return {int(r.imaging_series_id): r for r in self.b.conn.execute(query)}

    def add_dicom(self) -> None:
        b = self.b
        s, st = T["imaging_series"], T["imaging_study"]
        series = b.conn.execute(
            select(s, st.c.study_instance_uid)
            .join(st, st.c.id == s.c.imaging_study_id)
            .where(s.c.image_collection_id.in_(self.image_ids))
            .order_by(s.c.series_instance_uid)
        ).all()
        studies = b.conn.execute(
            select(st)
            .where(st.c.id.in_(select(s.c.imaging_study_id).where(s.c.id.in_(self._series_ids()))))
            .order_by(st.c.study_instance_uid)
        ).all()
        for row in studies:
            iri = b.mint.uid(row.study_instance_uid)
            b.graph.add((iri, RDF.type, IB.ImagingStudy))
            for attribute in attributes_of("imaging_study"):
                b.add(iri, attribute.predicate, row._mapping[attribute.column], attribute.datatype)
        acquisition = self._by_series("acquisition_parameters")
        reconstruction = self._by_series(
            "reconstruction_parameters", T["algorithm"].c.name.label("algorithm_name")
        )
        for row in series:
            iri = b.mint.uid(row.series_instance_uid)
            self.series[int(row.id)] = iri
            self.series_uid[int(row.id)] = row.series_instance_uid
            b.graph.add((iri, RDF.type, IB.ImagingSeries))
            b.add(iri, IB.imagingStudy, b.mint.uid(row.study_instance_uid))
            b.add(iri, IB.collection, collection_iri(b, self.identifiers[row.image_collection_id]))
            b.add(iri, IB.donor, self.donors.get(int(row.sample_donor_id)))
            b.add(iri, IB.modality, b.term("modality", row.modality_id))
            b.add(iri, IB.bodyPart, b.term("body_part_examined", row.body_part_examined_id))
            b.add(iri, IB.datasetType, b.term("dataset_type", row.dataset_type_id))
            for attribute in attributes_of("imaging_series"):
                b.add(iri, attribute.predicate, row._mapping[attribute.column], attribute.datatype)
            self._anatomic_region(iri, row)
            acq = acquisition.get(int(row.id))
            if acq is not None:
                if acq.modality_information_id is not None:
                    b.add(iri, IB.equipment, b.equipment(acq.modality_information_id))
                for attribute in attributes_of("acquisition_parameters"):
                    b.add(
                        iri, attribute.predicate, acq._mapping[attribute.column], attribute.datatype
                    )
            rec = reconstruction.get(int(row.id))
            if rec is not None:
                for attribute in attributes_of("reconstruction_parameters"):
                    b.add(
                        iri, attribute.predicate, rec._mapping[attribute.column], attribute.datatype
                    )
                b.add(iri, IB.reconstructionAlgorithmName, rec.algorithm_name)
        b.tally("imaging studies", len(studies))
        b.tally("series", len(series))

    def _anatomic_region(self, iri: URIRef, row: Any) -> None:
        """Anatomic Region Sequence (0008,2218): a SNOMED CT concept when coded in SCT."""
        b = self.b
        if not row.anatomic_region_code:
            return
        if (row.anatomic_region_scheme or "").strip().upper() in SNOMED_SCHEMES:
            b.add(iri, IB.anatomicRegion, snomed(row.anatomic_region_code.strip()))
        b.add(iri, IB.anatomicRegionScheme, row.anatomic_region_scheme)
        b.add(iri, IB.anatomicRegionCode, row.anatomic_region_code)
        b.add(iri, IB.anatomicRegionMeaning, row.anatomic_region_meaning)

    def add_instances(self) -> None:
        """Every instance of the exported series (many: on request)."""
        b, i = self.b, T["imaging_instance"]
        n = 0
        rows = b.conn.execute(
            select(i)
            .where(i.c.imaging_series_id.in_(self._series_ids()))
            .order_by(i.c.sop_instance_uid)
        )
        for row in rows:
            iri = b.mint.uid(row.sop_instance_uid)
            b.graph.add((iri, RDF.type, IB.ImagingInstance))
            b.add(iri, IB.imagingSeries, self.series[int(row.imaging_series_id)])
            b.add(iri, IB.datasetType, b.term("dataset_type", row.dataset_type_id))
            for attribute in attributes_of("imaging_instance"):
                b.add(iri, attribute.predicate, row._mapping[attribute.column], attribute.datatype)
            n += 1
        b.tally("instances", n)

    # --- analyses ---------------------------------------------------------------------------

    def add_analyses(self) -> None:
        analyses = self._analyses()
        self._segmentations(analyses)
        self._biomarkers(analyses)

    def _software(self, software_id: int | None) -> URIRef | None:
        if software_id is None:
            return None
        return collection_iri(self.b, self.identifiers[int(software_id)])

    def _analyses(self) -> dict[int, URIRef]:
        """The image analyses of the scope's image collections (``prov:Activity``), named by
        collection, type, name and their order among runs of the same name."""
        b, a = self.b, T["image_analysis"]
        rows = b.conn.execute(
            select(a).where(a.c.image_collection_id.in_(self.image_ids)).order_by(a.c.id)
        ).all()
        seen: dict[tuple[Any, ...], int] = defaultdict(int)
        iris: dict[int, URIRef] = {}
        for row in rows:
            key = (self.identifiers[row.image_collection_id], row.analysis_type, row.name)
            seen[key] += 1
            iri = b.mint.item("analysis", _digest(*key, seen[key]))
            iris[int(row.id)] = iri
            b.graph.add((iri, RDF.type, IB.ImageAnalysis))
            b.graph.add((iri, RDF.type, PROV.Activity))
            b.add(iri, RDFS.label, row.name)
            b.add(iri, DCTERMS.description, row.description)
            b.add(iri, IB.analysisType, row.analysis_type)
            b.add(iri, IB.collection, collection_iri(b, self.identifiers[row.image_collection_id]))
            b.add(iri, IB.software, self._software(row.software_source_code_id))
            b.add(iri, PROV.endedAtTime, row.performed_at)
        link = T["image_analysis_imaging_series"]
        used = b.conn.execute(
            select(link.c.image_analysis_id, link.c.imaging_series_id).where(
                link.c.image_analysis_id.in_(list(iris))
            )
        )
        for aid, sid in used:
            b.add(iris[int(aid)], PROV.used, self.series.get(int(sid)))
        b.tally("analyses", len(iris))
        return iris

    def _generated(
        self, link: str, column: str, analyses: dict[int, URIRef], ids: Select[Any]
    ) -> dict[int, list[URIRef]]:
        t = T[link]
        rows = self.b.conn.execute(
            select(t.c[column], t.c.image_analysis_id).where(t.c[column].in_(ids))
        )
        return _by((item, analyses[int(aid)]) for item, aid in rows if int(aid) in analyses)

    def _segmentations(self, analyses: dict[int, URIRef]) -> None:
        b, g = self.b, T["segmentation"]
        in_scope: ColumnElement[bool] = g.c.imaging_series_id.in_(self._series_ids())
        rows = b.conn.execute(select(g).where(in_scope).order_by(g.c.id)).all()
        made_by = self._generated(
            "image_analysis_segmentation",
            "segmentation_id",
            analyses,
            select(g.c.id).where(in_scope),
        )
        for row in rows:
            if row.source_sop_instance_uid and row.segment_number is not None:
                iri = b.mint.item(
                    "segmentation", row.source_sop_instance_uid, str(row.segment_number)
                )
            else:
                key = _digest(
                    self.series_uid[int(row.imaging_series_id)],
                    row.kind,
                    row.label,
                    row.mask_sha256,
                )
                iri = b.mint.item("segmentation", key)
            self.segmentations[int(row.id)] = iri
            b.graph.add((iri, RDF.type, IB.Segmentation))
            b.graph.add((iri, RDF.type, SEGMENTATION_CLASS[row.kind]))
            b.add(iri, RDFS.label, row.label)
            b.add(iri, IB.imagingSeries, self.series[int(row.imaging_series_id)])
            if row.source_series_id is not None:
                b.add(iri, IB.sourceSeries, self.series.get(int(row.source_series_id)))
            b.add(iri, IB.segmentationType, b.term("segmentation_type", row.segmentation_type_id))
            b.add(iri, IB.segmentNumber, row.segment_number, XSD.integer)
            if (
                row.property_type_scheme or ""
            ).upper() in SNOMED_SCHEMES and row.property_type_code:
                b.add(iri, IB.segmentedPropertyType, snomed(row.property_type_code))
            b.add(iri, IB.algorithmName, row.algorithm_name)
            b.add(iri, IB.software, self._software(row.software_source_code_id))
            b.add(iri, IB.voxelCount, row.voxel_count, XSD.integer)
            b.add(iri, IB.volumeMm3, row.volume_mm3, XSD.decimal)
            b.add(iri, IB.maskSha256, row.mask_sha256)
            for activity in made_by.get(int(row.id), []):
                b.add(iri, PROV.wasGeneratedBy, activity)
        b.tally("segmentations", len(rows))

    def _biomarkers(self, analyses: dict[int, URIRef]) -> None:
        b, m = self.b, T["imaging_biomarker"]
        details = [(T[name], columns) for name, columns in BIOMARKER_DETAILS.items()]
        query = select(m, *(t.c[c] for t, columns in details for c in columns))
        for t, _ in details:
            query = query.outerjoin(t, t.c.id == m.c.id)
        in_scope = m.c.imaging_series_id.in_(self._series_ids())
        rows = b.conn.execute(query.where(in_scope).order_by(m.c.id)).all()
        made_by = self._generated(
            "image_analysis_imaging_biomarker", "imaging_biomarker_id", analyses,
            select(m.c.id).where(in_scope),
        )  # fmt: skip
        seen: dict[str, int] = defaultdict(int)
        detail_columns = [c for _, columns in details for c in columns]
        for row in rows:
            values = row._mapping
            segmentation = (
                self.segmentations.get(int(row.segmentation_id))
                if row.segmentation_id is not None
                else None
            )
            # named from what does not depend on the base: the IRIs' parts after it
            local = len(b.options.base)
            generated = sorted(str(a)[local:] for a in made_by.get(int(row.id), []))
            key = _digest(
                self.series_uid[int(row.imaging_series_id)],
                str(segmentation)[local:] if segmentation is not None else None,
                row.kind, row.name,
                row.code_scheme, row.code, *(values[c] for c in detail_columns), *generated,
            )  # fmt: skip
            seen[key] += 1
            iri = b.mint.item("biomarker", key if seen[key] == 1 else f"{key}-{seen[key]}")
            b.graph.add((iri, RDF.type, IB.ImagingBiomarker))
            b.graph.add((iri, RDF.type, BIOMARKER_CLASS[row.kind]))
            b.add(iri, IB.imagingSeries, self.series[int(row.imaging_series_id)])
            b.add(iri, IB.segmentation, segmentation)
            b.add(iri, IB.featureName, row.name)
            b.add(iri, IB.codingScheme, row.code_scheme)
            b.add(iri, IB.featureCode, row.code)
            b.add(iri, RDF.value, row.value, XSD.decimal)
            b.add(iri, IB.unit, row.unit)
            b.add(iri, IB.valueCode, row.value_code)
            b.add(iri, IB.valueCodeMeaning, row.value_code_meaning)
            for _, columns in details:
                for column, predicate in columns.items():
                    b.add(iri, predicate, values[column])
            for activity in made_by.get(int(row.id), []):
                b.add(iri, PROV.wasGeneratedBy, activity)
        b.tally("imaging biomarkers", len(rows))
