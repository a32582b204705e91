"""Reading-comprehension facts in narrative sentences: the extractive questions a user asks of a document ("How many
puffins did the children count?", "Who wrote in the log every evening?", "What is the vault code of the old customs
house?"). Each example plants several fact sentences of three shapes among filler paragraphs, with distractors of the
same shape (other counted things, other people doing other things, other entities' numbers, page and line numbers
between an entity and its number), and asks about some of them. Vocabularies and sentence shapes are split into a
training part and a held-out part, as in tasks.py; the Engram demo document is never used.
"""
from . import tasks

ANIMALS = """gulls puffins herons geese ducks swans owls crows sparrows pigeons goats sheep cows horses rabbits foxes
deer seals otters dolphins whales frogs turtles bees beetles butterflies moths lizards hedgehogs badgers squirrels
mice bats eagles hawks robins finches starlings cranes storks""".split()
GOODS = """apples pears plums lemons candles lamps bottles barrels baskets blankets books maps nails ropes sacks
boxes chairs tables bricks tiles planks coins stamps letters parcels jars cups plates spoons""".split()
ROLE_WORDS = """keeper guard master warden clerk porter gardener cook caretaker watchman ranger inspector""".split()
ROLE_PLACES = """lighthouse harbour museum bridge village school castle station market library mill tower forest
garden ferry mine""".split()
VERBS = """wrote in|painted|repaired|cleaned|visited|guarded|opened|locked|fed|measured|swept|watered|polished|mended
|checked|inspected|closed|rebuilt|emptied|lit|photographed|searched|sold|carried""".replace("\n", "").split("|")
OBJECTS = """the log|the harbour wall|the old gate|the north tower|the boats|the lamps|the chickens|the garden|the cellar
|the chapel|the well|the fence|the windows|the archive|the ledger|the clock|the bell|the stables|the greenhouse|the pier
|the beacon|the storeroom|the bridge|the orchard""".replace("\n", "").split("|")
TIMES = """every evening|every morning|on Sundays|before sunrise|after the storm|in the winter|twice a week|at dawn
|at midnight|every spring|on market days|during the festival|each autumn|after dinner""".replace("\n", "").split("|")
ATTRS = """vault code|door code|safe combination|locker number|room number|phone extension|account number|gate code
|ticket number|box number|serial number|alarm code|cabin number|licence number""".replace("\n", "").split("|")
PLACES = """market|valley|harbour|meadow|forest|square|island|garden|village|station|courtyard|lake""".split("|")
BOOKS = "log|ledger|notebook|register|diary|file".split("|")
ORDINALS = "first second third fourth fifth sixth seventh".split()
COUNTERS = ["the children", "the students", "the fishermen", "the scouts", "the volunteers", "the visitors",
            "the rangers", "the farmers", "the sailors", "the pupils"]

# Every fact names what a question asks about before the value (the count after the counted thing, the person after
# what they did), so the answer restates the question's key and copies the fact onwards (tasks.echo).
COUNT_FACT = (["The {x} {subj} counted numbered {n}.", "{Subj} counted the {x}: there were {n}.",
               "Of the {x}, {subj} counted {n}.", "In the {place} {subj} counted the {x} and found {n}."],
              ["When {subj} counted the {x}, there were {n}.", "{Subj} counted the {x} too, {n} in all."])
COUNT_Q = (["How many {x} did {subj} count?", "How many {x} were counted?", "How many {x} did {subj} see?"],
           ["How many {x} did {subj} find?", "What number of {x} was counted?"])
WHO_FACT = (["The one who {vp} was {who}.", "Everyone knew that the one who {vp} was {who}.",
             "The one who {vp}, even when nothing happened, was {who}."],
            ["In those years the one who {vp} was {who}.", "People said the one who {vp} had always been {who}."])
WHO_Q = (["Who {vp}?"], ["Which person {vp}?"])
CODE_FACT = (["The {attr} of the {e} is {k}.", "The {attr} of the {e} was {k}; it was written on page {m} of the {ord} {book}.",
              "She told him that the {attr} of the {e} was {k}.", "On line {m} he noted that the {attr} of the {e} is {k}."],
             ["In the {ord} {book}, on page {m}, the {attr} of the {e} was {k}.",
              "Everyone knew the {attr} of the {e}: it was {k}."])
CODE_Q = (["What is the {attr} of the {e}?", "What was the {attr} of the {e}?"],
          ["Tell me the {attr} of the {e}.", "Which {attr} does the {e} have?"])


