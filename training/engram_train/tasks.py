"""Generated question-answering examples: facts planted in filler text, then questions whose answer is copied from them.

Every skill has several phrasings of the planted fact and of the question, and entity lists; a fixed share of both
is held out of training (split="heldout") so the evaluation measures the skill, not one memorised template. An
example is a list of content pieces (one Kafka content event each, joined by blank lines exactly as the engine's
PromptFormat.PLAIN joins them) and question/answer pairs asked after them.
"""
import random
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


def _split(items, heldout_every=5):
    train = [x for i, x in enumerate(items) if i % heldout_every != heldout_every - 1]
    held = [x for i, x in enumerate(items) if i % heldout_every == heldout_every - 1]
    return train, held


# (train phrasings, held-out phrasings)
PASSKEY_FACT = (["The pass key is {k}. Remember it. {k} is the pass key.",
                 "Note: the passkey you will need later is {k}.",
                 "Please keep this in mind: the pass key equals {k}.",
                 "There is a pass key hidden in this text. The pass key is {k}.",
                 "The passkey is {k}."],
                ["Important: remember that the pass key is {k}. The pass key is {k}.",
                 "Here is the passkey: {k}."])
PASSKEY_Q = (["What is the pass key?", "What is the passkey?", "Which pass key was mentioned in the text?",
              "What is the pass key mentioned above?"],
             ["Tell me the pass key.", "What was the passkey?"])
NEEDLE_FACT = (["The special magic number for the {e} is {k}.", "One of the special magic numbers is {k}; it belongs to the {e}.",
                "Remember that the {e} has the magic number {k}.", "The secret code of the {e} is {k}."],
               ["For the {e}, the special magic number is {k}.", "The {e} is associated with the secret number {k}."])
NEEDLE_Q = (["What is the special magic number for the {e}?", "What is the secret code of the {e}?",
             "Which magic number belongs to the {e}?"],
            ["What number is associated with the {e}?", "Give the special magic number of the {e}."])
UUID_Q = (['What is the value of key "{k}"?', 'In the JSON object, which value belongs to the key "{k}"?'],
          ['Find the value stored under "{k}".'])
VAR_Q = (["What is the value of {v}?", "Which number does variable {v} hold?"],
         ["What value does {v} end up with?"])
# Dialogue facts: (statement by the user, question about the user, answer kind)
DIALOGUE = (
    [("my sister lives in {city}", "Where does the user's sister live?", "city"),
     ("my dog is called {pet}", "What is the name of the user's dog?", "pet"),
     ("I work as a {job}", "What is the user's job?", "job"),
     ("my favourite colour is {colour}", "What is the user's favourite colour?", "colour"),
     ("my brother's name is {name}", "What is the name of the user's brother?", "name"),
     ("I grew up in {city}", "Where did the user grow up?", "city"),
     ("my best friend is {name}", "Who is the user's best friend?", "name")],
    [("my mother lives in {city}", "Where does the user's mother live?", "city"),
     ("my cat is named {pet}", "What is the user's cat called?", "pet"),
     ("my daughter works as a {job}", "What does the user's daughter do for a living?", "job")])
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


class TaskGenerator:
    KINDS = ("passkey", "needle", "multikey", "uuid", "vars", "dialogue", "reading")

    def __init__(self, paragraphs, split="train", seed=0):
        assert split in ("train", "heldout")
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
        refuse = (self.r.random() < 0.12) if refuse is None else refuse
        return getattr(self, "_" + kind)(target_words, refuse)

    def _passkey(self, words, refuse):
        k = self._number()
        filler = self._filler(words)
        if refuse:
            return Example("passkey", filler, [(self._pick(PASSKEY_Q), REFUSAL)], [-1])
        pieces, where = self._plant(filler, [self._pick(PASSKEY_FACT).format(k=k)])
        return Example("passkey", pieces, [(self._pick(PASSKEY_Q), k)], where)

    def _needles(self, words, refuse, n, kind):
        ents = self.r.sample(self.things, n + 1)
        keys = [self._number() for _ in range(n)]
        facts = [self._pick(NEEDLE_FACT).format(e=e, k=k) for e, k in zip(ents, keys)]
        pieces, where = self._plant(self._filler(words), facts)
        if refuse:
            return Example(kind, pieces, [(self._pick(NEEDLE_Q).format(e=ents[n]), REFUSAL)], [-1])
        order = self.r.sample(range(n), min(n, 3))
        return Example(kind, pieces, [(self._pick(NEEDLE_Q).format(e=ents[j]), keys[j]) for j in order],
                       [where[j] for j in order])

    def _needle(self, words, refuse):
        return self._needles(words, refuse, 1, "needle")

    def _multikey(self, words, refuse):
        return self._needles(words, refuse, self.r.randint(2, 6), "multikey")

    def _uuid(self, words, refuse):
        n = self.r.randint(3, 12)
        pairs = [(self._new_uuid(), self._new_uuid()) for _ in range(n)]
        obj = "{" + ", ".join(f'"{k}": "{v}"' for k, v in pairs) + "}"
        lead = self.r.choice(["JSON data:", "Here is a JSON object:", "Key-value store:", "Lookup table (JSON):"])
        pieces, where = self._plant(self._filler(words), [f"{lead} {obj}"])
        if refuse:
            return Example("uuid", pieces, [(self._pick(UUID_Q).format(k=self._new_uuid()), REFUSAL)], [-1])
        asked = self.r.sample(pairs, min(n, self.r.randint(1, 3)))
        return Example("uuid", pieces, [(self._pick(UUID_Q).format(k=k), v) for k, v in asked], where * len(asked))

    def _vars(self, words, refuse):
        hops = self.r.randint(1, 3)
        names = [self._var() for _ in range(hops + 1 + 2)]
        value = self._number()
        chain = [f"VAR {names[0]} = {value}."] + [f"VAR {names[i + 1]} = VAR {names[i]}." for i in range(hops)]
        decoy = f"VAR {names[-1]} = {self._number()}."
        pieces, where = self._plant(self._filler(words), chain + [decoy], ordered=True)
        if refuse:
            return Example("vars", pieces, [(self._pick(VAR_Q).format(v=names[-2]), REFUSAL)], [-1])
        return Example("vars", pieces, [(self._pick(VAR_Q).format(v=names[hops]), value)], [where[hops]])

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
        for stmt, q, kind in chosen:
            v = self.r.choice(vals[kind])
            s = stmt.format(**{kind: v})
            lead = self._pick(DIALOGUE_LEADS)
            planted.append("User: " + lead.format(s=s, S=s[0].upper() + s[1:]))
            answers.append((q, v))
        # a distractor about someone else
        d_kind = self.r.choice(["city", "name"])
        other = self.r.choice(self.names)
        planted.append(f"User: {other} told me that their neighbour " +
                       ("lives in " + self.r.choice(self.cities) if d_kind == "city" else "is called " + self.r.choice(self.names)) + ".")
        pieces, where = self._plant(turns, planted)
        if refuse:
            unused = [f for f in facts_avail if f not in chosen]
            if unused:
                return Example("dialogue", pieces, [(self.r.choice(unused)[1], REFUSAL)], [-1])
        order = self.r.sample(range(len(answers)), len(answers))
        return Example("dialogue", pieces, [answers[j] for j in order], [where[j] for j in order])
