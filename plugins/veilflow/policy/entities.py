"""The entity types of personal data that detection reports, by name."""

from __future__ import annotations

#: The identifiers named by a context word before them ("MRN: 00482913", "plate ABC-123"):
#: the entity types ``detect.identifiers`` reports.
IDENTIFIER_ENTITIES: tuple[str, ...] = (
    "MEDICAL_RECORD_NUMBER",
    "HEALTH_PLAN_ID",
    "ACCOUNT_NUMBER",
    "LICENSE_NUMBER",
    "VEHICLE_ID",
    "DEVICE_ID",
    "BIOMETRIC_ID",
)

#: Every entity type the scanner reports, in the order findings win an overlap: a validated
#: structured value (checksum, exact shape) beats a statistical guess, and an identifier
#: named by its context word ("MRN: 00482913") beats the phone number it also looks like.
#: ``scrub_text`` replaces all of them unless its ``entities:`` says otherwise.
ENTITIES: tuple[str, ...] = (
    "EMAIL_ADDRESS",
    "URL",
    "IBAN_CODE",
    "CREDIT_CARD",
    "US_SSN",
    "IP_ADDRESS",
    "VEHICLE_ID",
    "DEVICE_ID",
    "MEDICAL_RECORD_NUMBER",
    "HEALTH_PLAN_ID",
    "US_BANK_NUMBER",
    "ACCOUNT_NUMBER",
    "LICENSE_NUMBER",
    "BIOMETRIC_ID",
    "PHOTO_FILE",
    "PHONE_NUMBER",
    "AGE_OVER_89",
    "ZIP_CODE",
    "PERSON",
    "DATE_TIME",
    "LOCATION",
)
