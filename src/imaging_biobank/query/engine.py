"""Running a cohort query: the tree compiled to SQL on the model, counts per collection,
small counts obfuscated for researchers, a manifest of the matching series.

Semantics: a donor matches when the query is true of them, where criteria on series are
true of one series and criteria on samples of one sample: within an AND, the series
criteria are one EXISTS over the donor's series (so ``modality = CT and slice_thickness
<= 3`` means one CT series of at most 3 mm), likewise for samples. The matching series
(and samples) are the matching donors' series (samples) that meet the top-level series
(sample) criteria. Donors whose use and access conditions rule out the declared purpose
are left out, as are samples whose own conditions do.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    FromClause,
    Integer,
    Select,
    and_,
    cast,
    distinct,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    union,
    union_all,
)
from sqlalchemy.sql import visitors

from imaging_biobank.db._schema import metadata
from imaging_biobank.db.lookup import CollectionLookupError, find_collection
from imaging_biobank.query.ast import Leaf, Node, Query, leaves
from imaging_biobank.query.keys import (
    DONOR,
    EFORM_OPERATORS,
    ORDERED,
    SAMPLE,
    SERIES,
    Key,
    QueryKeyError,
    body_part_codes,
    choice_codes,
    diagnosis_codes,
    did_you_mean,
    eform_value_kind,
    equivalent_terms,
    iso_prefix,
    key,
    listed,
    nearest,
    yes_no,
)
from imaging_biobank.samples.consent import Purpose, ruled_out
from imaging_biobank.vocab import catalog
from imaging_biobank.vocab.codes import SYSTEMS, CodeError

T = metadata.tables
ROLES = ("researcher", "data_manager", "admin")
FORMAT = "imaging-biobank/cohort@1"


def obfuscate(n: int, step: int = 10) -> int:
    """The Locator's default: 0 stays 0, 1 to ``step - 1`` become ``step``, others are
    rounded to the nearest multiple of ``step`` (halves up). Deterministic."""
    if n <= 0:
        return 0
    if n < step:
        return step
    return ((n + step // 2) // step) * step


def as_seen(n: int, role: str, step: int = 10) -> int:
    """A count as ``role`` may see it: obfuscated for researchers, exact for the others."""
    return obfuscate(n, step) if role == "researcher" else n


@dataclass
class Counts:
    donors: int = 0
    samples: int = 0
    studies: int = 0
    series: int = 0
    instances: int = 0

    def obfuscated(self, step: int = 10) -> Counts:
        return Counts(*(obfuscate(v, step) for v in self.__dict__.values()))


@dataclass
class CohortResult:
    query: str
    totals: Counts
    by_collection: list[dict[str, Any]] = field(default_factory=list)
    strata: dict[str, dict[str, int]] = field(default_factory=dict)
    obfuscated: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "query": self.query,
            "obfuscated": self.obfuscated,
            "totals": self.totals.__dict__,
            "by_collection": self.by_collection,
            "strata": self.strata,
        }


class _Compiler:
    """Leaves to predicates on their level's table, with the vocabulary ids looked up."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.series = T["imaging_series"]
        self.study = T["imaging_study"]
        self.acq = T["acquisition_parameters"]
        self.rec = T["reconstruction_parameters"]
        self.info = T["modality_information"]
        self.sample = T["sample"]
        self.donor = T["sample_donor"]
        self._eform_cache: list[Any] | None = None

    # --- values -------------------------------------------------------------------------

    def term_ids(self, table: str, values: Iterable[Any]) -> list[int]:
        pairs: set[tuple[str, str]] = set()
        for value in values:
            pairs |= equivalent_terms(table, str(value))
        t, v = T[table], T["vocabulary"]
        rows = self.conn.execute(
            select(t.c.id, v.c.name, t.c.code)
            .join(v, v.c.id == t.c.vocabulary_id)
            .where(t.c.code.in_({code for _, code in pairs}))
        ).all()
        return [int(r.id) for r in rows if (r.name, r.code) in pairs]

    def collection_ids(self, values: Iterable[Any]) -> list[int]:
        ids = []
        for value in values:
            try:
                ids.append(find_collection(self.conn, str(value)).id)
            except CollectionLookupError as error:
                raise QueryKeyError(str(error)) from None
        return ids

    # --- leaves ---------------------------------------------------------------------------

    def leaf(self, leaf: Leaf) -> ColumnElement[bool]:
        k = key(leaf.key)
        values = _values(leaf)
        if k.kind == "eform":
            return self._eform(leaf, k)
        if k.kind == "biomarker":
            return self._biomarker(leaf, k)
        if k.kind in ("feature", "harmonised"):
            return self._feature(leaf, k)
        if k.kind == "gene":
            return self._membership(leaf, self._donor_with_gene(values))
        if k.kind == "study":
            return self._membership(leaf, self._donor_in(self.study_collection_ids(values)))
        if k.kind == "count":
            return self.sample_count(leaf)
        if k.kind == "term":
            column = self._column(k.column)
            assert k.vocabulary is not None
            if k.vocabulary == "body_part_examined":
                values = sorted(set().union(*(body_part_codes(v) for v in values)))
            return self._membership(leaf, column.in_(self.term_ids(k.vocabulary, values)))
        if k.kind == "collection":
            if k.level == DONOR:
                return self._membership(leaf, self._donor_in_collections(values))
            return self._membership(leaf, self._column(k.column).in_(self.collection_ids(values)))
        if k.kind == "diagnosis":
            codes: set[str] = set()
            for value in values:
                codes |= diagnosis_codes(value)
            return self._membership(leaf, self._donor_with_diagnosis(codes))
        column = self._column(k.column)
        if k.kind == "text":
            lowered = [str(v).lower() for v in values]
            if leaf.type in ("EQUALS", "NOT_EQUALS", "IN", "NOT_IN"):
                return self._membership(leaf, func.lower(column).in_(lowered))
            raise QueryKeyError(f"{k.name} is text: use =, != or in")
        converted = [_number(k.name, v) if k.kind == "number" else _date(k.name, v) for v in values]
        return _compare(column, leaf.type, converted, k.name)

    def _membership(self, leaf: Leaf, test: ColumnElement[bool]) -> ColumnElement[bool]:
        if leaf.type in ("EQUALS", "IN"):
            return test
        if leaf.type in ("NOT_EQUALS", "NOT_IN"):
            return not_(test)
        raise QueryKeyError(f"{leaf.key} takes =, !=, in or not in, not {leaf.type}")

    def _column(self, dotted: str) -> Any:
        table, column = dotted.split(".")
        return T[table].c[column]

    def _donor_in_collections(self, values: list[Any]) -> ColumnElement[bool]:
        return self._donor_in(self.collection_ids(values))

    def _donor_in(self, ids: list[int]) -> ColumnElement[bool]:
        """Donors with data in any of the collections: declared members, and the donors of
        their series, samples, e-form records and molecular biomarker results."""
        link, record = T["collection_sample_donor"], T["clinical_record"]
        result = T["molecular_biomarker_result"]
        members = union(
            select(link.c.sample_donor_id).where(link.c.collection_id.in_(ids)),
            select(self.series.c.sample_donor_id).where(self.series.c.image_collection_id.in_(ids)),
            select(self.sample.c.sample_donor_id).where(self.sample.c.collection_id.in_(ids)),
            select(record.c.sample_donor_id).where(record.c.collection_id.in_(ids)),
            select(result.c.sample_donor_id).where(result.c.collection_id.in_(ids)),
        )
        return self.donor.c.id.in_(members)

    def _donor_with_diagnosis(self, codes: set[str]) -> ColumnElement[bool]:
        disease, event, link = T["disease"], T["event"], T["sample_disease"]
        ids = select(disease.c.id).where(disease.c.code.in_(codes))
        by_event = select(event.c.sample_donor_id).where(event.c.disease_id.in_(ids))
        by_sample = (
            select(self.sample.c.sample_donor_id)
            .join(link, link.c.sample_id == self.sample.c.id)
            .where(link.c.disease_id.in_(ids))
        )
        return self.donor.c.id.in_(by_event.union(by_sample))

    # --- the keys of the wider model: e-forms, molecular biomarkers, features, studies ----

    def _eform_rows(self) -> list[Any]:
        """Every stored e-form field with its form (read once per query)."""
        if self._eform_cache is None:
            ff, f = T["e_form_field"], T["e_form"]
            rows = self.conn.execute(
                select(
                    ff.c.id,
                    ff.c.name,
                    ff.c.position,
                    ff.c.field_type,
                    ff.c.validation_type,
                    ff.c.value_set,
                    ff.c.identifier,
                    ff.c.choices,
                    ff.c.unit,
                    f.c.id.label("form_id"),
                    f.c.name.label("form"),
                    f.c.collection_id,
                )
                .join(f, f.c.id == ff.c.e_form_id)
                .order_by(f.c.id, ff.c.position)
            ).all()
            self._eform_cache = list(rows)
        return self._eform_cache

    def _eform_fields(self, k: Key) -> tuple[str, list[Any]]:
        """How the fields an ``eform.`` key names compare, and the fields (of one form, or
        of several forms that define the field alike); a message naming the fields for an
        unknown or ambiguous one."""
        rows = self._eform_rows()
        assert k.parameter is not None
        form, _, name = k.parameter.lower().rpartition(".")
        matches = [r for r in rows if r.name == name and (not form or r.form == form)]
        if not matches:
            if not rows:
                raise QueryKeyError(
                    f"{k.name}: no e-form is imported yet (imaging-biobank import form"
                    " DICTIONARY.csv --collection ...); eform.<field> names one of its fields"
                )
            owners = sorted({r.form for r in rows if r.name == name})
            if owners:
                raise QueryKeyError(
                    f"{k.name}: form {form!r} has no field {name!r}; it is a field of"
                    f" {', '.join(owners)}"
                )
            names = list(dict.fromkeys(r.name for r in rows))
            close = nearest(name, names)
            hint = did_you_mean(["eform." + c for c in close])
            raise QueryKeyError(
                f"unknown e-form field {k.parameter!r}{hint}; fields: {listed(names)}"
            )
        first_forms: dict[int, int] = {}
        for r in rows:
            first_forms.setdefault(r.collection_id, r.form_id)
        for r in matches:
            if r.position == 1 and first_forms[r.collection_id] == r.form_id:
                raise QueryKeyError(
                    f"{k.name} is the record id: records are stored under a keyed token of it,"
                    " never the id, so it cannot be queried"
                )
        shapes = {self._eform_shape(r) for r in matches}
        if len(shapes) > 1:
            described = "; ".join(
                f"{r.form}: {self._eform_describe(r)}" for r in sorted(matches, key=_by_form)
            )
            spelled = " or ".join(sorted({f"eform.{r.form}.{r.name}" for r in matches}))
            raise QueryKeyError(
                f"{k.name} is a field of several forms that define it differently ({described});"
                f" write {spelled}"
            )
        return shapes.pop()[0], matches

    @staticmethod
    def _eform_shape(row: Any) -> tuple[Any, ...]:
        """What a field's values mean (kind, unit, choices, value set): fields of several
        forms alike in this are one key."""
        kind = eform_value_kind(
            row.field_type, row.validation_type, row.value_set, bool(row.identifier)
        )
        choices = tuple((str(c["code"]), str(c["label"])) for c in row.choices or [])
        return kind, row.unit, choices, row.value_set

    def _eform_describe(self, row: Any) -> str:
        """What a field holds, for messages: ``number [U/L]``, ``choice (1 L1, 2 L2)``."""
        kind, unit, choices, value_set = self._eform_shape(row)
        text = str(kind) + (f" [{unit}]" if unit else "") + (f" ({value_set})" if value_set else "")
        if choices:
            text += " (" + ", ".join(f"{code} {label}" for code, label in choices) + ")"
        return text

    def _eform(self, leaf: Leaf, k: Key) -> ColumnElement[bool]:
        """Donors with an answer of the field that meets the comparison; with != or not in,
        donors who answered the field and none of whose answers is one of the values (for a
        checkbox: who have a record of its form and did not tick any of them)."""
        kind, fields = self._eform_fields(k)
        field = fields[0]
        if kind == "identifier":
            raise QueryKeyError(
                f"{k.name} is an identifier field: its values are never stored, so it cannot"
                " be queried"
            )
        if kind == "none":
            raise QueryKeyError(f"{k.name} is a {field.field_type} field: it holds no value")
        v, r = T["clinical_value"], T["clinical_record"]
        positive = _positive(leaf.type)
        values = _values(leaf)
        test: ColumnElement[bool]
        if kind == "number":
            unit = f" [{field.unit}]" if field.unit else ""
            numbers = [_number(f"{k.name} (a number{unit})", x) for x in values]
            test = _compare(v.c.value_number, positive, numbers, k.name)
        elif kind in ("date", "time"):
            texts = [iso_prefix(k.name, kind, x) for x in values]
            test = _prefix_compare(v.c.value_date, positive, texts)
        elif positive in ORDERED:
            raise QueryKeyError(
                f"{k.name} is a field of kind {self._eform_describe(field)}:"
                f" use {EFORM_OPERATORS[kind]}"
            )
        elif kind in ("choice", "checkbox"):
            codes: set[str] = set()
            for x in values:
                codes |= choice_codes(k.name, list(field.choices or []), x)
            test = v.c.raw.in_(sorted(codes))
        elif kind == "yesno":
            test = v.c.raw.in_(sorted({yes_no(k.name, x) for x in values}))
        elif kind == "code":
            test = self._code_test(k.name, str(field.value_set), values, v.c.value_code)
        else:
            test = func.lower(v.c.raw).in_([str(x).strip().lower() for x in values])
        ids = [f.id for f in fields]
        answers = select(r.c.sample_donor_id).join(v, v.c.clinical_record_id == r.c.id)
        matching = answers.where(v.c.e_form_field_id.in_(ids), test)
        if positive == leaf.type:
            return self.donor.c.id.in_(matching)
        if kind == "checkbox":
            answered = select(r.c.sample_donor_id).where(
                r.c.e_form_id.in_({f.form_id for f in fields})
            )
        else:
            answered = answers.where(v.c.e_form_field_id.in_(ids))
        return and_(self.donor.c.id.in_(answered), self.donor.c.id.not_in(matching))

    def _code_test(
        self, name: str, value_set: str, values: list[Any], column: ColumnElement[Any]
    ) -> ColumnElement[bool]:
        """A value-set field's codes: ICD-10 with its sub-codes, ATC with the codes below
        it, other systems (SNOMED CT, LOINC) exactly; each value checked by its system."""
        system = SYSTEMS.get(value_set)
        if system is None:
            return func.lower(column).in_([str(x).strip().lower() for x in values])
        if value_set == "icd-10":
            codes: set[str] = set()
            for x in values:
                try:
                    codes |= diagnosis_codes(str(x))
                except QueryKeyError as error:
                    raise QueryKeyError(f"{name}: {error}") from None
            return column.in_(sorted(codes))
        checked = []
        for x in values:
            try:
                checked.append(system.check(str(x)))
            except CodeError as error:
                raise QueryKeyError(f"{name} takes {system.title} codes: {error}") from None
        if value_set == "atc":
            return or_(*(column.like(f"{code}%") for code in checked))
        return column.in_(checked)

    def gene_ids(self, values: Iterable[Any]) -> list[int]:
        """The ids of the HGNC genes the values name (symbol or HGNC id)."""
        index = catalog.index("gene")
        for value in values:
            if index.find(str(value)) is None:
                symbols = [t.label for info in index.editions for t in catalog.terms(info.name)]
                close = nearest(str(value), symbols, 3)
                raise QueryKeyError(
                    f"{value!r} is not an HGNC gene symbol or id of the shipped gene list"
                    f"{did_you_mean(close)}; see imaging-biobank vocab terms gene"
                )
        return self.term_ids("gene", values)

    def _donor_with_gene(self, values: list[Any]) -> ColumnElement[bool]:
        m = T["molecular_biomarker_result"]
        tested = select(m.c.sample_donor_id).where(m.c.gene_id.in_(self.gene_ids(values)))
        return self.donor.c.id.in_(tested)

    def _biomarker_selector(self, k: Key) -> tuple[ColumnElement[bool], str]:
        """The results a ``biomarker.`` key names: of an HGNC gene, of a LOINC test, or by
        the name they were reported with (or an uncoded gene symbol), any case."""
        m = T["molecular_biomarker_result"]
        assert k.parameter is not None
        name = k.parameter
        gene = catalog.index("gene").find(name)
        if gene is not None:
            return m.c.gene_id.in_(self.term_ids("gene", [name])), f"gene {gene.label}"
        if _LOINC.fullmatch(name):
            return m.c.loinc_code == name, f"LOINC {name}"
        lowered = name.lower()
        selector = or_(func.lower(m.c.biomarker) == lowered, func.lower(m.c.gene_symbol) == lowered)
        if self.conn.execute(select(m.c.id).where(selector).limit(1)).first() is None:
            known = sorted(
                {
                    str(x)
                    for row in self.conn.execute(select(m.c.gene_symbol, m.c.biomarker).distinct())
                    for x in row
                    if x
                },
                key=str.lower,
            )
            close = nearest(name, known, 3)
            raise QueryKeyError(
                f"{k.name}: {name!r} is not an HGNC gene, a LOINC code nor the name of a stored"
                f" result{did_you_mean(close)}; results are of: {listed(known) or 'none yet'}"
            )
        return selector, repr(name)

    def _biomarker(self, leaf: Leaf, k: Key) -> ColumnElement[bool]:
        """Donors with a result of the biomarker meeting the comparison: numbers against the
        numeric value, text against the category or the variant, any case; with != or not
        in, donors tested for it none of whose results is one of the values."""
        m = T["molecular_biomarker_result"]
        selector, what = self._biomarker_selector(k)
        positive = _positive(leaf.type)
        values = _values(leaf)
        stored = self.conn.execute(
            select(m.c.value_category, m.c.value_text, m.c.value_number, m.c.unit)
            .where(selector)
            .distinct()
        ).all()
        texts = sorted({str(x) for row in stored for x in row[:2] if x}, key=str.lower)
        units = sorted({row.unit or "1" for row in stored if row.value_number is not None})
        shown = ", ".join(texts + ([f"numbers in {', '.join(units)}"] if units else []))
        test: ColumnElement[bool]
        if positive in ORDERED:
            numbers = [_number(k.name, x) for x in values]
            if stored and not units:
                raise QueryKeyError(
                    f"{k.name}: the results of {what} are not numbers ({shown}): use = or in"
                )
            test = _compare(m.c.value_number, positive, numbers, k.name)
        else:
            numbers = [float(x) for x in values if _is_number(x)]
            words = [str(x).strip() for x in values if not _is_number(x)]
            known = {t.lower() for t in texts}
            unknown = [w for w in words if w.lower() not in known]
            if stored and unknown:
                close = nearest(unknown[0], texts, 3)
                raise QueryKeyError(
                    f"{k.name}: no result of {what} is {unknown[0]!r}{did_you_mean(close)};"
                    f" its results: {shown}"
                )
            parts: list[ColumnElement[bool]] = []
            if numbers:
                parts.append(m.c.value_number.in_(numbers))
            if words:
                lowered = [w.lower() for w in words]
                parts.append(func.lower(m.c.value_category).in_(lowered))
                parts.append(func.lower(m.c.value_text).in_(lowered))
            test = or_(*parts)
        matching = select(m.c.sample_donor_id).where(selector, test)
        if positive == leaf.type:
            return self.donor.c.id.in_(matching)
        tested = select(m.c.sample_donor_id).where(selector)
        return and_(self.donor.c.id.in_(tested), self.donor.c.id.not_in(matching))

    def _feature_selector(self, k: Key) -> ColumnElement[bool]:
        """The imaging biomarkers a ``feature.``/``harmonised.`` key names: by code (IBSI
        ``8ZQL``, or ``SCHEME:code``) those of the unfiltered image (a code names the
        quantity, the filtered variants are named: ``wavelet-HHH_glcm_JointEnergy``), else
        by name (exactly, else in any case)."""
        b, textural = T["imaging_biomarker"], T["textural_features"]
        assert k.parameter is not None
        name = k.parameter
        scheme, colon, code = name.partition(":")
        unfiltered = b.c.id.not_in(
            select(textural.c.id).where(textural.c.image_filter.is_not(None))
        )
        tries: list[ColumnElement[bool]] = [
            and_(b.c.code.in_(sorted({name, name.upper()})), unfiltered)
        ]
        if colon:
            tries.insert(
                0,
                and_(func.upper(b.c.code_scheme) == scheme.upper(), b.c.code == code, unfiltered),
            )
        tries += [b.c.name == name, func.lower(b.c.name) == name.lower()]
        for selector in tries:
            if self.conn.execute(select(b.c.id).where(selector).limit(1)).first() is not None:
                return selector
        names = list(self.conn.execute(select(b.c.name).distinct().order_by(b.c.name)).scalars())
        close = _closest_features(name, names)
        what = f"{len(names)} feature names are stored" if names else "no feature is stored yet"
        raise QueryKeyError(
            f"{k.name}: no imaging biomarker is named or coded {name!r}{did_you_mean(close)};"
            f" give a name, an IBSI code such as 8ZQL, or SCHEME:code ({what})"
        )

    def _feature(self, leaf: Leaf, k: Key) -> ColumnElement[bool]:
        """Series with a value of the feature meeting the comparison (raw: any run's value;
        harmonised: the value of its latest harmonisation run); with != or not in, series
        with the feature none of whose values is one of the values."""
        b, h = T["imaging_biomarker"], T["harmonised_value"]
        selector = self._feature_selector(k)
        positive = _positive(leaf.type)
        values = _values(leaf)
        test: ColumnElement[bool]
        if k.kind == "harmonised":
            later = h.alias("later")
            latest = h.c.image_analysis_id == (
                select(func.max(later.c.image_analysis_id))
                .where(later.c.imaging_biomarker_id == h.c.imaging_biomarker_id)
                .scalar_subquery()
            )
            found = select(b.c.imaging_series_id).join(h, h.c.imaging_biomarker_id == b.c.id)
            if self.conn.execute(found.where(selector).limit(1)).first() is None:
                done = found.with_only_columns(b.c.name).distinct().order_by(b.c.name)
                names = list(self.conn.execute(done).scalars())
                raise QueryKeyError(
                    f"{k.name}: the feature has no harmonised values (imaging-biobank harmonise"
                    f" combat ...); harmonised features: {listed(names) or 'none yet'}"
                )
            numbers = [_number(k.name, x) for x in values]
            matching = found.where(selector, latest, _compare(h.c.value, positive, numbers, k.name))
            has = found.where(selector)
        else:
            types = set(
                self.conn.execute(select(b.c.value_type).where(selector).distinct()).scalars()
            )
            words = [str(x).strip().lower() for x in values if not _is_number(x)]
            if words and "qualitative" not in types:
                raise QueryKeyError(
                    f"{k.name} is a numeric feature: give numbers, not {words[0]!r}"
                )
            if positive in ORDERED or not words:
                test = _compare(b.c.value, positive, [_number(k.name, x) for x in values], k.name)
            else:
                numbers = [float(x) for x in values if _is_number(x)]
                test = or_(
                    b.c.value.in_(numbers),
                    func.lower(b.c.value_code).in_(words),
                    func.lower(b.c.value_code_meaning).in_(words),
                )
            matching = select(b.c.imaging_series_id).where(selector, test)
            has = select(b.c.imaging_series_id).where(selector)
        if positive == leaf.type:
            return self.series.c.id.in_(matching)
        return and_(self.series.c.id.in_(has), self.series.c.id.not_in(matching))

    def study_collection_ids(self, values: Iterable[Any]) -> list[int]:
        """The collections of the MIABIS studies the values name (by identifier)."""
        st, link = T["study"], T["study_collection"]
        studies = {str(i): int(n) for i, n in self.conn.execute(select(st.c.identifier, st.c.id))}
        by_lower = {i.lower(): n for i, n in studies.items()}
        ids = []
        for value in values:
            found = by_lower.get(str(value).strip().lower())
            if found is None:
                close = nearest(str(value), list(studies), 3)
                raise QueryKeyError(
                    f"unknown study {value!r}{did_you_mean(close)}; studies: "
                    f"{listed(sorted(studies)) or 'none registered (imaging-biobank register)'}"
                )
            ids.append(found)
        rows = self.conn.execute(select(link.c.collection_id).where(link.c.study_id.in_(ids)))
        return [int(c) for c in rows.scalars()]

    def sample_count(
        self, leaf: Leaf, predicate: ColumnElement[bool] | None = None
    ) -> ColumnElement[bool]:
        """The donor's number of samples (meeting ``predicate``: the sample criteria of the
        same AND) compared with the leaf's whole numbers."""
        numbers = []
        for value in _values(leaf):
            number = _number(leaf.key, value)
            if number < 0 or number != int(number):
                raise QueryKeyError(
                    f"{leaf.key} counts samples: give a whole number, not {value!r}"
                )
            numbers.append(int(number))
        x = self.sample
        counted = (
            select(func.count())
            .select_from(x)
            .where(
                x.c.sample_donor_id == self.donor.c.id, true() if predicate is None else predicate
            )
            .correlate(self.donor)
            .scalar_subquery()
        )
        return _compare(counted, leaf.type, numbers, leaf.key)

    # --- trees ----------------------------------------------------------------------------

    def level_predicate(self, query: Query) -> ColumnElement[bool]:
        """A one-level tree as a predicate on that level's row."""
        if isinstance(query, Leaf):
            return self.leaf(query)
        parts = [self.level_predicate(c) for c in query.children]
        if query.operand == "NOT":
            return not_(parts[0])
        return and_(*parts) if query.operand == "AND" else or_(*parts)

    def donor_predicate(self, query: Query) -> ColumnElement[bool]:
        """The tree as a predicate on ``sample_donor``."""
        level = _level(query)
        if level == DONOR:
            return self.level_predicate(query)
        if level in (SERIES, SAMPLE):
            return self._exists(level, self.level_predicate(query))
        assert isinstance(query, Node)
        if query.operand == "NOT":
            return not_(self.donor_predicate(query.children[0]))
        if query.operand == "OR":
            return or_(*(self.donor_predicate(c) for c in query.children))
        grouped: dict[str, list[Query]] = {}
        mixed: list[Query] = []
        for child in query.children:
            child_level = _level(child)
            if child_level in (SERIES, SAMPLE):
                grouped.setdefault(child_level, []).append(child)
            else:
                mixed.append(child)
        # a sample count in the AND counts the samples meeting the AND's sample criteria,
        # which then say nothing more (samples = 0 and material_type = X: no sample of X)
        counts = [c for c in mixed if isinstance(c, Leaf) and key(c.key).kind == "count"]
        parts = []
        if counts and SAMPLE in grouped:
            of = and_(*(self.level_predicate(c) for c in grouped.pop(SAMPLE)))
            parts += [self.sample_count(c, of) for c in counts]
            mixed = [c for c in mixed if not any(c is n for n in counts)]
        parts += [
            self._exists(lvl, and_(*(self.level_predicate(c) for c in children)))
            for lvl, children in grouped.items()
        ]
        parts += [self.donor_predicate(c) for c in mixed]
        return and_(*parts)

    def _exists(self, level: str, predicate: ColumnElement[bool]) -> ColumnElement[bool]:
        """Donors with a row of ``level`` meeting ``predicate``. Written as an uncorrelated
        IN over the matching rows' donors (the same answer as EXISTS, donor ids being never
        NULL), so the database finds the rows once through their indexes instead of testing
        every donor in turn."""
        return self.donor.c.id.in_(self.level_select(level, predicate, column="sample_donor_id"))

    def level_select(
        self,
        level: str,
        predicate: ColumnElement[bool],
        donor: Any | None = None,
        *,
        column: str = "id",
    ) -> Select[Any]:
        """The rows of a level meeting ``predicate`` (of one donor, when given), as their
        ``column``."""
        if level == SERIES:
            s = self.series
            query = select(s.c[column]).select_from(series_from(predicate)).where(predicate)
            return query.where(s.c.sample_donor_id == donor) if donor is not None else query
        x = self.sample
        query = select(x.c[column]).where(predicate)
        return query.where(x.c.sample_donor_id == donor) if donor is not None else query


