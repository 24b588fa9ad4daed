"""The cases domain's use cases, by room: access and involvement, identifications, where
the person is now (sealed), lifecycle and screening, and the case's person. Other domains
and the routers import from here; the rooms import each other only downwards (access is the
floor)."""

from service.cases.service.access import (
    cases_involving,
    end_involvement,
    get_case_for,
    involve,
    lock_case,
    lock_case_for_change,
    persons_of_cases,
    require_visible_case,
    visible_case_ids,
    visible_to,
)
from service.cases.service.closures import CaseClosure, case_closures
from service.cases.service.facts import (
    exploitation_known_on,
    identifications_known_on,
    victim_status_on,
)
from service.cases.service.identifications import (
    CaseValues,
    CaseVersion,
    add_identification,
    case_public,
    correct_case,
    create_case,
    exploitation_countries,
    list_cases,
    visible_case_public,
)
from service.cases.service.lifecycle import (
    advance_case,
    in_care_since,
    list_screenings,
    list_transitions,
    screen_case,
    transition_case,
)
from service.cases.service.person import (
    case_ids_of_same_person,
    link_case_person,
    person_age_on,
    person_minor_on,
    placement_profile,
    read_person,
)

__all__ = [
    "CaseClosure",
    "CaseValues",
    "CaseVersion",
    "add_identification",
    "advance_case",
    "case_closures",
    "case_ids_of_same_person",
    "case_public",
    "cases_involving",
    "correct_case",
    "create_case",
    "end_involvement",
    "exploitation_countries",
    "exploitation_known_on",
    "get_case_for",
    "identifications_known_on",
    "in_care_since",
    "involve",
    "link_case_person",
    "list_cases",
    "list_screenings",
    "list_transitions",
    "lock_case",
    "lock_case_for_change",
    "person_age_on",
    "person_minor_on",
    "persons_of_cases",
    "placement_profile",
    "read_person",
    "require_visible_case",
    "screen_case",
    "transition_case",
    "victim_status_on",
    "visible_case_ids",
    "visible_case_public",
    "visible_to",
]
