"""Legal aid, the single interview, criminal proceedings and sentencing minimums: pure, no
I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from service.core.dates import Implausible, first, ordered, past_day, past_instant
from service.identity.rules import Role

# Only these users can be a case's public defender.
DEFENDER_ROLE = Role.legal_aid


class LegalAidEndReason(StrEnum):
    """Why a public defender's assignment to a case ended."""

    replaced = "replaced"
    case_closed = "case_closed"
    declined_by_person = "declined_by_person"
    conflict_of_interest = "conflict_of_interest"
    defender_unavailable = "defender_unavailable"
    assigned_in_error = "assigned_in_error"


class InterviewPurpose(StrEnum):
    complaint = "complaint"
    testimony = "testimony"
    medical_legal = "medical_legal"
    other = "other"


def can_defend(*, role: str, is_active: bool) -> bool:
    """Whether a user may be assigned as a case's public defender."""
    return is_active and role == DEFENDER_ROLE.value


def interview_is_repeated(earlier_interviews: int) -> bool:
    """The law requires a single interview: any after the first is a repetition."""
    return earlier_interviews >= 1


def defender_overdue(*, in_care_since: datetime, now: datetime, days: int) -> bool:
    """A case in care this long without a public defender needs one now."""
    return now - in_care_since >= timedelta(days=days)


def alert_cutoff(*, now: datetime, days: int) -> datetime:
    """Cases in care since this moment or earlier are overdue for a defender."""
    return now - timedelta(days=days)


# Criminal proceedings ---------------------------------------------------------------------

# Stored on each defendant with the flags it computed, so statistics can tell which rule
# judged a sentence when the law (or our reading of it) changes.
SENTENCING_RULE_VERSION = "sentencing/2017.1"


class ProceedingStatus(StrEnum):
    """The stages of a criminal proceeding, in the order they happen."""

    complaint = "complaint"
    investigation = "investigation"
    prosecution = "prosecution"
    trial = "trial"
    decided = "decided"


PROCEEDING_ORDER = tuple(ProceedingStatus)


def status_moves_forward(current: ProceedingStatus, to: ProceedingStatus) -> bool:
    """A proceeding only moves forward (a stage may be skipped, never revisited)."""
    return PROCEEDING_ORDER.index(to) > PROCEEDING_ORDER.index(current)


def before_trial(status: ProceedingStatus) -> bool:
    return PROCEEDING_ORDER.index(status) < PROCEEDING_ORDER.index(ProceedingStatus.trial)


class Charge(StrEnum):
    """What a defendant is charged with or convicted of (Peruvian Penal Code)."""

    trafficking = "trafficking"  # art. 153
    aggravated_trafficking = "aggravated_trafficking"  # art. 153-A
    forced_labour = "forced_labour"  # art. 168-B (2017 decree)
    pimping = "pimping"  # proxenetismo, art. 179 ff.
    profiting_from_sex_trafficking = "profiting_from_sex_trafficking"  # art. 179-A, 181 ...
    other_lesser_offence = "other_lesser_offence"


# The charges a complaint "filed as trafficking" carries; anything else is a lesser charge
# than these, forced labour included (its minimum, 6 years, is below art. 153's 8).
TRAFFICKING_CHARGES = frozenset({Charge.trafficking, Charge.aggravated_trafficking})


class Outcome(StrEnum):
    """Where a defendant's case stands: ongoing until a decision."""

    ongoing = "ongoing"
    convicted = "convicted"
    acquitted = "acquitted"
    dismissed = "dismissed"
    suspended = "suspended"  # suspended for insufficient evidence


# What each side may record: the prosecutor closes a defendant's case before trial
# (dismissed, or suspended for insufficient evidence); the court decides at trial.
PROSECUTOR_OUTCOMES = frozenset({Outcome.dismissed, Outcome.suspended})
COURT_OUTCOMES = frozenset(
    {Outcome.convicted, Outcome.acquitted, Outcome.dismissed, Outcome.suspended}
)

_YEARS = 12
# Minimum prison terms in months. Art. 153: 8 years; 153-A (aggravated): 12 years;
# victim aged 14 to 17 on the day of the offence: 12 years; under 14: 15 years; art. 168-B
# forced labour: 6 years.
_MINIMUM_BY_CHARGE = {
    Charge.trafficking: 8 * _YEARS,
    Charge.aggravated_trafficking: 12 * _YEARS,
    Charge.forced_labour: 6 * _YEARS,
}
_CHILD_UNDER_14 = 15 * _YEARS
_ADOLESCENT_14_TO_17 = 12 * _YEARS


