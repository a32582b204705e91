"""Generated question-answering examples: facts planted in filler text, then questions whose answer is copied from them.

Every skill has several phrasings of the planted fact and of the question, and entity lists; a fixed share of both
is held out of training (split="heldout") so the evaluation measures the skill, not one memorised template. An
example is a list of content pieces (one Kafka content event each, joined by blank lines exactly as the engine's
PromptFormat.PLAIN joins them) and question/answer pairs asked after them.
"""
import random
import re
import string
import uuid
from dataclasses import dataclass, field

REFUSAL = "I don't know."

FIRST_NAMES = """Alice Bruno Chiara Dmitri Elena Farid Greta Hiroshi Ingrid Jamal Keiko Lars Maya Nikolai Olga Pablo Quentin
Rosa Samir Tamara Ulrich Valeria Wei Ximena Yusuf Zofia Amara Bjorn Celine Diego Esther Felix Gloria Hassan Irene Jonas
Kamala Leon Mirela Nadia Omar Petra Rafael Sonja Tobias Uma Viktor Wanda Xavier Yara Zane Anika Boris Clara Darius Edith
Fabio Hanna Igor Jana Kofi Lucia Marco Nora Oscar Priya Ravi Selma Theo Ursula Vera Willem Yvonne Aditya Beatriz Cyrus
Daria Emil Freya Gunnar Helga Ivan Julia Kenji Lina Mateo Nils Ophelia""".split()
CITIES = """Porto Lyon Krakow Osaka Bergen Quito Tartu Dublin Seville Bologna Gdansk Nantes Graz Leipzig Aarhus Malmo Split
Cusco Hobart Tampere Valencia Utrecht Bruges Ljubljana Riga Vilnius Oaxaca Mendoza Calgary Halifax Adelaide Nagoya Busan
Cork Lille Turin Basel Lucerne Bilbao Granada Coimbra Faro Brno Kosice Szeged Varna Plovdiv Cluj Sibiu Tromso Odense
Uppsala Turku Oulu Galway Limerick Perth Darwin Dunedin Nelson Kyoto Sendai Hue Cebu Pune Mysore Kandy Tangier Fez""".split()
COLOURS = "red blue green yellow purple orange black white grey brown pink teal violet silver golden crimson".split()
PROFESSIONS = """nurse baker pilot architect carpenter chemist dentist editor farmer geologist librarian mechanic
musician pharmacist plumber surveyor teacher translator veterinarian welder astronomer beekeeper cartographer
locksmith potter""".split()
PET_NAMES = """Biscuit Pepper Shadow Mango Ziggy Luna Otto Pixel Waffles Noodle Clover Pickles Juniper Tofu Rocket Maple
Sprocket Bramble Cosmo Nacho Truffle Olive Pumpkin Ginger Basil""".split()
THINGS = """lighthouse harbour orchard glacier observatory monastery vineyard lagoon canyon windmill bakery archive
greenhouse aqueduct meadow quarry citadel pavilion boathouse lantern compass telescope violin carousel""".split()
ADJECTIVES = """quiet ancient hidden northern crooked silent golden rusty distant frozen narrow painted sunken humble
wandering broken velvet hollow bright""".split()


def echo(key, fact, value, prefix=""):
    """The answer to a question about `fact`: `prefix` and the key as the question names it, then the fact's own words
    from that key up to and including the value, and a full stop ("What is the vault code of the old customs house?"
    over "... the vault code of the old customs house was 7481, ..." -> "The vault code of the old customs house was
    7481."). A model answers it by copying: the key from the question, the rest from where the key occurs in the text,
    so finding a fact is the same skill as continuing a repeated passage (induction), which a small model learns first.
    The last key occurrence that a whole-word value follows is used."""
    low, k = fact.lower(), key.lower()
    best = None
    for m in re.finditer(re.escape(k), low):
        v = re.search(r"(?<![\w-])" + re.escape(value.lower()) + r"(?![\w-])", low[m.end():])
        if v:
            best = (m.end(), m.end() + v.end())
    if best is None:
        raise ValueError(f"fact {fact!r} has no {key!r} followed by {value!r}")
    text = prefix + key + fact[best[0]:best[1]]
    return text[0].upper() + text[1:] + "."


def _split(items, heldout_every=5):
    train = [x for i, x in enumerate(items) if i % heldout_every != heldout_every - 1]
    held = [x for i, x in enumerate(items) if i % heldout_every == heldout_every - 1]
    return train, held