def series_from(predicate: ColumnElement[bool]) -> FromClause:
    """``imaging_series`` joined to the tables ``predicate`` reads among its study, its
    acquisition and reconstruction parameters and its modality information. Each is at most
    one row per series (and every series has its study), so a join the predicate does not
    read changes no answer: leaving it out saves a look-up per series."""
    s, study = T["imaging_series"], T["imaging_study"]
    acq, rec, info = (
        T["acquisition_parameters"],
        T["reconstruction_parameters"],
        T["modality_information"],
    )
    read = {c.table.name for c in visitors.iterate(predicate) if isinstance(c, Column)}
    joined: FromClause = s
    if study.name in read:
        joined = joined.join(study, study.c.id == s.c.imaging_study_id)
    if read & {acq.name, info.name}:
        joined = joined.outerjoin(acq, acq.c.imaging_series_id == s.c.id)
    if rec.name in read:
        joined = joined.outerjoin(rec, rec.c.imaging_series_id == s.c.id)
    if info.name in read:
        joined = joined.outerjoin(info, info.c.id == acq.c.modality_information_id)
    return joined


def _values(leaf: Leaf) -> list[Any]:
    if leaf.type in ("IN", "NOT_IN", "BETWEEN"):
        return list(leaf.value)
    return [leaf.value]


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise QueryKeyError(f"{name} takes a number, not {value!r}") from None


