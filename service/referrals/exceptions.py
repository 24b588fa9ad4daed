"""Errors of the referrals domain."""

from __future__ import annotations

from service.core.errors import Conflict, Forbidden, NotFound


class ReferralNotFound(NotFound):
    code = "referral_not_found"
    title = "Referral not found"


class ReferralNotCoveredByConsent(Conflict):
    code = "consent_required"
    title = "The person's consent does not cover this organization"


class IllegalReferralChange(Conflict):
    code = "illegal_referral_action"
    title = "Referral action not allowed"


class OverrideNotPermitted(Forbidden):
    code = "consent_override_forbidden"
    title = "Your role may not override consent"