# (train phrasings, held-out phrasings). Every fact names its key before its value, and every question names the same
# key: the answer restates the key and copies the fact's words from there to the value (see echo()).
PASSKEY_FACT = (["The {pk} is {k}. Remember it. {k} is the {pk}.",
                 "Note: the {pk} you will need later is {k}.",
                 "Please keep this in mind: the {pk} equals {k}.",
                 "There is a {pk} hidden in this text. The {pk} is {k}.",
                 "The {pk} is {k}."],
                ["Important: remember that the {pk} is {k}. The {pk} is {k}.",
                 "Here is the {pk}: {k}."])
PASSKEY_Q = (["What is the {pk}?", "Which {pk} was mentioned in the text?", "What is the {pk} mentioned above?"],
             ["Tell me the {pk}.", "What was the {pk}?"])
PASSKEY_NAMES = ["pass key", "passkey"]
NEEDLE_FACT = (["The special magic number for the {e} is {k}.", "Remember that the {e} has the magic number {k}.",
                "The secret code of the {e} is {k}.", "For the {e}, the special magic number is {k}."],
               ["Write this down: the {e} uses the special magic number {k}.",
                "The {e} is associated with the secret number {k}."])
NEEDLE_Q = (["What is the special magic number for the {e}?", "What is the secret code of the {e}?",
             "Which magic number belongs to the {e}?"],
            ["What number is associated with the {e}?", "Give the special magic number of the {e}."])
UUID_Q = (['What is the value of key "{k}"?', 'In the JSON object, which value belongs to the key "{k}"?'],
          ['Find the value stored under "{k}".'])
# the engine's summary instruction (SessionEngine.SUMMARY_INSTRUCTION) is the first training phrasing
SUMMARY_Q = (["Summarize the text above in a few sentences.", "Summarize the key facts of the text above."],
             ["Give a short summary of the text above."])
VAR_Q = (["What is the value of {v}?", "Which number does variable {v} hold?"],
         ["What value does {v} end up with?"])
# Dialogue facts: (statement by the user, question about the user, answer kind)
# Dialogue facts: (statement by the user, question about the user, answer kind, key the two share)
DIALOGUE = (
    [("my sister lives in {city}", "Where does the user's sister live?", "city", "sister"),
     ("my dog is called {pet}", "What is the name of the user's dog?", "pet", "dog"),
     ("my job is working as a {job}", "What is the user's job?", "job", "job"),
     ("my favourite colour is {colour}", "What is the user's favourite colour?", "colour", "favourite colour"),
     ("my brother's name is {name}", "What is the name of the user's brother?", "name", "brother"),
     ("my home town is {city}", "What is the user's home town?", "city", "home town"),
     ("my best friend is {name}", "Who is the user's best friend?", "name", "best friend")],
    [("my mother lives in {city}", "Where does the user's mother live?", "city", "mother"),
     ("my cat is named {pet}", "What is the user's cat called?", "pet", "cat"),
     ("my daughter works as a {job}", "What does the user's daughter do for a living?", "job", "daughter")])
DIALOGUE_LEADS = (["By the way, {s}.", "Oh, and {s}.", "Just so you know, {s}.", "{S}.", "Something about me: {s}."],
                  ["I should mention that {s}.", "Fun fact: {s}."])
ASSISTANT_REPLIES = ["Thanks for telling me.", "Noted.", "That is good to know.", "I will remember that.",
                     "Interesting, tell me more.", "Understood."]


@dataclass
class Example:
    kind: str
    pieces: list
    qa: list = field(default_factory=list)  # (question, answer)
    fact_piece: list = field(default_factory=list)  # piece index holding each answer's fact (-1: none)
    values: list = field(default_factory=list)  # the value each answer must contain (REFUSAL for a refusal)

    def __post_init__(self):
        if not self.values:
            self.values = [a for _, a in self.qa]


def refusal(kind, pieces, question):
    return Example(kind, pieces, [(question, REFUSAL)], [-1], [REFUSAL])