def _date(name: str, value: Any) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise QueryKeyError(f"{name} takes a date YYYY-MM-DD, not {value!r}") from None


def _compare(column: Any, kind: str, values: list[Any], name: str) -> ColumnElement[bool]:
    if kind == "EQUALS":
        return column == values[0]  # type: ignore[no-any-return]
    if kind == "NOT_EQUALS":
        return column != values[0]  # type: ignore[no-any-return]
    if kind == "LESS_THAN":
        return column < values[0]  # type: ignore[no-any-return]
    if kind == "LESS_OR_EQUAL":
        return column <= values[0]  # type: ignore[no-any-return]
    if kind == "GREATER_THAN":
        return column > values[0]  # type: ignore[no-any-return]
    if kind == "GREATER_OR_EQUAL":
        return column >= values[0]  # type: ignore[no-any-return]
    if kind == "BETWEEN":
        low, high = sorted(values)
        return column.between(low, high)  # type: ignore[no-any-return]
    if kind in ("IN", "NOT_IN"):
        test = column.in_(values)
        return test if kind == "IN" else not_(test)  # type: ignore[no-any-return]
    raise QueryKeyError(f"{name}: unknown comparison {kind}")


_LOINC = re.compile(r"\d{1,7}-\d")


def _positive(kind: str) -> str:
    """The comparison a negated one (!=, not in) excludes."""
    return {"NOT_EQUALS": "EQUALS", "NOT_IN": "IN"}.get(kind, kind)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _closest_features(name: str, names: list[str]) -> list[str]:
    """Stored feature names like ``name``: those holding it, else the closest, else those
    whose last part (``JointEnergy`` of ``original_glcm_JointEnergy``) is closest."""
    holding = [n for n in names if name.lower() in n.lower()]
    if holding:
        return holding[:5]
    close = nearest(name, names)
    if close:
        return close
    by_part: dict[str, list[str]] = {}
    for n in names:
        by_part.setdefault(re.split(r"[_\s.-]", n)[-1], []).append(n)
    return [n for part in nearest(name, list(by_part), 2) for n in by_part[part]][:5]


