"""/v1/cases: identification of suspected victims and the case that follows them."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import Depends, Response, status

from service.cases import service
from service.cases.dependencies import (
    CaseDep,
    CaseReaderDep,
    CaseReadingDep,
    CaseWriterDep,
    PersonReaderDep,
    PersonReadingDep,
)
from service.cases.rules import CaseStatus, ExploitationForm, VictimStatus
from service.cases.schemas import (
    CaseCreate,
    CaseCreated,
    CaseFilters,
    CasePublic,
    CaseSummary,
    CaseUpdate,
    IdentificationCreate,
    RegionCode,
    ScreeningCreate,
    ScreeningPublic,
    ScreeningRead,
    TransitionPublic,
    TransitionRequest,
)
from service.core.db import SessionDep, writes
from service.core.errors import problem_responses
from service.core.http import Router, json_response
from service.core.pagination import Page, PageParams, page_params
from service.core.preconditions import (
    IfMatchDep,
    RequiredIfMatchDep,
    set_etag,
    versioned_read,
    versioned_write,
)
from service.identity.dependencies import AuthenticatedRoute, SecurityDep
from service.pathway import closing
from service.pathway.case_view import case_values, case_view, visible_case_view
from service.persons.schemas import CountryCode, PersonIdentifying, PersonLink

router = Router(prefix="/v1/cases", tags=["cases"], route_class=AuthenticatedRoute)


@router.post(
    "",
    response_model=CaseCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422),
    openapi_extra=versioned_read("201"),
)
async def create_case(
    body: CaseCreate,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
    response: Response,
) -> CaseCreated:
    """Open a case with its first identification; lists earlier records of the same person."""
    case, duplicates = await service.create_case(
        session, actor=actor, keyring=security.keyring, data=body
    )
    view = await case_values(session, case, keyring=security.keyring)
    set_etag(response, case)
    return CaseCreated.model_validate({**view, "possible_duplicates": duplicates})


@router.get("", response_model=Page[CaseSummary], responses=problem_responses(401, 403, 422))
async def list_cases(
    actor: CaseReaderDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    status: CaseStatus | None = None,
    region: RegionCode | None = None,
    exploitation_country: CountryCode | None = None,
    identified_from: date | None = None,
    identified_to: date | None = None,
    exploitation: ExploitationForm | None = None,
) -> Page[CaseSummary]:
    """Cases the caller's organization is involved in, newest first."""
    filters = CaseFilters(
        status=status,
        region=region,
        exploitation_country=exploitation_country,
        identified_from=identified_from,
        identified_to=identified_to,
        exploitation=exploitation,
    )
    items, next_cursor = await service.list_cases(session, actor=actor, filters=filters, page=page)
    return Page[CaseSummary](items=items, next_cursor=next_cursor)


@router.get(
    "/{case_id}",
    response_model=CasePublic,
    responses=problem_responses(401, 403, 404),
    openapi_extra=versioned_read(),
)
async def read_case(case_id: uuid.UUID, reader: CaseReadingDep) -> Response:
    """One case, without identifying data of the person. Its ETag moves with every change of
    the case itself (status, victim status, witness, location, identifications, person),
    not with the referrals, placements or involvements of other domains."""
    # The access rule and the view in one statement (CaseDep would load the case first),
    # sent without a session (Database.fetch).
    view, version = await visible_case_view(
        reader.db, actor=reader.actor, keyring=reader.security.keyring, case_id=case_id
    )
    response = json_response(view)  # CasePublic's values
    set_etag(response, version)
    return response


@router.patch(
    "/{case_id}",
    response_model=CasePublic,
    responses=problem_responses(401, 403, 404, 409, 410, 412, 422, 428),
    openapi_extra=versioned_write(required=True),
)
async def correct_case(
    body: CaseUpdate,
    case: CaseDep,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
    if_match: RequiredIfMatchDep,
    response: Response,
) -> CasePublic:
    """Correct the caller's identification details, where the person is now (stored sealed
    under her data key: 410 once she was erased), or witness status. If-Match is required:
    the case's ETag as last read (428 without, 412 when the case has changed since). Values
    equal to those stored change nothing: the ETag stays and no audit event is written."""
    case = await service.correct_case(
        session, actor=actor, keyring=security.keyring, case=case, data=body, if_match=if_match
    )
    set_etag(response, case)
    return await case_view(session, case, keyring=security.keyring)


