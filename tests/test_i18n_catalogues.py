"""The translation catalogues are complete, consistent with the source, and compiled.

Nothing here needs a database: the source is extracted with Babel into a temporary template,
each language's .po and .mo are read with Babel, and the page templates are parsed with Jinja.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from jinja2 import Environment, nodes

from omo.core.i18n import LOCALE_DIR, translations
from omo.i18n_cli import KEYWORDS, ROOT, TRANSLATED
from omo.web.pages import TEMPLATE_DIR, TEMPLATES

DEVICES_SINGULAR = "%(num)d device is logged in to your account."
DEVICES_PLURAL = "%(num)d devices are logged in to your account."

# A Python %-format placeholder with a mapping key, e.g. %(code)s, %(minutes)d, %(kib)d.
PLACEHOLDER = re.compile(r"%\(\w+\)[#0\- +]*(?:\d+|\*)?(?:\.\d+)?[diouxXeEfFgGcrsa]")

# What may stay visible in a template without going through the catalogue.
ALLOWED_WORDS = ("OMO",)
LETTER = re.compile(r"[^\W\d_]")  # any Unicode letter
GAP = "\x00"  # stands for a Jinja expression or statement between two pieces of literal text
HTML_DROP = re.compile(
    r"<!--.*?-->|<(script|style)\b[^>]*>.*?</\1\s*>|<[^>]*>|&[#\w]+;", re.DOTALL | re.IGNORECASE
)
TEXT_ATTRIBUTE = re.compile(
    r"(?<![\w-])(alt|title|placeholder|aria-label)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", re.IGNORECASE
)
JINJA_MARKUP = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def _key(message: Message) -> str:
    return message.id[0] if isinstance(message.id, list | tuple) else message.id


def _forms(message: Message) -> tuple[str, ...]:
    if isinstance(message.string, list | tuple):
        return tuple(message.string)
    return (message.string,)


def _read_po(path: Path) -> Catalog:
    with path.open("rb") as fileobj:
        return read_po(fileobj)


def _po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def _messages(catalog: Catalog) -> Iterator[Message]:
    return (message for message in catalog if message.id)


@pytest.fixture(scope="module")
def source_template(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The strings the current source asks for, extracted exactly as `omo i18n extract` does."""
    output = tmp_path_factory.mktemp("i18n") / "messages.pot"
    keywords = [arg for keyword in KEYWORDS for arg in ("-k", keyword)]
    CommandLineInterface().run(
        [
            "pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "--no-location",
            "--project", "OMO", "-o", str(output), *keywords, str(ROOT / "src" / "omo"),
        ]
    )  # fmt: skip
    catalog = _read_po(output)
    assert len(list(_messages(catalog))) > 0, "extraction found no strings at all"
    return catalog


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_source_string_is_translated(source_template: Catalog, locale: str) -> None:
    catalog = _read_po(_po_path(locale))
    problems: list[str] = []
    for wanted in _messages(source_template):
        message = catalog.get(wanted.id)
        key = _key(wanted)
        if message is None:
            problems.append(f"missing: {key!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {key!r}")
        elif wanted.pluralizable and len(_forms(message)) != catalog.num_plurals:
            problems.append(f"needs {catalog.num_plurals} plural forms: {key!r}")
        elif not all(form.strip() for form in _forms(message)):
            problems.append(f"untranslated: {key!r}")
    assert not problems, f"{locale}: {len(problems)} msgids not translated:\n" + "\n".join(problems)


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_placeholders(locale: str) -> None:
    problems: list[str] = []
    for message in _messages(_read_po(_po_path(locale))):
        ids = message.id if isinstance(message.id, list | tuple) else (message.id,)
        expected = [set(PLACEHOLDER.findall(msgid)) for msgid in ids]
        for form in filter(None, _forms(message)):
            found = set(PLACEHOLDER.findall(form))
            if found not in expected:
                problems.append(f"{_key(message)!r} -> {form!r}: {sorted(found)}")
            # Jinja's new-style gettext always %-formats, so a stray % would break a page.
            if "%" in PLACEHOLDER.sub("", form.replace("%%", "")):
                problems.append(f"{_key(message)!r} -> {form!r}: stray %")
    assert not problems, f"{locale}: placeholders differ from the msgid:\n" + "\n".join(problems)


