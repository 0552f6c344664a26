"""The scopes priorauth grants, and what each one opens."""

from __future__ import annotations

SUBMIT = "system/Claim.write"  # $submit
INQUIRE = "system/Claim.read"  # $inquire
CLAIM_RESPONSE_READ = "system/ClaimResponse.read"
SUBSCRIPTION = "system/Subscription.write"  # create, read and delete the client's own
CDS = "system/cds-hooks.write"  # CRD hooks
DTR = "system/Questionnaire.read"  # DTR $questionnaire-package and $next-question
CASES_READ = "system/Case.read"  # the payer's case API (reviewers' systems)
CASES_DECIDE = "system/Case.write"

ALL = (SUBMIT, INQUIRE, CLAIM_RESPONSE_READ, SUBSCRIPTION, CDS, DTR, CASES_READ, CASES_DECIDE)
