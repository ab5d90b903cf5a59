"""Which names are countries, US states or continents: "Which country...?" is answered by a country.

Common English names as news writes them, not ISO's formal ones ("South Korea", not "Korea, Republic of").
A short fixed list is enough, and it keeps typing offline and instant; cities are too many to list.
"""

from __future__ import annotations

import re

_COUNTRY_LIST = """
Afghanistan|Albania|Algeria|Andorra|Angola|Antigua and Barbuda|Argentina|Armenia|Australia|Austria|Azerbaijan|
Bahamas|Bahrain|Bangladesh|Barbados|Belarus|Belgium|Belize|Benin|Bhutan|Bolivia|Bosnia|Bosnia and Herzegovina|
Botswana|Brazil|Brunei|Bulgaria|Burkina Faso|Burundi|Cambodia|Cameroon|Canada|Cape Verde|Central African Republic|
Chad|Chile|China|Colombia|Comoros|Congo|Costa Rica|Croatia|Cuba|Cyprus|Czech Republic|Czechia|Denmark|Djibouti|
Dominica|Dominican Republic|East Timor|Ecuador|Egypt|El Salvador|Equatorial Guinea|Eritrea|Estonia|Eswatini|
Ethiopia|Fiji|Finland|France|Gabon|Gambia|Georgia|Germany|Ghana|Greece|Grenada|Guatemala|Guinea|Guinea-Bissau|
Guyana|Haiti|Honduras|Hungary|Iceland|India|Indonesia|Iran|Iraq|Ireland|Israel|Italy|Ivory Coast|Jamaica|Japan|
Jordan|Kazakhstan|Kenya|Kiribati|Kosovo|Kuwait|Kyrgyzstan|Laos|Latvia|Lebanon|Lesotho|Liberia|Libya|
Liechtenstein|Lithuania|Luxembourg|Madagascar|Malawi|Malaysia|Maldives|Mali|Malta|Marshall Islands|Mauritania|
Mauritius|Mexico|Micronesia|Moldova|Monaco|Mongolia|Montenegro|Morocco|Mozambique|Myanmar|Burma|Namibia|Nauru|
Nepal|Netherlands|Holland|New Zealand|Nicaragua|Niger|Nigeria|North Korea|North Macedonia|Norway|Oman|Pakistan|
Palau|Palestine|Panama|Papua New Guinea|Paraguay|Peru|Philippines|Poland|Portugal|Qatar|Romania|Russia|Rwanda|
Saint Lucia|Samoa|San Marino|Saudi Arabia|Senegal|Serbia|Seychelles|Sierra Leone|Singapore|Slovakia|Slovenia|
Solomon Islands|Somalia|South Africa|South Korea|South Sudan|Spain|Sri Lanka|Sudan|Suriname|Sweden|Switzerland|
Syria|Taiwan|Tajikistan|Tanzania|Thailand|Togo|Tonga|Trinidad and Tobago|Tunisia|Turkey|Turkiye|Turkmenistan|
Tuvalu|Uganda|Ukraine|United Arab Emirates|UAE|United Kingdom|UK|Britain|Great Britain|England|Scotland|Wales|
Northern Ireland|United States|United States of America|Uruguay|Uzbekistan|Vanuatu|Vatican|Venezuela|
Vietnam|Yemen|Zambia|Zimbabwe|Hong Kong|Greenland|Puerto Rico
"""

_US_STATE_LIST = """
Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|Illinois|
Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|
Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Ohio|Oklahoma|
Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|
West Virginia|Wisconsin|Wyoming
"""

_CONTINENT_LIST = "Africa|Antarctica|Asia|Australia|Europe|North America|South America|Oceania|Latin America"


def _names(listing: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in listing.replace("\n", "").split("|") if n.strip())


COUNTRIES = _names(_COUNTRY_LIST)
US_STATES = _names(_US_STATE_LIST)
CONTINENTS = _names(_CONTINENT_LIST)
STATES = US_STATES + COUNTRIES  # "state" also means a country ("member states", "Gulf states")
_PATTERNS: dict[tuple[str, ...], re.Pattern] = {}

_ASKED = re.compile(r"\b(?:which|what)\s+(?:[\w-]+\s+)?(countr(?:y|ies)|nations?|states?|continents?)\b", re.I)


def asked_list(question: str) -> tuple[str, ...] | None:
    """The names that can answer "Which country/nation/state/continent...?", or None for other questions."""
    m = _ASKED.search(question)
    if not m:
        return None
    word = m.group(1).lower()
    if word.startswith(("countr", "nation")):
        return COUNTRIES
    if word.startswith("state"):
        return STATES
    return CONTINENTS


def asks_several(question: str) -> bool:
    """ "Which two countries...?", "What states...?": the answer is a list of names."""
    m = _ASKED.search(question)
    return bool(m) and m.group(1).lower() in ("countries", "nations", "states", "continents")


def joined(text: str, found: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Names listed together ("Guatemala and Mexico", "Kansas, Ohio and Utah") as one span each."""
    out: list[tuple[int, int, str]] = []
    for start, end, name in found:
        if out and re.fullmatch(r",?\s+(?:and|&)\s+|,\s+", text[out[-1][1]:start]):
            out[-1] = (out[-1][0], end, text[out[-1][0]:end])
        else:
            out.append((start, end, name))
    return out


def find(text: str, names: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """(start, end, name) of each listed name in ``text``, as written there: capitalised, whole words."""
    rx = _PATTERNS.get(names)
    if rx is None:
        # Longest first, so "South Sudan" is found whole rather than as "Sudan".
        alternatives = "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))
        rx = _PATTERNS[names] = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    return [(m.start(), m.end(), m.group(0)) for m in rx.finditer(text)]