def minimum_sentence_months(charge: Charge, youngest_victim_age: int | None) -> int | None:
    """The least prison term the law allows for a conviction on this charge, in months, given
    the youngest victim's age on the day of the offence against them. The age minimums
    apply to arts. 153 and 153-A (the larger minimum wins); an unknown age takes the adult
    minimum. None for a charge that has no minimum here (the lesser offences)."""
    base = _MINIMUM_BY_CHARGE.get(charge)
    if base is None or charge not in TRAFFICKING_CHARGES or youngest_victim_age is None:
        return base
    if youngest_victim_age < 14:
        return max(base, _CHILD_UNDER_14)
    if youngest_victim_age < 18:
        return max(base, _ADOLESCENT_14_TO_17)
    return base


@dataclass(frozen=True)
class SentenceFlags:
    """What statistics count about a defendant's outcome, and the rule that decided it."""

    below_legal_minimum: bool
    charge_reduced: bool
    rule_version: str = SENTENCING_RULE_VERSION


def judge_outcome(
    *,
    outcome: Outcome,
    charge_filed: Charge,
    charge: Charge | None,
    sentence_months: int | None,
    youngest_victim_age: int | None,
) -> SentenceFlags:
    """Flag a conviction below the legal minimum of its charge (for the youngest victim's
    age), and a complaint filed as trafficking that ended in a conviction on a lesser
    charge. Only convictions are flagged."""
    if outcome is not Outcome.convicted or charge is None:
        return SentenceFlags(below_legal_minimum=False, charge_reduced=False)
    minimum = minimum_sentence_months(charge, youngest_victim_age)
    return SentenceFlags(
        below_legal_minimum=minimum is not None and (sentence_months or 0) < minimum,
        charge_reduced=charge_filed in TRAFFICKING_CHARGES and charge not in TRAFFICKING_CHARGES,
    )


def outcome_error(
    outcome: Outcome, *, sentence_months: int | None, fine_soles: Decimal | None
) -> str | None:
    """Why an outcome's sentence or fine does not fit it, or None: only a conviction carries a
    sentence or a fine, and a conviction needs a sentence (0 years 0 months for a fine
    alone)."""
    if outcome is Outcome.ongoing:
        return "ongoing is where a defendant starts, not an outcome to record"
    if outcome is not Outcome.convicted and (sentence_months is not None or fine_soles):
        return "only a conviction carries a sentence or a fine"
    if outcome is Outcome.convicted and sentence_months is None:
        return "a conviction needs its sentence (years and months; 0 and 0 for a fine alone)"
    return None


def defendant_label(number: int) -> str:
    """The n-th defendant of a proceeding is D<n>: defendants carry no identity."""
    return f"D{number}"


def restitution_overdue_before(*, today: date, days: int) -> date:
    """Restitution ordered on this day or earlier and still unpaid opens an alert."""
    return today - timedelta(days=days)


def proceeding_days_problem(
    complaint_filed_on: date, offences_on: list[date], *, today: date
) -> Implausible | None:
    """A complaint already filed, about offences committed before it (none before 1990)."""
    return first(
        past_day("complaint_filed_on", complaint_filed_on, today=today),
        *(
            past_day(f"cases.{i}.offence_on", offence_on, today=today)
            for i, offence_on in enumerate(offences_on)
        ),
        *(
            ordered(f"cases.{i}.offence_on", offence_on, "complaint_filed_on", complaint_filed_on)
            for i, offence_on in enumerate(offences_on)
        ),
    )


def offence_day_problem(
    offence_on: date, *, complaint_filed_on: date, today: date
) -> Implausible | None:
    """An offence against a victim added to a proceeding: before its complaint."""
    return first(
        past_day("offence_on", offence_on, today=today),
        ordered("offence_on", offence_on, "complaint_filed_on", complaint_filed_on),
    )


def step_day_problem(
    field: str, day: date, *, after_field: str, after: date, today: date
) -> Implausible | None:
    """A step of a proceeding (a status, an outcome, an order, a payment): it has happened,
    and not before the step it follows."""
    return first(past_day(field, day, today=today), ordered(after_field, after, field, day))


def interview_problem(conducted_at: datetime, *, now: datetime) -> Implausible | None:
    """An interview already held (give or take a client's clock), not before 1990."""
    return past_instant("conducted_at", conducted_at, now=now)
