"""The capacity domain's use cases, by room: the facility directory, placements, the
waitlist, and reports. `beds` is the floor they share: taking and freeing a bed so that no
facility is ever overbooked. Other domains, flows and routers import from here."""

from service.capacity.service.facilities import (
    change_capacity,
    create_facility,
    facilities_public,
    facility_as_of,
    get_facility,
    get_facility_by_code,
    list_facilities,
    upsert_facilities,
)
from service.capacity.service.placements import (
    case_placements,
    confirm_arrival,
    end_placement,
    expire_holds,
    get_decision,
    get_visible_placement,
    placements_public,
    release_case,
    request_placement,
)
from service.capacity.service.reports import (
    capacity_summary,
    facility_census,
    hsds_directory,
    occupancy_gauges,
    placements_known_on,
    unmet_needs_known_on,
)
from service.capacity.service.waitlist import (
    OfferReport,
    case_requests,
    change_risk,
    expire_waiting_requests,
    get_request_for,
    is_waiting,
    request_public,
    withdraw_request,
)

__all__ = [
    "OfferReport",
    "capacity_summary",
    "case_placements",
    "case_requests",
    "change_capacity",
    "change_risk",
    "confirm_arrival",
    "create_facility",
    "end_placement",
    "expire_holds",
    "expire_waiting_requests",
    "facilities_public",
    "facility_as_of",
    "facility_census",
    "get_decision",
    "get_facility",
    "get_facility_by_code",
    "get_request_for",
    "get_visible_placement",
    "hsds_directory",
    "is_waiting",
    "list_facilities",
    "occupancy_gauges",
    "placements_known_on",
    "placements_public",
    "release_case",
    "request_placement",
    "request_public",
    "unmet_needs_known_on",
    "upsert_facilities",
    "withdraw_request",
]
