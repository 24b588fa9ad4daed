"""Reference data: Peru's regions and the shipped datasets."""

from __future__ import annotations

import pytest

from service.reference import service


def test_the_regions_are_peru_s_25_departments_by_ubigeo_code() -> None:
    regions = {r["code"]: r["name"] for r in service.regions()}

    assert len(regions) == 25
    assert regions["15"] == "Lima"
    assert regions["17"] == "Madre de Dios"
    assert regions["16"] == "Loreto"


def test_the_peru_2017_dataset_names_the_narrative_s_institutions_and_shelters() -> None:
    data = service.load_dataset("peru-2017")

    codes = {org["code"] for org in data["organization"]}
    assert {"PNP", "MIMP", "MP", "MINJUS", "PJ", "UNHCR"} <= codes
    specialized = [f for f in data["facility"] if f["kind"] == "specialized_shelter"]
    assert sum(f["capacity"] for f in specialized) == 28  # the narrative's two shelters


def test_an_unknown_dataset_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'peru-1999'"):
        service.load_dataset("peru-1999")
