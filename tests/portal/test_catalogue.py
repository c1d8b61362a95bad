"""Every UI string of the portal's templates (and the month comparison's sentences) has a
German translation: extracted from the templates' ``_("...")`` literals, looked up in the
catalogues the portal's pages merge (the portal's own and the web platform's)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from babel.messages.pofile import read_po

from billbyte.portal import views

_LITERAL = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)""")
TEMPLATES = Path(str(resources.files("billbyte.portal") / "templates"))


def _catalogue(package: str) -> dict[str, str]:
    with (resources.files(package) / "locale" / "de.po").open("rb") as handle:
        catalog = read_po(handle, locale="de")
    return {str(m.id): str(m.string) for m in catalog if m.id}


def template_strings() -> dict[str, str]:
    """msgid → the template it was found in."""
    found: dict[str, str] = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        for match in _LITERAL.finditer(path.read_text(encoding="utf-8")):
            text = match.group(1) if match.group(1) is not None else match.group(2)
            found.setdefault(text, path.name)
    return found


def test_the_extraction_finds_the_strings_it_should() -> None:
    # A test of the test: a known string of each page, and none of the non-literal calls.
    found = template_strings()
    assert {"Month to date", "Break down by", "Your invoices and credit notes"} <= set(found)
    assert not any("sentence.message" in text for text in found)


def test_every_portal_template_string_has_a_german_translation() -> None:
    german = {**_catalogue("billbyte.web"), **_catalogue("billbyte.portal")}
    missing = {text: where for text, where in template_strings().items() if not german.get(text)}
    assert missing == {}


def test_every_sentence_of_the_month_comparison_has_a_german_translation() -> None:
    portal = _catalogue("billbyte.portal")
    missing = [text for text in views.SENTENCES.values() if not portal.get(text)]
    assert missing == []


def test_the_german_translations_keep_their_placeholders() -> None:
    placeholder = re.compile(r"%\((\w+)\)s")
    for text, german in _catalogue("billbyte.portal").items():
        assert sorted(placeholder.findall(text)) == sorted(placeholder.findall(german)), text
