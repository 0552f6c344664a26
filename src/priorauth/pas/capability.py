"""The server's CapabilityStatement: exactly what the PAS API does, and nothing it does not."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from priorauth.pas.notes import instant
from priorauth.pas.subscriptions import PAS_TOPIC, SUBSCRIPTION_PROFILES

PAS_IG = "http://hl7.org/fhir/us/davinci-pas"
PAS_SD = PAS_IG + "/StructureDefinition/"
# The PAS server-side requirements (an Intermediary/payer receiving PAS requests). This server
# implements a subset of it (JSON only: an XML body is 415), which `instantiates` allows.
PAS_SERVER_CAPABILITIES = PAS_IG + "/CapabilityStatement/IntermediaryCapabilities"
SUBMIT = PAS_IG + "/OperationDefinition/Claim-submit"
INQUIRE = PAS_IG + "/OperationDefinition/Claim-inquiry"
STATUS = (
    "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"
)
TOPIC_CANONICAL = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "capabilitystatement-subscriptiontopic-canonical"
)

__all__ = ["capability_statement"]


def capability_statement(base_url: str, *, version: str, now: datetime) -> dict[str, Any]:
    """The CapabilityStatement served at [base]/metadata."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(now),
        "publisher": "priorauth",
        "kind": "instance",
        "instantiates": [PAS_SERVER_CAPABILITIES],
        "software": {"name": "priorauth", "version": version},
        "implementation": {
            "description": "priorauth payer prior-authorization engine (Da Vinci PAS)",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "implementationGuide": [
            PAS_IG + "/ImplementationGuide/hl7.fhir.us.davinci-pas",
            "http://hl7.org/fhir/uv/subscriptions-backport/ImplementationGuide/"
            "hl7.fhir.uv.subscriptions-backport",
        ],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {
                        "type": "Claim",
                        "supportedProfile": [
                            PAS_SD + "profile-claim",
                            PAS_SD + "profile-claim-inquiry",
                        ],
                        "operation": [
                            {"name": "submit", "definition": SUBMIT},
                            {"name": "inquire", "definition": INQUIRE},
                        ],
                    },
                    {
                        "type": "ClaimResponse",
                        "supportedProfile": [
                            PAS_SD + "profile-claimresponse",
                            PAS_SD + "profile-claiminquiryresponse",
                        ],
                        "interaction": [{"code": "read"}],
                    },
                    {
                        "extension": [{"url": TOPIC_CANONICAL, "valueCanonical": PAS_TOPIC}],
                        "type": "Subscription",
                        "supportedProfile": list(SUBSCRIPTION_PROFILES),
                        "documentation": (
                            "Subscriptions Backport (R4): channel rest-hook only, payload "
                            "application/fhir+json or application/json with content "
                            "full-resource only (PAS spec-62), filtered by org-identifier "
                            "(the requestor's NPI, or a comma-separated list: spec-58). "
                            "A new or updated Subscription is 'requested' until its "
                            "endpoint accepts the handshake."
                        ),
                        "interaction": [
                            {"code": "create"},
                            {"code": "read"},
                            {"code": "update"},
                            {"code": "delete"},
                        ],
                        "operation": [{"name": "status", "definition": STATUS}],
                    },
                    {
                        # Da Vinci DTR payer operations (the CRD hooks are at /cds-services).
                        "type": "Questionnaire",
                        "operation": [
                            {
                                "name": "questionnaire-package",
                                "definition": "http://hl7.org/fhir/us/davinci-dtr/"
                                "OperationDefinition/questionnaire-package",
                            },
                            {
                                "name": "next-question",
                                "definition": "http://hl7.org/fhir/uv/sdc/"
                                "OperationDefinition/Questionnaire-next-question",
                            },
                        ],
                    },
                ],
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "SMART Backend Services (client credentials, private_key_jwt "
                    "RS384/ES384); see /.well-known/smart-configuration.",
                },
            }
        ],
    }
