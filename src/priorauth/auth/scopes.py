"""The scopes priorauth grants, what each one opens, and the two roles of a client."""

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

# The payer's review API: deciding is a payer act, and the engine's trace is the payer's.
CASE_SCOPES = (CASES_READ, CASES_DECIDE)

PROVIDER = "provider"  # a provider organization's system: sees and acts for that organization only
PAYER_SYSTEM = "payer-system"  # the payer's own system: every organization's cases
ROLES = (PROVIDER, PAYER_SYSTEM)

OPENS = {
    SUBMIT: "submit PAS requests ($submit)",
    INQUIRE: "ask about PAS requests ($inquire)",
    CLAIM_RESPONSE_READ: "read ClaimResponses",
    SUBSCRIPTION: "create, read and delete PAS Subscriptions",
    CDS: "call the CRD hooks (order-select, order-sign)",
    DTR: "fetch DTR questionnaires and pre-filled answers",
    CASES_READ: "read cases with the engine's trace and history (case API)",
    CASES_DECIDE: "decide cases, recorded under the client's own id (case API)",
}
