"""Flows that cross domains: use cases that change or read several domains at once.

The domains below (cases, consent, referrals, capacity, protection ...) never import this
package; it calls their service functions, in one transaction, and nothing else. Each module
is one flow: the case view with its suggested referrals, revoking a consent with the
referrals it alone covered, closing a case with everything the closure ends, the arrival of
a repatriation (a return to the country of origin closes the case), seeding the reference
data, and the periodic sweep.
"""
