"""Load a case the caller may see, or answer 404."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from service.cases import service
from service.cases.models import CaseFile
from service.core.db import SessionDep
from service.core.security import Actor
from service.identity.dependencies import Reader, require, require_reader
from service.identity.rules import Permission

CaseReaderDep = Annotated[Actor, Depends(require(Permission.cases_read))]
CaseWriterDep = Annotated[Actor, Depends(require(Permission.cases_write))]
PersonReaderDep = Annotated[Actor, Depends(require(Permission.person_read))]
# The case read and the audited read of a person: the caller with the database, the keys and
# the audit appender, as one dependency (identity.dependencies.Reader).
CaseReadingDep = Annotated[Reader, Depends(require_reader(Permission.cases_read))]
PersonReadingDep = Annotated[Reader, Depends(require_reader(Permission.person_read))]


async def get_visible_case(
    case_id: uuid.UUID, actor: CaseReaderDep, session: SessionDep
) -> CaseFile:
    """The case named in the path, if the caller's organization is involved in it."""
    return await service.get_case_for(session, actor=actor, case_id=case_id)


CaseDep = Annotated[CaseFile, Depends(get_visible_case)]
