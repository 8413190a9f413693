"""The sign-in form (Flask-WTF: the CSRF token is part of it)."""

from __future__ import annotations

from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..backup.forms import TextForm
from ..catalogue import lazy_gettext as _l
from .accounts import NAME_MAX, PASSWORD_MAX


class SignInForm(TextForm):  # text fields read text only: a file there is no 500
    name = StringField(_l("用户名"), validators=[DataRequired(), Length(max=NAME_MAX)],
                       render_kw={"autocomplete": "username", "autofocus": True, "maxlength": NAME_MAX})
    password = PasswordField(_l("密码"), validators=[DataRequired(), Length(max=PASSWORD_MAX)],
                             render_kw={"autocomplete": "current-password"})
