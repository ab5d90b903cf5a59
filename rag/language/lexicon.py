"""Word lists, each once, with an example of what it is for. Data only: the code that uses them is elsewhere.

Reading, chunking, search and answering all draw on these; none keeps a private copy.
"""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(w for w in text.split() if w)


def _names(listing: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in listing.replace("\n", "").split("|") if n.strip())


# -- calendar ---------------------------------------------------------------------------------------------
# "June 1, 2023", "Sept. 3", "1 Jun 2022": each month's full name, then the abbreviations news copy uses.
MONTHS = _words("january february march april may june july august september october november december")
MONTH_ABBREVIATIONS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
MONTH_NUMBER = {**{m: i for i, m in enumerate(MONTHS, 1)}, **MONTH_ABBREVIATIONS}
# "Tuesday": says when, never who ("the Denver Broncos Tuesday" names the Broncos).
WEEKDAYS = _words("monday tuesday wednesday thursday friday saturday sunday")
# "on Monday", "this week", "last night": a run of only these says when, not what.
WHEN_WORDS = frozenset(WEEKDAYS) | frozenset(
    _words("today yesterday tonight tomorrow weekend on early late last this next morning afternoon evening night")
)

# -- numbers ----------------------------------------------------------------------------------------------
# "six months" is 6 months; "two dozen" is a count too.
# Words that start another clause of a sentence: what follows belongs to the next figure ("killing around 40 and
# injuring about 115": "injuring" says what 115 counts, not 40).
CLAUSE_JOINERS = _words("and or but while whereas including plus")
# Words beside a figure that do not say what it counts: hedges ("at least 12") and words any count or report has
# ("12 people", "officials said"). Two figures are the same quantity by the other words around them.
FIGURE_FILLER = _words(
    "about around approximately roughly nearly almost some least more than over under fewer less up estimated "
    "people person persons others total number said says according told"
)

NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        _words(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
            "seventeen eighteen nineteen"
        )
    )
}
NUMBER_WORDS.update(
    {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
)
# "hundreds of homes", "dozens": vague counts, still the number a how-many question asks for.
VAGUE_COUNTS = _words("hundred dozen dozens hundreds thousands millions billions")
# "the 13th century", "the third time".
ORDINALS = _words(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
    "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth twenty-first"
)
# "$310 million", "1.2bn", "40k": multipliers after a number.
SCALES = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "m": 1e6,
    "mn": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
    "hundred": 1e2,
}
# "310 million dollars", "€5": money.
CURRENCY_SYMBOLS = "$€£¥"
CURRENCY_WORDS = _words("dollars euros pounds yen yuan rupees")
# "215 pounds", "4 meters", "3,700 people": a number with what it measures.
UNITS = _words(
    "meters metres meter metre feet foot miles mile km kilometers kilometres kilometer kilometre inches "
    "pounds lbs kilograms kilogram kg tons ton tonnes tonne degrees degree acres acre hectares hectare "
    "gallons gallon liters litres liter litre barrels barrel hours hour days day weeks week months month "
    "years year minutes minute seconds second people points point votes vote seats seat"
)

# -- sources and datelines ------------------------------------------------------------------------------------
# "New York (CNN Business)", "KYIV, Ukraine (AP) —": who sent the story, never what it says.
NEWS_AGENCIES = _names("CNN|AP|AFP|Reuters|UPI|Bloomberg|BBC|NPR")
# Whole lines that are site furniture, not reporting ("Main Menu" above the seed article's headline).
CHROME_LINES = frozenset(
    {
        "main menu",
        "menu",
        "comments are closed",
        "skip to content",
        "skip to main content",
        "advertisement",
        "share",
        "share this",
        "share this article",
        "related articles",
        "read more",
        "subscribe",
        "sign up",
        "log in",
        "sign in",
        "print",
        "email",
        "search",
        "close",
        "home",
        "back to top",
        "leave a comment",
        "comments",
        "tweet",
        "follow us",
    }
)
# "Mr. Smith", "Washington, D.C. on Monday", "U.S. officials": a period after these rarely ends a sentence.
ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sen",
        "rep",
        "gov",
        "gen",
        "lt",
        "col",
        "capt",
        "sgt",
        "st",
        "jr",
        "sr",
        "inc",
        "corp",
        "co",
        "ltd",
        "vs",
        "v",
        "etc",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
        "no",
        "u.s",
        "u.k",
        "u.n",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mt",
        "ft",
        "ave",
        "blvd",
        "dept",
        "est",
        "fig",
        "approx",
        "rev",
        "hon",
        "pres",
        "atty",
        "supt",
        "d.c",
    }
)

# -- function words -----------------------------------------------------------------------------------------
# "the", "of": they match everywhere and only add noise to BM25 and to word overlap.
STOPWORDS = frozenset(
    _words(
        "a an and are as at be been but by can could did do does for from had has have he her his how i if in into is "
        "it much many its me my not of on or our she so than that the their them then there these they this those to "
        "was we were what when where which who whom why will with would you your"
    )
)
# "When did...", "Is it...": question words, never names, even when capitalised.
QUESTION_WORDS = frozenset(
    _words(
        "what which who whom whose when where why how did does do is are was were will would can could has have had "
        "in on at the a an"
    )
)
# "did", "was": an auxiliary after "when" makes it the question's own wh-word ("When did...").
AUXILIARIES = _words("did does do was were is are will would can could has have had should shall may might must")
# "The", "But", "According": capitalised only because they open a sentence; never the start of a name.
SENTENCE_STARTERS = frozenset(
    _words(
        "The A An In On At But And He She It They We I This That These Those After Since As When While For If Speaking "
        "There Its His Her Their Our Some Many Most Other Another According Also Still"
    )
)
# "of", "de": short words inside one name ("Bank of America", "Lopez Obrador de la Cruz").
NAME_JOINERS = _words("of de la del van von the and al bin")
# "also", "said": carry no answer on their own; trimmed from the edges of a phrase answer.
FILLER = frozenset(
    _words(
        "also still just now only even already then said says say told reportedly however which "
        "that who whom whose there here more most"
    )
)

# -- places ---------------------------------------------------------------------------------------------------
# "Which country...?" is answered by a country. Common English names as news writes them ("South Korea", not
# "Korea, Republic of"). Cities are too many to list.
COUNTRIES = _names("""
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
""")
# "Voters in which state...?" is answered by a state ("state" also means a country: "member states").
US_STATES = _names("""
Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|Illinois|
Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|
Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Ohio|Oklahoma|
Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|
West Virginia|Wisconsin|Wyoming
""")
# "Which continent will require a common charger?" -> "Europe". "America" alone is left out: it never answers a
# which-continent question the way "Latin America" would wrongly answer a which-country one.
CONTINENTS = _names("Africa|Antarctica|Asia|Australia|Europe|North America|South America|Oceania|Latin America")