@pytest.mark.parametrize("locale", TRANSLATED)
def test_compiled_catalogue_matches_po(locale: str) -> None:
    po_path = _po_path(locale)
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists(), f"{mo_path} is missing; run `omo i18n compile`"
    with mo_path.open("rb") as fileobj:
        compiled = read_mo(fileobj)
    expected = {
        message.id if isinstance(message.id, str) else tuple(message.id): _forms(message)
        for message in _messages(_read_po(po_path))
        if not message.fuzzy and any(_forms(message))
    }
    actual = {
        message.id if isinstance(message.id, str) else tuple(message.id): _forms(message)
        for message in _messages(compiled)
    }
    stale = sorted(str(key) for key in expected.keys() | actual.keys()
                   if expected.get(key) != actual.get(key))  # fmt: skip
    assert not stale, (
        f"{mo_path} is out of date with its .po; run `omo i18n compile`:\n" + "\n".join(stale)
    )


def _literal_text(node: nodes.Node, out: list[str]) -> None:
    """Literal template text in source order; every expression or tag becomes a GAP."""
    if isinstance(node, nodes.TemplateData):
        out.append(node.data)
    elif isinstance(node, nodes.Expr):
        out.append(GAP)
    else:
        if not isinstance(node, nodes.Output):
            out.append(GAP)
        for child in node.iter_child_nodes():
            _literal_text(child, out)


def _visible_words(text: str) -> list[str]:
    remaining = HTML_DROP.sub(" ", text)
    for word in ALLOWED_WORDS:
        remaining = re.sub(rf"\b{re.escape(word)}\b", " ", remaining)
    pieces = (piece.strip() for piece in re.split(rf"[{GAP}\n]+", remaining))
    return [piece for piece in pieces if LETTER.search(piece)]


TEMPLATE_FILES = sorted(path.relative_to(TEMPLATE_DIR) for path in TEMPLATE_DIR.rglob("*.html"))


def test_templates_exist() -> None:
    assert TEMPLATE_FILES, f"no templates found under {TEMPLATE_DIR}"


@pytest.mark.parametrize("name", [str(path) for path in TEMPLATE_FILES])
def test_template_text_goes_through_the_catalogue(name: str) -> None:
    env: Environment = TEMPLATES.env
    source = (TEMPLATE_DIR / name).read_text(encoding="utf-8")
    literal: list[str] = []
    _literal_text(env.parse(source, name=name), literal)
    unwrapped = _visible_words("".join(literal))

    for match in TEXT_ATTRIBUTE.finditer(source):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        rest = JINJA_MARKUP.sub(" ", value)
        for word in ALLOWED_WORDS:
            rest = re.sub(rf"\b{re.escape(word)}\b", " ", rest)
        if LETTER.search(rest):
            unwrapped.append(f'{match.group(1)}="{value}"')

    assert not unwrapped, f"{name}: text outside gettext: {unwrapped}"


def _devices_forms(locale: str) -> tuple[str, ...]:
    message = _read_po(_po_path(locale)).get((DEVICES_SINGULAR, DEVICES_PLURAL))
    assert message is not None, f"{locale}: the devices message is not in the catalogue"
    return _forms(message)


# Which form (index into msgstr[]) each count takes: French counts 0 as singular, Italian
# as plural; Chinese and Japanese have one form.
EXPECTED_FORM = {
    "fr": {0: 0, 1: 0, 2: 1, 5: 1, 21: 1},
    "it": {0: 1, 1: 0, 2: 1, 5: 1, 21: 1},
    "zh_Hans": {0: 0, 1: 0, 2: 0, 5: 0, 21: 0},
    "ja": {0: 0, 1: 0, 2: 0, 5: 0, 21: 0},
}


def test_expected_forms_cover_every_language() -> None:
    assert set(EXPECTED_FORM) == set(TRANSLATED)


def test_devices_message_is_still_in_the_source(source_template: Catalog) -> None:
    assert source_template.get((DEVICES_SINGULAR, DEVICES_PLURAL)) is not None


@pytest.mark.parametrize("locale", TRANSLATED)
def test_devices_plural_forms(locale: str) -> None:
    forms = _devices_forms(locale)
    gettext = translations(locale)
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    env.install_gettext_translations(gettext, newstyle=True)  # type: ignore[attr-defined]
    page = env.from_string("{{ ngettext(singular, plural, count) }}")
    for count, index in EXPECTED_FORM[locale].items():
        rendered = gettext.ngettext(DEVICES_SINGULAR, DEVICES_PLURAL, count)
        assert rendered == forms[index], (locale, count)
        expected_text = forms[index] % {"num": count}
        assert str(count) in expected_text
        html = page.render(singular=DEVICES_SINGULAR, plural=DEVICES_PLURAL, count=count)
        assert html == expected_text, (locale, count)


def test_english_devices_message_uses_the_source() -> None:
    gettext = translations("en")
    assert gettext.ngettext(DEVICES_SINGULAR, DEVICES_PLURAL, 1) == DEVICES_SINGULAR
    assert gettext.ngettext(DEVICES_SINGULAR, DEVICES_PLURAL, 0) == DEVICES_PLURAL