def _by_form(row: Any) -> str:
    return str(row.form)


def _prefix_compare(column: Any, kind: str, texts: list[str]) -> ColumnElement[bool]:
    """ISO dates and times compared at the precision written: ``2021`` is the year 2021,
    ``2021-03`` its March (stored values cut to the length of the value)."""

    def cut(text: str) -> Any:
        return func.substr(column, 1, len(text))

    if kind == "BETWEEN":
        low, high = sorted(texts)
        return and_(cut(low) >= low, cut(high) <= high)
    if kind in ("EQUALS", "IN"):
        return or_(*(cut(t) == t for t in texts))
    return _compare(cut(texts[0]), kind, texts, "date")


def _level(query: Query) -> str | None:
    """The one level of every leaf of the tree, or None when it mixes levels."""
    found = {key(leaf.key).level for leaf in leaves(query)}
    return found.pop() if len(found) == 1 else None


def _top_filters(query: Query, level: str) -> list[Query]:
    """The parts of the top-level AND that are criteria on ``level`` alone."""
    if _level(query) == level:
        return [query]
    if isinstance(query, Node) and query.operand == "AND":
        return [c for c in query.children if _level(c) == level]
    return []


@dataclass
class Cohort:
    """The compiled query: its matching donors, series and samples as subqueries; and the
    parts they are made of (the top-level series and sample criteria, the samples the
    purpose rules out), from which ``matched`` rebuilds them over one list of donors."""

    donors: Select[Any]
    series: Select[Any]
    samples: Select[Any]
    series_filter: ColumnElement[bool] = field(default_factory=true)
    sample_filter: ColumnElement[bool] = field(default_factory=true)
    excluded_samples: Select[Any] | None = None
    excluded_donors: Select[Any] | None = None
    level: str | None = None  # the one level of every criterion, None when they mix