def _cap(s):
    return s[0].upper() + s[1:]


class ReadingFacts:
    """Adds the 'reading' skill to a TaskGenerator (shares its random source, split and filler)."""

    def __init__(self, gen: "tasks.TaskGenerator"):
        self.g = gen
        i = gen.i
        sp = tasks._split
        self.animals = sp(ANIMALS + GOODS)[i]
        self.roles = sp([f"{p} {w}" for p in ROLE_PLACES for w in ROLE_WORDS], 4)[i]
        self.verbs = sp(VERBS, 4)[i]
        self.objects = sp(OBJECTS, 4)[i]
        self.attrs = sp(ATTRS, 4)[i]
        self.counters = sp(COUNTERS, 4)[i]
        self.used = set()

    def _count(self):
        r = self.g.r
        x = r.choice([a for a in self.animals if a not in self.used])
        self.used.add(x)
        n = str(r.randint(2, 999))
        subj = r.choice(self.counters + [r.choice(self.g.names)])
        fact = self.g._pick(COUNT_FACT).format(Subj=_cap(subj), subj=subj, place=r.choice(PLACES), x=x, n=n)
        q = self.g._pick(COUNT_Q).format(x=x, subj=subj)
        absent = r.choice([a for a in self.animals if a not in self.used])
        return fact, (q, tasks.echo(x, fact, n, "The "), n), (self.g._pick(COUNT_Q).format(x=absent, subj=subj), " " + absent)

    def _vp(self):
        r = self.g.r
        return f"{r.choice(self.verbs)} {r.choice(self.objects)} {r.choice(TIMES)}"

    def _who(self):
        r = self.g.r
        who = "the " + r.choice(self.roles) if r.random() < 0.6 else r.choice(self.g.names)
        vp = self._vp()
        fact = self.g._pick(WHO_FACT).format(who=who, vp=vp)
        other = self._vp()
        return (fact, (self.g._pick(WHO_Q).format(vp=vp), tasks.echo(vp, fact, who, "The one who "), who),
                (self.g._pick(WHO_Q).format(vp=other), other))

    def _code(self):
        r = self.g.r
        e = r.choice(self.g.things)
        attr = r.choice(self.attrs)
        k = self.g._number()
        fact = self.g._pick(CODE_FACT).format(attr=attr, e=e, k=k, m=r.randint(2, 600), ord=r.choice(ORDINALS),
                                              book=r.choice(BOOKS))
        other = r.choice([t for t in self.g.things if t != e])
        key = f"the {attr} of the {e}"
        return (fact, (self.g._pick(CODE_Q).format(attr=attr, e=e), tasks.echo(key, fact, k), k),
                (self.g._pick(CODE_Q).format(attr=attr, e=other), other))

    def example(self, words, refuse):
        r = self.g.r
        makers = [self._count, self._who, self._code]
        self.used = set()  # counted things already in this example: every question has one answer
        made = [r.choice(makers)() for _ in range(r.randint(2, 5))]
        # a story is mostly prose: plant the facts among filler paragraphs (same depths logic as the other skills)
        pieces, where = self.g._plant(self.g._filler(words), [m[0] for m in made])
        text = " ".join(pieces)
        if refuse and made[0][2][1] not in text:
            return tasks.refusal("reading", pieces, made[0][2][0])
        order = r.sample(range(len(made)), min(len(made), 3))
        return tasks.Example("reading", pieces, [made[j][1][:2] for j in order], [where[j] for j in order],
                             [made[j][1][2] for j in order])

    def summary(self, words):
        """The summary skill: 2-4 facts among filler paragraphs, and an answer that states them in text order, each as
        written (an extractive summary: the names, numbers and what happened, nothing the text does not say)."""
        r = self.g.r
        self.used = set()
        makers = [self._count, self._who, self._code, self._needle_fact]
        facts = [r.choice(makers)() for _ in range(r.randint(2, 4))]
        pieces, where = self.g._plant(self.g._filler(words), [f[0] for f in facts])
        order = sorted(range(len(facts)), key=lambda j: (where[j], " ".join(pieces).find(facts[j][0])))
        answer = " ".join(facts[j][0] for j in order)
        values = [facts[j][1][2] for j in order]
        return tasks.Example("summary", pieces, [(self.g._pick(tasks.SUMMARY_Q), answer)], [where[order[0]]], [values])

    def _needle_fact(self):
        e, k = self.g.r.choice(self.g.things), self.g._number()
        return self.g._pick(tasks.NEEDLE_FACT).format(e=e, k=k), (None, None, k), None