class TaskGenerator:
    KINDS = ("passkey", "needle", "multikey", "uuid", "vars", "dialogue", "reading", "summary")

    def __init__(self, paragraphs, split="train", seed=0, refuse_share=0.12, pair_refusals=False):
        assert split in ("train", "heldout")
        self.refuse_share = refuse_share  # share of examples whose question has no answer in the text
        # an unanswerable question asked over a text that also gets its answerable questions (a near miss: another
        # entity, variable or fact than the text holds), so that only looking the key up tells the two apart
        self.pair_refusals = pair_refusals
        self.p = paragraphs
        self.r = random.Random(seed)
        i = 0 if split == "train" else 1
        self.i = i
        self.names = _split(FIRST_NAMES)[i]
        self.cities = _split(CITIES)[i]
        self.colours = COLOURS
        self.jobs = _split(PROFESSIONS)[i]
        self.pets = _split(PET_NAMES)[i]
        things = [f"{a} {t}" for a in ADJECTIVES for t in THINGS]
        self.things = _split(things, 4)[i]

        from .reading import ReadingFacts
        self.reading = ReadingFacts(self)

    # ----- pieces of text
    def _filler(self, words):
        out, n = [], 0
        while n < words:
            para = self.r.choice(self.p)
            out.append(para)
            n += len(para.split())
        return out

    def _number(self):
        d = self.r.randint(4, 7)
        return str(self.r.randint(10 ** (d - 1), 10 ** d - 1))

    def _new_uuid(self):
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def _var(self):
        return "".join(self.r.choice(string.ascii_uppercase) for _ in range(5))

    def _plant(self, pieces, facts, ordered=False):
        """Inserts each fact at a random depth, as its own piece or appended to a paragraph; returns the indices.
        With ordered=True the facts keep their order in the text (assignment chains)."""
        slots = sorted(self.r.randint(0, len(pieces)) for _ in facts)
        order = list(range(len(facts)))
        if not ordered:
            self.r.shuffle(order)
        out, where, fi = [], [0] * len(facts), 0
        for pos in range(len(pieces) + 1):
            while fi < len(slots) and slots[fi] == pos:
                f = order[fi]
                if out and self.r.random() < 0.4:
                    out[-1] = out[-1] + " " + facts[f]
                    where[f] = len(out) - 1
                else:
                    out.append(facts[f])
                    where[f] = len(out) - 1
                fi += 1
            if pos < len(pieces):
                out.append(pieces[pos])
        return out, where

    def _pick(self, pair):
        return self.r.choice(pair[self.i])

    # ----- skills
    def example(self, target_words=300, kind=None, refuse=None):
        kind = kind or self.r.choice(self.KINDS)
        refuse = (self.r.random() < self.refuse_share) if refuse is None else refuse
        if refuse and self.pair_refusals and kind not in ("passkey", "summary"):
            return self._paired(kind, target_words)
        return getattr(self, "_" + kind)(target_words, refuse)

    def _paired(self, kind, words):
        """The example's answerable questions and its near-miss refusal over the same text, in random order: both are
        drawn from the same random state, and every generator draws its text before it decides to refuse."""
        state = self.r.getstate()
        rx = getattr(self, "_" + kind)(words, True)
        self.r.setstate(state)
        ax = getattr(self, "_" + kind)(words, False)
        if rx.values != [REFUSAL] or rx.pieces != ax.pieces:
            return ax  # this draw had no near miss to ask about
        rows = list(zip(ax.qa, ax.fact_piece, ax.values)) + list(zip(rx.qa, rx.fact_piece, rx.values))
        self.r.shuffle(rows)
        return Example(kind, ax.pieces, [q for q, _, _ in rows], [f for _, f, _ in rows], [v for _, _, v in rows])

    def _passkey(self, words, refuse):
        k, pk = self._number(), self.r.choice(PASSKEY_NAMES)
        filler = self._filler(words)
        question = self._pick(PASSKEY_Q).format(pk=pk)
        if refuse:
            return refusal("passkey", filler, question)
        fact = self._pick(PASSKEY_FACT).format(k=k, pk=pk)
        pieces, where = self._plant(filler, [fact])
        return Example("passkey", pieces, [(question, echo(pk, fact, k, "The "))], where, [k])

    def _needles(self, words, refuse, n, kind):
        ents = self.r.sample(self.things, n + 1)
        keys = [self._number() for _ in range(n)]
        facts = [self._pick(NEEDLE_FACT).format(e=e, k=k) for e, k in zip(ents, keys)]
        pieces, where = self._plant(self._filler(words), facts)
        if refuse:
            return refusal(kind, pieces, self._pick(NEEDLE_Q).format(e=ents[n]))
        order = self.r.sample(range(n), min(n, 3))
        return Example(kind, pieces, [(self._pick(NEEDLE_Q).format(e=ents[j]), echo("the " + ents[j], facts[j], keys[j]))
                                      for j in order], [where[j] for j in order], [keys[j] for j in order])

    def _needle(self, words, refuse):
        return self._needles(words, refuse, 1, "needle")

    def _multikey(self, words, refuse):
        return self._needles(words, refuse, self.r.randint(2, 6), "multikey")

    def _uuid(self, words, refuse):
        n = self.r.randint(3, 12)
        pairs = [(self._new_uuid(), self._new_uuid()) for _ in range(n)]
        obj = "{" + ", ".join(f'"{k}": "{v}"' for k, v in pairs) + "}"
        lead = self.r.choice(["JSON data:", "Here is a JSON object:", "Key-value store:", "Lookup table (JSON):"])
        fact = f"{lead} {obj}"
        pieces, where = self._plant(self._filler(words), [fact])
        if refuse:
            return refusal("uuid", pieces, self._pick(UUID_Q).format(k=self._new_uuid()))
        asked = self.r.sample(pairs, min(n, self.r.randint(1, 3)))
        return Example("uuid", pieces, [(self._pick(UUID_Q).format(k=k), f'"{k}": "{v}".') for k, v in asked],
                       where * len(asked), [v for _, v in asked])

    def _vars(self, words, refuse):
        """Assignment chains; the answer follows the chain back to the number, one copied definition at a time
        ("VAR C = VAR B = VAR A = 1234.")."""
        hops = self.r.randint(1, 3)
        names = [self._var() for _ in range(hops + 1 + 2)]
        value = self._number()
        chain = [f"VAR {names[0]} = {value}."] + [f"VAR {names[i + 1]} = VAR {names[i]}." for i in range(hops)]
        decoy = f"VAR {names[-1]} = {self._number()}."
        pieces, where = self._plant(self._filler(words), chain + [decoy], ordered=True)
        if refuse:
            return refusal("vars", pieces, self._pick(VAR_Q).format(v=names[-2]))
        answer = " = ".join(f"VAR {names[i]}" for i in range(hops, -1, -1)) + f" = {value}."
        return Example("vars", pieces, [(self._pick(VAR_Q).format(v=names[hops]), answer)], [where[hops]], [value])

    def _summary(self, words, refuse):
        return self.reading.summary(words)

    def _reading(self, words, refuse):
        return self.reading.example(words, refuse)

    def _dialogue(self, words, refuse):
        turns = []
        n = 0
        while n < words:
            para = self.r.choice(self.p)
            sents = [s.strip() for s in para.split(". ") if len(s.split()) > 3][:2] or [para]
            u = sents[0].rstrip(".") + "."
            turns.append(f"User: {u}")
            turns.append(f"Assistant: {self.r.choice(ASSISTANT_REPLIES)}")
            n += len(u.split()) + 4
        facts_avail = DIALOGUE[self.i]
        chosen = self.r.sample(facts_avail, min(len(facts_avail), self.r.randint(1, 3)))
        vals = {"city": self.cities, "pet": self.pets, "job": self.jobs, "colour": self.colours, "name": self.names}
        planted, answers = [], []
        for stmt, q, kind, key in chosen:
            v = self.r.choice(vals[kind])
            s = stmt.format(**{kind: v})
            lead = self._pick(DIALOGUE_LEADS)
            planted.append("User: " + lead.format(s=s, S=s[0].upper() + s[1:]))
            answers.append((q, echo(key, s, v, "The user's "), v))
        # a distractor about someone else
        d_kind = self.r.choice(["city", "name"])
        other = self.r.choice(self.names)
        planted.append(f"User: {other} told me that their neighbour " +
                       ("lives in " + self.r.choice(self.cities) if d_kind == "city" else "is called " + self.r.choice(self.names)) + ".")
        pieces, where = self._plant(turns, planted)
        if refuse:
            unused = [f for f in facts_avail if f not in chosen]
            if unused:
                return refusal("dialogue", pieces, self.r.choice(unused)[1])
        order = self.r.sample(range(len(answers)), len(answers))
        return Example("dialogue", pieces, [answers[j][:2] for j in order], [where[j] for j in order],
                       [answers[j][2] for j in order])
