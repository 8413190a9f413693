"""Operator errors raised by the shared services (``projects``, ``queue``), as the web forms show them.

The error itself names its form field and carries a translatable template with its values (see
``errors.ValidationError``); here it only meets the page's language. An error without a field is shown
at the top of the form, one without a template in its own words: nothing an operator must read is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext

from ..errors import StageBackupError


@dataclass(frozen=True)
class FieldError:
    field: str | None  # None: about the form as a whole
    message: str


def form_error(error: StageBackupError) -> FieldError:
    return FieldError(error.field, error.translate(gettext))