def compile_query(conn: Connection, query: Query, purpose: Purpose | None = None) -> Cohort:
    """The matching donors, series and samples of a query (``QueryKeyError`` for bad keys
    or values)."""
    c = _Compiler(conn)
    level = _level(query)
    series_filter = and_(true(), *(c.level_predicate(q) for q in _top_filters(query, SERIES)))
    sample_filter = and_(true(), *(c.level_predicate(q) for q in _top_filters(query, SAMPLE)))
    if level in (SERIES, SAMPLE):  # the donors of the rows the one filter finds
        only = series_filter if level == SERIES else sample_filter
        donors = select(c.donor.c.id).where(c._exists(level, only))
    else:
        donors = select(c.donor.c.id).where(c.donor_predicate(query))
    excluded_samples: Select[Any] | None = None
    excluded_donors: Select[Any] | None = None
    if purpose is not None:
        excluded_donors, excluded_samples = ruled_out(conn, purpose)
        donors = donors.where(c.donor.c.id.not_in(excluded_donors))
    series = c.level_select(SERIES, series_filter).where(c.series.c.sample_donor_id.in_(donors))
    samples = c.level_select(SAMPLE, sample_filter).where(c.sample.c.sample_donor_id.in_(donors))
    if excluded_samples is not None:
        samples = samples.where(c.sample.c.id.not_in(excluded_samples))
    return Cohort(
        donors,
        series,
        samples,
        series_filter,
        sample_filter,
        excluded_samples,
        excluded_donors,
        level,
    )


