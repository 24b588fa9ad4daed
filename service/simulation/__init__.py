"""Referral capacity simulation: a discrete-event model of arrivals, eligibility, placement,
waiting, giving up, transfers and discharge, run with the live placement rules
(`service.capacity.rules`). Pure: no FastAPI, no database."""
