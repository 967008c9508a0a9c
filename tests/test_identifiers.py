"""BBMRI-ERIC Directory id rules (directory-scripts ValidateIDs.py)."""

from __future__ import annotations

import pytest

from imaging_biobank.vocab.identifiers import (
    InvalidIdentifierError,
    check_biobank_id,
    check_collection_id,
    check_network_id,
    check_person_id,
)


@pytest.mark.parametrize(
    "value",
    [
        "bbmri-eric:ID:IT_PRIMAGE",
        "bbmri-eric:ID:ES_PRIMAGE",
        "bbmri-eric:ID:UK_GB-1",
        "bbmri-eric:ID:EXT_NASBIO",
        "bbmri-eric:ID:EU_BBMRI-ERIC:networks",
        "bbmri-eric:ID:IARC_1",
    ],
)
def test_valid_biobank_ids(value: str) -> None:
    assert check_biobank_id(value) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("bbmri-eric:ID:IT__x::y", "empty segment"),
        ("bbmri-eric:ID:XX_PRIMAGE", "not a country code"),
        ("bbmri-eric:ID:ITPRIMAGE", "<CC>_<local id>"),
        ("bbmri:ID:IT_PRIMAGE", "does not start with"),
        ("bbmri-eric:ID:IT_PRI MAGE", "outside [A-Za-z0-9:_-]"),
        ("bbmri-eric:ID:IT_PRIMAGÉ", "outside [A-Za-z0-9:_-]"),
    ],
)
def test_invalid_biobank_ids_say_why(value: str, reason: str) -> None:
    with pytest.raises(
        InvalidIdentifierError, match=reason.replace("[", r"\[").replace("]", r"\]")
    ):
        check_biobank_id(value)


def test_collection_ids_start_with_their_biobank_id() -> None:
    assert check_collection_id("bbmri-eric:ID:CZ_MMCI:collection:LTS", "bbmri-eric:ID:CZ_MMCI")
    for bad in (
        "bbmri-eric:ID:CZ_OTHER:collection:LTS",
        "bbmri-eric:ID:CZ_MMCI:LTS",
        "bbmri-eric:ID:CZ_MMCI:collection:",
        "bbmri-eric:ID:CZ_MMCI:collection::LTS",
    ):
        with pytest.raises(InvalidIdentifierError):
            check_collection_id(bad, "bbmri-eric:ID:CZ_MMCI")


def test_person_and_network_ids() -> None:
    assert check_person_id("bbmri-eric:contactID:ES_PRIMAGE_DM")
    assert check_network_id("bbmri-eric:networkID:EU_PRIMAGE")
    with pytest.raises(InvalidIdentifierError):
        check_network_id("bbmri-eric:networkID:IARC_X")  # IARC is for biobanks, not networks
    with pytest.raises(InvalidIdentifierError):
        check_person_id("bbmri-eric:ID:ES_PRIMAGE_DM")
