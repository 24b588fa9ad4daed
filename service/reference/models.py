"""Reference data: Peru's regions (departments and Callao) by INEI ubigeo code, their
censused population, and the specialized prosecutor offices."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

import service.core.types  # noqa: F401  (naming convention before any table)


class Region(SQLModel, table=True):
    """A department of Peru (or Callao), named by its two-digit INEI ubigeo code."""

    __tablename__ = "region"

    code: str = Field(primary_key=True, min_length=2, max_length=2)
    name: str = Field(max_length=80)
    capital: str = Field(max_length=80)


class RegionPopulation(SQLModel, table=True):
    """A region's censused population in a census year, with its source: the denominator of
    the published rates per 100,000."""

    __tablename__ = "region_population"
    __table_args__ = (sa.CheckConstraint("population > 0", name="population_positive"),)

    region: str = Field(primary_key=True, foreign_key="region.code", max_length=2)
    year: int = Field(primary_key=True)
    population: int
    source: str = Field(max_length=300)


class ProsecutorOffice(SQLModel, table=True):
    """A prosecutor's office specialized in trafficking (fiscalía especializada), where
    criminal proceedings are filed; named by a stable code."""

    __tablename__ = "prosecutor_office"

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    region: str = Field(foreign_key="region.code", max_length=2)