@dataclass
class Matched:
    """The cohort as common table expressions of one statement, each computed once: its
    donors (``id``); its series, one row per collection, study and donor
    (``image_collection_id``, ``imaging_study_id``, ``sample_donor_id``, ``series``,
    ``instances``); and its samples (``id``, ``collection_id``, ``sample_donor_id``)."""

    donors: Any
    series: Any
    samples: Any


def matched(cohort: Cohort) -> Matched:
    """The cohort's donors, series and samples as materialised CTEs for one statement, so
    the criteria are evaluated once, not once per count. When every criterion is on series
    (or every one on samples), the donors are those of the matching rows: the rows are then
    found once and the donors read from them. The series are grouped by collection, study
    and donor as they are found (what the counts need, from the series index alone)."""
    s, x = T["imaging_series"], T["sample"]
    keys = (s.c.image_collection_id, s.c.imaging_study_id, s.c.sample_donor_id)

    def series_of(*where: ColumnElement[bool]) -> Select[Any]:
        return (
            select(
                *keys,
                func.count().label("series"),
                func.sum(s.c.number_of_instances).label("instances"),
            )
            .select_from(series_from(cohort.series_filter))
            .where(cohort.series_filter, *where)
            .group_by(*keys)
        )

    samples = select(x.c.id, x.c.collection_id, x.c.sample_donor_id).where(cohort.sample_filter)
    if cohort.excluded_samples is not None:
        samples = samples.where(x.c.id.not_in(cohort.excluded_samples))

    def cte(rows: Select[Any], name: str) -> Any:
        return rows.cte(name).prefix_with("MATERIALIZED")

    if cohort.level in (SERIES, SAMPLE):
        donor = s.c.sample_donor_id if cohort.level == SERIES else x.c.sample_donor_id
        kept = []
        if cohort.excluded_donors is not None:
            kept = [donor.not_in(cohort.excluded_donors)]
        if cohort.level == SERIES:
            found = cte(series_of(*kept), "cohort_series")
        else:
            found = cte(samples.where(*kept), "cohort_sample")
        donors = cte(select(found.c.sample_donor_id.label("id")).distinct(), "cohort_donor")
        of_donors = select(donors.c.id)
        if cohort.level == SERIES:
            series_cte = found
            samples_cte = cte(samples.where(x.c.sample_donor_id.in_(of_donors)), "cohort_sample")
        else:
            samples_cte = found
            series_cte = cte(series_of(s.c.sample_donor_id.in_(of_donors)), "cohort_series")
    else:
        donors = cte(cohort.donors, "cohort_donor")
        of_donors = select(donors.c.id)
        series_cte = cte(series_of(s.c.sample_donor_id.in_(of_donors)), "cohort_series")
        samples_cte = cte(samples.where(x.c.sample_donor_id.in_(of_donors)), "cohort_sample")
    return Matched(donors, series_cte, samples_cte)


