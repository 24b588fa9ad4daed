"""Errors of the capacity domain."""

from __future__ import annotations

from service.core.errors import Conflict, Forbidden, NotFound


class FacilityNotFound(NotFound):
    code = "facility_not_found"
    title = "Facility not found"


class PlacementNotFound(NotFound):
    code = "placement_not_found"
    title = "Placement not found"


class FacilityNotEligible(Conflict):
    code = "facility_not_eligible"
    title = "The facility cannot take this person"


class AlreadyPlaced(Conflict):
    code = "already_placed"
    title = "The person already has a bed"


class PlacementNotActive(Conflict):
    code = "placement_not_active"
    title = "The placement has already ended"


class CapacityBelowOccupancy(Conflict):
    code = "capacity_below_occupancy"
    title = "Capacity cannot go below the beds in use"


class FacilityCodeTaken(Conflict):
    code = "facility_code_taken"
    title = "Facility code already exists"


class CaseClosedForPlacement(Conflict):
    code = "case_closed"
    title = "The case is closed"


class RequestNotFound(NotFound):
    code = "placement_request_not_found"
    title = "Placement request not found"


class RequestNotWaiting(Conflict):
    code = "placement_request_not_waiting"
    title = "The request is no longer waiting"


class PlacementNotEntitled(Forbidden):
    code = "placement_not_entitled"
    title = "Your organization may not place this person"


class PlacementConsentRequired(Conflict):
    code = "placement_consent_required"
    title = "The person has not consented to services"
