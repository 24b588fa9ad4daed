"""Errors of the identity domain."""

from __future__ import annotations

from service.core.errors import Conflict, InvalidInput, NotFound, TooManyRequests, Unauthorized


class LoginFailed(Unauthorized):
    code = "invalid_credentials"
    title = "Invalid username or password"


class LoginRateLimited(TooManyRequests):
    code = "login_rate_limited"
    title = "Too many failed logins"


class InvalidCredentialsToken(Unauthorized):
    code = "invalid_token"
    title = "Invalid or expired token"


class OrganizationNotFound(NotFound):
    code = "organization_not_found"
    title = "Organization not found"


class UnknownOrganization(InvalidInput):
    code = "unknown_organization"


class UsernameTaken(Conflict):
    code = "username_taken"
    title = "Username already exists"


class UnknownUser(InvalidInput):
    code = "unknown_user"


class LastAdministrator(Conflict):
    code = "last_administrator"
    title = "The last active administrator"
