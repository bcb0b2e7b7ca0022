"""The parameters of every operator a policy's ``action:`` can name, as typed config models.

They live in the policy layer so a policy is checked whole when it loads, with no key and no
database: a column's parameters are validated against its operator's model there, and an
error names the file, the line and the field. The operators themselves (``veilflow.transform``,
``scrub_text`` in ``veilflow.detect``) take these models as their ``Config``; the registry in
``veilflow.registry`` maps each name to its operator, and a test holds both to the same names.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from veilflow.policy.detection import DetectionSettings
from veilflow.policy.entities import ENTITIES


class OperatorConfig(BaseModel):
    """Base of every operator's parameters: strict, frozen, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- keep, drop, mask, redact, suppress: no key -------------------------------------------


class KeepConfig(OperatorConfig):
    pass


class DropConfig(OperatorConfig):
    pass


class MaskConfig(OperatorConfig):
    char: str = Field(default="*", min_length=1, max_length=1)
    keep_first: int = Field(default=0, ge=0)
    keep_last: int = Field(default=0, ge=0)


class RedactConfig(OperatorConfig):
    replacement: str = "[REDACTED]"


class SuppressConfig(OperatorConfig):
    pass


# --- tokenize ------------------------------------------------------------------------------


class TokenizeConfig(OperatorConfig):
    #: ``readable`` → ``tok_v1_…``; ``preserve`` → same length and character classes.
    format: Literal["readable", "preserve"] = "readable"
    #: ``exact`` hashes the exact bytes; ``casefold`` hashes ``normalize_text(value)``.
    normalize: Literal["exact", "casefold"] = "exact"
    #: Keep the part from the last ``@`` on (email domain) in clear.
    keep_domain: bool = False
    #: Accepted for readability of policies; tokens are always deterministic.
    deterministic: Literal[True] = True
    #: Prefix of readable tokens.
    prefix: str = Field(default="tok", min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$")

    @model_validator(mode="after")
    def _prefix_only_for_readable(self) -> TokenizeConfig:
        if self.format == "preserve" and "prefix" in self.model_fields_set:
            raise ValueError("'prefix' applies to readable tokens only, not format: preserve")
        return self


# --- ff1 -----------------------------------------------------------------------------------

DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()

#: Named alphabets; any other string is a custom alphabet listing the radix's characters.
ALPHABETS = {
    "digits": DIGITS,
    "hex": DIGITS + "abcdef",
    "lower_alnum": DIGITS + _LOWER,
    "upper_alnum": DIGITS + _UPPER,
    "alnum": DIGITS + _UPPER + _LOWER,
}
#: FF1's largest radix (NIST SP 800-38G: radix ≤ 2^16); ``transform/ff1.py`` takes it from here.
FF1_MAX_RADIX = 1 << 16


class FF1Config(OperatorConfig):
    #: ``digits``, ``hex`` (lowercase), ``lower_alnum``, ``upper_alnum``, ``alnum`` or a
    #: custom string listing the characters in numeral order (a named alphabet wins).
    alphabet: str = "digits"
    #: Characters that stay in place; any other character outside the alphabet makes a value
    #: invalid. ``null``: every character outside the alphabet stays in place.
    separators: str | None = " -./()+_:"
    keep_first: int = Field(default=0, ge=0)
    keep_last: int = Field(default=0, ge=0)
    #: Luhn-valid output for card numbers (digits only; see ``transform/operators/fpe.py``).
    luhn: bool = False
    #: Encrypt the local part of an email address and keep ``@domain``.
    email: bool = False
    #: A column of the same table whose value joins the tweak.
    context_column: str | None = None
    on_invalid: Literal["token", "fail"] = "token"

    @field_validator("alphabet")
    @classmethod
    def _known_or_valid(cls, value: str) -> str:
        chars = ALPHABETS.get(value, value)
        if len(chars) < 2 or len(set(chars)) != len(chars) or len(chars) > FF1_MAX_RADIX:
            raise ValueError("a custom alphabet needs 2 to 65536 distinct characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FF1Config:
        if self.luhn and self.characters != DIGITS:
            raise ValueError("luhn needs alphabet 'digits'")
        if self.luhn and self.email:
            raise ValueError("luhn and email exclude each other")
        return self

    @property
    def characters(self) -> str:
        return ALPHABETS.get(self.alphabet, self.alphabet)


# --- surrogate -----------------------------------------------------------------------------

SurrogateEntity = Literal[
    "PERSON",
    "FIRST_NAME",
    "LAST_NAME",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "LOCATION",
    "ADDRESS",
    "CITY",
    "DATE_TIME",
    "GENERIC",
]
SurrogateLocale = Literal["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"]


class SurrogateConfig(OperatorConfig):
    entity: SurrogateEntity
    locale: SurrogateLocale = "en_US"


# --- generalize ----------------------------------------------------------------------------

_MODES = ("keep_prefix", "bucket", "truncate")
_OPTIONS = {"fill": "keep_prefix", "bottom": "bucket", "top": "bucket"}


class GeneralizeConfig(OperatorConfig):
    """Exactly one mode: ``keep_prefix``, ``bucket`` or ``truncate``; see ``Generalize``."""

    #: Prefix mode: keep this many leading characters; the rest become ``fill``.
    keep_prefix: int | None = Field(default=None, ge=0)
    #: Prefix mode: one character per hidden character, or "" to cut the value.
    fill: str = Field(default="*", max_length=1)
    #: Bucket mode: width of the numeric bucket, aligned at 0 ("30-39" for width 10).
    bucket: int | None = Field(default=None, ge=1)
    #: Bucket mode: values below become "<bottom".
    bottom: int | None = None
    #: Bucket mode: values at or above become "top+".
    top: int | None = None
    #: Date mode: keep ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` of a date or timestamp.
    truncate: Literal["year", "month", "day"] | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> GeneralizeConfig:
        modes = [m for m in _MODES if getattr(self, m) is not None]
        if len(modes) != 1:
            raise ValueError(
                "generalize takes exactly one of keep_prefix, bucket, truncate "
                f"(got {', '.join(modes) or 'none'})"
            )
        for option, mode in _OPTIONS.items():
            if option in self.model_fields_set and mode != modes[0]:
                raise ValueError(f"'{option}' goes with '{mode}', not with '{modes[0]}'")
        if self.bottom is not None and self.top is not None and self.bottom >= self.top:
            raise ValueError("'bottom' must be below 'top'")
        return self

    @property
    def mode(self) -> str:
        return next(m for m in _MODES if getattr(self, m) is not None)


# --- date_shift ----------------------------------------------------------------------------


class DateShiftConfig(OperatorConfig):
    #: Largest shift in days either way; 0 shifts nothing.
    max_days: int = Field(ge=0, le=36500)
    #: Source column whose value identifies the subject (e.g. ``customer_id``).
    subject: str = Field(min_length=1)


# --- scrub_text ----------------------------------------------------------------------------

Replacement = Literal["redact", "mask", "tokenize", "surrogate"]
#: The model of each operator ``scrub_text`` may replace a finding with.
REPLACEMENT_CONFIGS: dict[str, type[OperatorConfig]] = {
    "redact": RedactConfig,
    "mask": MaskConfig,
    "tokenize": TokenizeConfig,
    "surrogate": SurrogateConfig,
}
#: What ``scrub_text`` fills in itself when a replacement's parameters leave it out (the
#: surrogate entity follows the finding's entity; any valid one stands for it here).
_FILLED_IN: dict[str, dict[str, Any]] = {"surrogate": {"entity": "GENERIC"}}


def _replacement_specs(v: Any) -> dict[str | None, Any]:
    """The replacement specs of a ``with:`` value, by entity (None: one for all)."""
    if isinstance(v, str) or (isinstance(v, dict) and "action" in v):
        return {None: v}
    return dict(v)


class ScrubTextConfig(OperatorConfig):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: Entity types to find and replace (default: every type the scanner knows).
    entities: list[str] = Field(default_factory=lambda: list(ENTITIES))
    #: One operator for all entities, or a mapping entity → operator; an operator is its name
    #: or ``{action: <name>, <its params>}``. Entities missing from a mapping are redacted.
    with_: Replacement | dict[str, Any] | dict[str, Replacement | dict[str, Any]] = Field(
        default="redact", alias="with"
    )
    #: The policy's ``detection:`` settings (filled in by the planner when absent).
    detection: DetectionSettings | None = None

    @field_validator("with_", mode="before")
    @classmethod
    def _replacements(cls, v: Any) -> Any:
        if not isinstance(v, str | dict):
            raise ValueError("an operator name, {action: <name>, ...}, or entity: operator")
        allowed = sorted(REPLACEMENT_CONFIGS)
        errors: list[InitErrorDetails] = []
        for entity, spec in _replacement_specs(v).items():
            action = spec.get("action") if isinstance(spec, dict) else spec
            if action not in REPLACEMENT_CONFIGS:
                raise ValueError(f"replacement must be one of {allowed}, got {action!r}")
            if isinstance(spec, dict):
                params = {**_FILLED_IN.get(action, {}), **spec}
                del params["action"]
                try:
                    REPLACEMENT_CONFIGS[action].model_validate(params)
                except ValidationError as exc:
                    errors += _located(action, exc, () if entity is None else (str(entity),))
        if errors:
            raise ValidationError.from_exception_data("with", errors)
        return v

    @field_validator("entities")
    @classmethod
    def _entities(cls, v: list[str]) -> list[str]:
        bad = [e for e in v if not e.replace("_", "").isalnum() or not e.isupper()]
        if bad:
            raise ValueError(f"entity names are upper-case identifiers, got {bad}")
        return v

    def replacement_for(self, entity: str) -> tuple[str, dict[str, Any]]:
        spec: Any = self.with_
        if isinstance(spec, dict) and "action" not in spec:
            spec = spec.get(entity, "redact")
        if isinstance(spec, str):
            return spec, {}
        params = {k: v for k, v in dict(spec).items() if k != "action"}
        return str(spec["action"]), params


# --- by name -------------------------------------------------------------------------------

#: The config model of every operator, by the name a policy's ``action:`` uses.
OPERATOR_CONFIGS: dict[str, type[OperatorConfig]] = {
    "keep": KeepConfig,
    "drop": DropConfig,
    "mask": MaskConfig,
    "redact": RedactConfig,
    "tokenize": TokenizeConfig,
    "ff1": FF1Config,
    "surrogate": SurrogateConfig,
    "generalize": GeneralizeConfig,
    "date_shift": DateShiftConfig,
    "suppress": SuppressConfig,
    "scrub_text": ScrubTextConfig,
}


def _message(action: str, err: ErrorDetails) -> str:
    if err["type"] == "operator_parameter":
        # A replacement's own parameter (scrub_text's ``with:``) already names its operator.
        return err["msg"]
    if err["type"] == "extra_forbidden":
        problem = "unknown parameter"
    else:
        problem = err["msg"].removeprefix("Value error, ")
    return f"{problem} (operator {action})"


def _located(
    action: str, exc: ValidationError, where: tuple[str, ...] = ()
) -> list[InitErrorDetails]:
    """The errors of ``exc``, each at its parameter (below ``where``) and saying which
    operator: "unknown parameter (operator mask)"."""
    return [
        InitErrorDetails(
            type=PydanticCustomError(
                "operator_parameter", "{message}", {"message": _message(action, err)}
            ),
            loc=(*where, *err["loc"]),
            input=err["input"],
        )
        for err in exc.errors()
    ]


def operator_config(action: str, params: dict[str, Any]) -> OperatorConfig:
    """``params`` validated by the model of the operator ``action``; a pydantic
    ``ValidationError`` located at the offending parameter (``action`` for an unknown
    operator) otherwise."""
    model = OPERATOR_CONFIGS.get(action)
    if model is None:
        known = ", ".join(sorted(OPERATOR_CONFIGS))
        raise ValidationError.from_exception_data(
            "action",
            [
                InitErrorDetails(
                    type=PydanticCustomError(
                        "unknown_operator",
                        "{message}",
                        {"message": f"unknown operator {action!r}; known: {known}"},
                    ),
                    loc=("action",),
                    input=action,
                )
            ],
        )
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise ValidationError.from_exception_data(action, _located(action, exc)) from None
