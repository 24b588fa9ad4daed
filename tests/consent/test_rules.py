"""What a consent covers, refusals included: pure."""

from __future__ import annotations

from service.consent.rules import ConsentTerms, covers_sharing_with


def _consent(version: int, *share_with: str) -> ConsentTerms:
    return ConsentTerms(
        version=version,
        refused=False,
        purposes=frozenset({"services", "data_sharing"}),
        share_with=frozenset(share_with),
    )


def _refusal(version: int) -> ConsentTerms:
    return ConsentTerms(version=version, refused=True, purposes=frozenset(), share_with=frozenset())


def test_a_consent_covers_the_organizations_it_names() -> None:
    assert covers_sharing_with([_consent(1, "MIMP")], "MIMP")
    assert not covers_sharing_with([_consent(1, "MIMP")], "MINJUS")


def test_a_refusal_alone_covers_nobody() -> None:
    assert not covers_sharing_with([_refusal(1)], "MIMP")


def test_a_refusal_supersedes_every_earlier_consent() -> None:
    assert not covers_sharing_with([_consent(1, "MIMP"), _consent(2, "MIMP"), _refusal(3)], "MIMP")


def test_consent_given_after_a_refusal_covers_again() -> None:
    terms = [_consent(1, "MIMP", "MINJUS"), _refusal(2), _consent(3, "MINJUS")]
    assert covers_sharing_with(terms, "MINJUS")
    assert not covers_sharing_with(terms, "MIMP")


def test_order_of_the_versions_given_does_not_matter() -> None:
    assert not covers_sharing_with([_refusal(2), _consent(1, "MIMP")], "MIMP")
