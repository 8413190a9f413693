"""The page's translations, found once per locale, for templates and the labels made with ``lazy_gettext``.

Flask-Babel finds the catalogue anew for every message: ``get_translations()`` looks its request context up
three times and formats the locale's name as the key of its cache. A card poll translates about twenty
messages, and that search was a quarter of its rendering (docs/performance.md, "Web polling"). Here the
locale Flask-Babel settles on once per request (``get_locale()``, public; ``force_locale`` changes it) keys
the catalogues it returned, so a message costs one dict look-up. ``flask_babel.gettext`` in Python code is
left as it is: a request translates one or two messages there.
"""

from __future__ import annotations

from babel.core import Locale
from babel.support import NullTranslations
from flask import Flask
from flask_babel import get_locale, get_translations
from flask_babel.speaklater import LazyString

_by_locale: dict[Locale, NullTranslations] = {}


def catalogue() -> NullTranslations:
    """The catalogue of the request's locale (outside a request, Flask-Babel's answer, not kept)."""
    locale = get_locale()
    try:
        return _by_locale[locale]
    except KeyError:
        translations = get_translations()
        if locale is not None:
            _by_locale[locale] = translations
        return translations


def gettext(message: str, **variables) -> str:
    translated = catalogue().ugettext(message)
    return translated % variables if variables else translated


def lazy_gettext(message: str, **variables) -> LazyString:
    """A label translated where it is shown, in that request's language (as ``flask_babel.lazy_gettext``)."""
    return LazyString(gettext, message, **variables)


def install(app: Flask) -> None:
    """Templates' ``_()``, ``ngettext`` and friends through ``catalogue()`` (Jinja's i18n extension, which
    Flask-Babel added; newstyle: the template's values are escaped and formatted by Jinja)."""
    app.jinja_env.install_gettext_callables(
        gettext=gettext,  # Jinja calls it with the message alone and formats the values itself
        ngettext=lambda singular, plural, n: catalogue().ungettext(singular, plural, n),
        pgettext=lambda context, message: catalogue().upgettext(context, message),
        npgettext=lambda context, singular, plural, n: catalogue().unpgettext(context, singular, plural, n),
        newstyle=True,
    )