def count(
    conn: Connection,
    query: Query,
    *,
    text: str = "",
    role: str = "researcher",
    purpose: Purpose | None = None,
    by: Sequence[str] = (),
    step: int = 10,
) -> CohortResult:
    """Counts of the cohort, in total and per collection (obfuscated for researchers: 1 to
    ``step - 1`` show as ``step``, others are rounded to multiples of ``step``). One
    statement computes every count over the cohort's donors, series and samples."""
    if role not in ROLES:
        raise QueryKeyError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    cohort = compile_query(conn, query, purpose)
    m = matched(cohort)
    ms, mx = m.series, m.samples
    none, zero = cast(null(), Integer), literal(0, Integer)

    def part(number: int) -> Any:
        return literal(number, Integer).label("part")

    series_counts = (
        func.count(distinct(ms.c.sample_donor_id)),
        zero,
        func.count(distinct(ms.c.imaging_study_id)),
        func.coalesce(func.sum(ms.c.series), 0),
        func.coalesce(func.sum(ms.c.instances), 0),
    )
    sample_counts = (func.count(distinct(mx.c.sample_donor_id)), func.count(), zero, zero, zero)
    statement = union_all(
        select(part(0), none, func.count(), zero, zero, zero, zero).select_from(m.donors),
        select(part(1), none, *series_counts).select_from(ms),
        select(part(1), ms.c.image_collection_id, *series_counts).group_by(
            ms.c.image_collection_id
        ),
        select(part(2), none, *sample_counts).select_from(mx),
        select(part(2), mx.c.collection_id, *sample_counts).group_by(mx.c.collection_id),
    )
    found: dict[tuple[int, int | None], Counts] = {}
    for number, cid, *values in conn.execute(statement):
        found[(int(number), None if cid is None else int(cid))] = Counts(*map(int, values))
    series_total, sample_total = found[(1, None)], found[(2, None)]
    totals = Counts(
        donors=found[(0, None)].donors,
        samples=sample_total.samples,
        studies=series_total.studies,
        series=series_total.series,
        instances=series_total.instances,
    )
    per_collection = {cid: v for (_, cid), v in found.items() if cid is not None}
    c = T["collection"]
    by_collection: list[dict[str, Any]] = []
    for cid, ident, kind in conn.execute(
        select(c.c.id, c.c.identifier, c.c.kind).order_by(c.c.identifier)
    ):
        counts = per_collection.get(cid)
        if kind not in ("image", "sample_tissue") or counts is None or not counts.donors:
            continue
        shown = counts.obfuscated(step) if role == "researcher" else counts
        by_collection.append({"collection": ident, "kind": kind, **shown.__dict__})
    strata = {name: _stratum(conn, cohort, name, role, step) for name in by}
    shown_totals = totals.obfuscated(step) if role == "researcher" else totals
    return CohortResult(text, shown_totals, by_collection, strata, role == "researcher")


