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
from jinja2 import pass_context
from jinja2.runtime import Context

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


# The name under which a render carries its catalogue (a context processor puts it there).
_RENDER_KEY = "_catalogue"


def _of_render(context: Context) -> NullTranslations:
    """The catalogue found when the render began, else (a macro imported without the page's context) the
    request's: a card translates about twenty messages, and asking Flask-Babel for the locale each time cost
    about as much as the look-up it saves."""
    found = context.get(_RENDER_KEY)
    return found if found is not None else catalogue()


def _through_render(method: str):
    """A template callable that calls ``method`` of the render's catalogue with what the template passed."""
    return pass_context(lambda context, *args: getattr(_of_render(context), method)(*args))


def install(app: Flask) -> None:
    """Templates' ``_()``, ``ngettext`` and friends through the render's catalogue (Jinja's i18n extension,
    which Flask-Babel added; newstyle: the template's values are escaped and formatted by Jinja, which calls
    these with the message alone). Each ``render_template`` looks the catalogue up once, when it starts, so
    one rendered inside ``force_locale`` follows it."""
    app.context_processor(lambda: {_RENDER_KEY: catalogue()})
    app.jinja_env.install_gettext_callables(
        gettext=_through_render("ugettext"),
        ngettext=_through_render("ungettext"),
        pgettext=_through_render("upgettext"),
        npgettext=_through_render("unpgettext"),
        newstyle=True,
    )