@router.post(
    "/{case_id}/identifications",
    response_model=CasePublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 412, 422),
    openapi_extra=versioned_write(status=201),
)
async def add_identification(
    body: IdentificationCreate,
    case: CaseDep,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """Another identification of the same person, by the caller's organization."""
    await service.add_identification(session, actor=actor, case=case, data=body, if_match=if_match)
    view = await case_view(session, case, keyring=security.keyring)
    set_etag(response, case)
    return view


@router.post(
    "/{case_id}/transitions",
    response_model=TransitionPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 410, 412, 422),
    openapi_extra=versioned_write(status=201),
)
async def transition_case(
    body: TransitionRequest,
    case: CaseDep,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
    if_match: IfMatchDep,
    response: Response,
) -> TransitionPublic:
    """Close (with a reason allowed from the current state) or reopen a case; a note is stored
    encrypted. If-Match and the ETag returned are the case's."""
    transition = await closing.transition_case(
        session,
        actor=actor,
        keyring=security.keyring,
        case=case,
        request=body,
        if_match=if_match,
    )
    set_etag(response, case)
    return TransitionPublic.model_validate(transition, from_attributes=True)


@router.get(
    "/{case_id}/transitions",
    response_model=list[TransitionPublic],
    responses=problem_responses(401, 403, 404),
)
async def list_transitions(case: CaseDep, session: SessionDep) -> list[TransitionPublic]:
    """The case's history of states: who, when, why."""
    return [
        TransitionPublic.model_validate(t, from_attributes=True)
        for t in await service.list_transitions(session, case)
    ]


@router.post(
    "/{case_id}/screenings",
    response_model=ScreeningPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 410, 412, 422),
    openapi_extra=versioned_write(status=201),
)
async def screen_case(
    body: ScreeningCreate,
    case: CaseDep,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
    if_match: IfMatchDep,
    response: Response,
) -> ScreeningPublic:
    """Decide victim status; the caller's organization is the deciding one. If-Match and the
    ETag returned are the case's."""
    screening = await service.screen_case(
        session, actor=actor, keyring=security.keyring, case=case, data=body, if_match=if_match
    )
    set_etag(response, case)
    return ScreeningPublic(
        id=screening.id,
        case_id=case.id,
        victim_status=VictimStatus(screening.victim_status),
        organization=actor.organization_code,
        screened_at=screening.screened_at,
    )


@router.get(
    "/{case_id}/screenings",
    response_model=list[ScreeningRead],
    responses=problem_responses(401, 403, 404),
)
@writes
async def list_screenings(
    case: CaseDep, actor: PersonReaderDep, session: SessionDep, security: SecurityDep
) -> list[ScreeningRead]:
    """The case's screenings; notes only for the organization that screened. Every read of
    notes is audited."""
    return await service.list_screenings(session, actor=actor, keyring=security.keyring, case=case)


@router.get(
    "/{case_id}/person",
    response_model=PersonIdentifying,
    responses=problem_responses(401, 403, 404, 409, 410),
)
async def read_person(case_id: uuid.UUID, reader: PersonReadingDep) -> Response:
    """The person's identifying data: for the identifying organization and those the consent
    covers. Every read is audited."""
    # The access rule within the read (CaseDep would load the case first); no session of the
    # request's: the read's event goes to the worker's audit appender, or, when the consent
    # must be asked, into a transaction of the read's own (service.read_person).
    person = await service.read_person(
        reader.db,
        reader.audit,
        actor=reader.actor,
        keyring=reader.security.keyring,
        case_id=case_id,
    )
    return json_response(person)  # a PersonIdentifying, the declared model


@router.post(
    "/{case_id}/person/link",
    response_model=CasePublic,
    responses=problem_responses(401, 403, 404, 412, 422),
    openapi_extra=versioned_write(),
)
async def link_person(
    body: PersonLink,
    case: CaseDep,
    actor: CaseWriterDep,
    session: SessionDep,
    security: SecurityDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """Record that this case's person is an earlier record listed in `possible_duplicates`."""
    await service.link_case_person(
        session, actor=actor, case=case, candidate_id=body.person_id, if_match=if_match
    )
    set_etag(response, case)
    return await case_view(session, case, keyring=security.keyring)