def _stratum(conn: Connection, cohort: Cohort, name: str, role: str, step: int) -> dict[str, int]:
    """Donors of the cohort per sex, per 10-year age band at their matching series' studies,
    or per modality of their matching series."""
    sex, study = T["sex"], T["imaging_study"]
    m = matched(cohort)
    if name == "sex":
        d = T["sample_donor"]
        rows = conn.execute(
            select(sex.c.code, func.count())
            .select_from(d)
            .join(sex, sex.c.id == d.c.sex_id)
            .where(d.c.id.in_(select(m.donors.c.id)))
            .group_by(sex.c.code)
        ).all()
    elif name == "modality":
        s = T["imaging_series"]
        rows = conn.execute(
            select(
                func.coalesce(s.c.modality_value, "unknown"),
                func.count(distinct(s.c.sample_donor_id)),
            )
            .where(s.c.id.in_(cohort.series))
            .group_by(s.c.modality_value)
        ).all()
    elif name == "age":
        ms = m.series
        pairs = select(ms.c.imaging_study_id, ms.c.sample_donor_id).distinct().subquery()
        band = func.floor(study.c.patient_age_years / 10) * 10
        rows = conn.execute(
            select(band, func.count(distinct(pairs.c.sample_donor_id)))
            .join(study, study.c.id == pairs.c.imaging_study_id)
            .where(study.c.patient_age_years.is_not(None))
            .group_by(band)
        ).all()
        return {f"{int(b)}-{int(b) + 9}": as_seen(int(n), role, step) for b, n in rows}
    else:
        raise QueryKeyError(f"unknown stratifier {name!r}; use sex, age or modality")
    return {str(k): as_seen(int(n), role, step) for k, n in rows}


MANIFEST_COLUMNS = (
    "donor",
    "collection",
    "study_instance_uid",
    "series_instance_uid",
    "modality",
    "body_part",
    "instances",
    "location",
)


def series_labels() -> tuple[list[Any], FromClause]:
    """What identifies a series in manifests and releases (pseudonymised donor, collection,
    study and series UIDs, modality, body part, as written), and the join that reads it."""
    s, st, d, c = T["imaging_series"], T["imaging_study"], T["sample_donor"], T["collection"]
    columns = [
        d.c.pseudonym.label("donor"),
        c.c.identifier.label("collection"),
        st.c.study_instance_uid,
        s.c.series_instance_uid,
        s.c.modality_value.label("modality"),
        s.c.body_part_examined_value.label("body_part"),
    ]
    joined = (
        s.join(st, st.c.id == s.c.imaging_study_id)
        .join(d, d.c.id == s.c.sample_donor_id)
        .join(c, c.c.id == s.c.image_collection_id)
    )
    return columns, joined


def manifest(
    conn: Connection, query: Query, *, role: str, purpose: Purpose | None = None
) -> list[dict[str, Any]]:
    """The matching series, one row each, for roles allowed to see them (not researchers):
    pseudonymised donor, study and series UIDs, collection, the folder or URL of its files."""
    if role == "researcher":
        raise PermissionError("a manifest of series is for data managers (role data_manager)")
    cohort = compile_query(conn, query, purpose)
    s, i = T["imaging_series"], T["imaging_instance"]
    columns, joined = series_labels()
    ids = cohort.series.subquery()
    location = (
        select(func.min(i.c.location)).where(i.c.imaging_series_id == s.c.id).scalar_subquery()
    )
    rows = conn.execute(
        select(*columns, s.c.number_of_instances, location)
        .select_from(joined)
        .where(s.c.id.in_(select(ids.c.id)))
        .order_by(s.c.series_instance_uid)
    ).all()
    out = []
    for row in rows:
        record = dict(zip(MANIFEST_COLUMNS, row, strict=True))
        loc = record["location"] or ""
        record["location"] = loc.rsplit("/", 1)[0] if "://" not in loc else loc
        out.append(record)
    return out


__all__ = [
    "CohortResult",
    "Counts",
    "as_seen",
    "compile_query",
    "count",
    "manifest",
    "obfuscate",
    "series_labels",
]
