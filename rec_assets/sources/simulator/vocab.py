"""Fixed vocabularies of the catalog simulator: genres, ratings, countries, names and synopsis word banks.

Plain data only; the countries and the synopsis word banks are read from ``countries.csv`` and ``word_banks.json``.
Order matters (indexes are used by the generator), so append, never reorder: reordering changes the bytes every seed
produces.
"""

from __future__ import annotations

import json
from importlib import resources

def _data_text(name: str) -> str:
    """A data file of this package (the larger tables live in files, not in code)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


# (genre, weight among movies, weight among TV series, subgenres). 27 top-level genres, 140 subgenres.
GENRES: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("Action", 9.0, 4.0, ("Martial Arts", "Heist Action", "Spy Action", "Disaster", "Superhero", "Car Chase")),
    ("Adventure", 5.0, 3.0, ("Treasure Hunt", "Survival", "Swashbuckler", "Jungle Adventure", "Quest")),
    ("Animation", 4.0, 5.0, ("Stop Motion", "Adult Animation", "CGI Animation", "Hand-Drawn Animation")),
    ("Anime", 2.0, 5.0, ("Shonen", "Shojo", "Mecha", "Isekai", "Slice of Life Anime", "Seinen")),
    ("Arts & Culture", 1.0, 1.5, ("Art History", "Dance", "Theatre", "Architecture", "Design")),
    ("Biography", 2.5, 1.0, ("Political Biography", "Sports Biography", "Music Biography", "Historical Figures")),
    ("Comedy", 10.0, 10.0, ("Romantic Comedy", "Dark Comedy", "Slapstick", "Parody", "Sketch Comedy",
                            "Workplace Comedy", "Teen Comedy")),
    ("Crime", 6.0, 6.0, ("Gangster", "Police Procedural", "True Crime Drama", "Heist", "Legal Drama", "Noir")),
    ("Documentary", 5.0, 6.0, ("Nature Documentary", "Science Documentary", "Music Documentary",
                               "Social Issues", "Investigative Documentary", "Travel Documentary")),
    ("Drama", 12.0, 9.0, ("Family Drama", "Period Drama", "Medical Drama", "Coming of Age", "Political Drama",
                          "Melodrama", "Sports Drama")),
    ("Family", 3.0, 3.0, ("Family Adventure", "Animal Tales", "Holiday Family", "Family Comedy")),
    ("Fantasy", 4.0, 3.5, ("Epic Fantasy", "Urban Fantasy", "Fairy Tale", "Sword and Sorcery", "Dark Fantasy")),
    ("History", 2.0, 2.5, ("Ancient World", "Medieval", "World War II", "Cold War", "Colonial Era")),
    ("Horror", 6.0, 2.5, ("Slasher", "Supernatural Horror", "Psychological Horror", "Creature Feature",
                          "Found Footage", "Folk Horror")),
    ("Kids", 3.0, 5.0, ("Preschool", "Educational", "Kids Adventure", "Kids Comedy", "Puppetry")),
    ("Music", 1.5, 1.5, ("Concert Film", "Musical Drama", "Hip-Hop", "Classical Music", "Jazz")),
    ("Mystery", 3.5, 3.5, ("Whodunit", "Cozy Mystery", "Detective Mystery", "Conspiracy", "Amateur Sleuth")),
    ("Reality", 0.3, 6.0, ("Competition Reality", "Dating Reality", "Cooking Competition", "Makeover",
                           "Docusoap")),
    ("Romance", 6.0, 4.0, ("Period Romance", "Romantic Drama", "Teen Romance", "Holiday Romance",
                           "Second-Chance Romance")),
    ("Science Fiction", 5.0, 4.0, ("Space Opera", "Cyberpunk", "Time Travel", "Dystopian", "Alien Invasion",
                                   "Post-Apocalyptic")),
    ("Special Interest", 1.0, 2.0, ("Fitness", "Faith and Spirituality", "Hobbies", "Self-Improvement")),
    ("Sports", 2.0, 2.5, ("Football", "Basketball", "Motorsport", "Boxing", "Extreme Sports")),
    ("Suspense", 3.0, 2.5, ("Psychological Suspense", "Survival Suspense", "Domestic Suspense",
                            "Techno-Suspense")),
    ("Thriller", 7.0, 5.0, ("Political Thriller", "Erotic Thriller", "Legal Thriller", "Action Thriller",
                            "Spy Thriller", "Serial Killer")),
    ("War", 2.0, 1.5, ("War Epic", "Resistance", "Military Drama", "Anti-War")),
    ("Western", 1.5, 1.0, ("Classic Western", "Revisionist Western", "Space Western", "Spaghetti Western")),
    ("Young Adult", 2.0, 3.0, ("Teen Drama", "Teen Fantasy", "High School", "Campus Life")),
)

# 17 maturity ratings: US film, US TV, and the age-based ladder used for international titles.
MOVIE_RATINGS: tuple[str, ...] = ("G", "PG", "PG-13", "R", "NC-17")
TV_RATINGS: tuple[str, ...] = ("TV-Y", "TV-Y7", "TV-G", "TV-PG", "TV-14", "TV-MA")
INTERNATIONAL_RATINGS: tuple[str, ...] = ("ALL", "7+", "13+", "16+", "18+", "NR")
MATURITY_RATINGS: tuple[str, ...] = MOVIE_RATINGS + TV_RATINGS + INTERNATIONAL_RATINGS

# (ISO country code, weight as a country of origin, weight as a subscriber's country). 60 countries, US-heavy; the
# table is ``countries.csv``.
COUNTRIES: tuple[tuple[str, float, float], ...] = tuple(
    (code, float(origin), float(subscriber))
    for code, origin, subscriber in (line.split(",") for line in _data_text("countries.csv").splitlines()[1:])
)

AGE_BANDS: tuple[tuple[str, float], ...] = (
    ("18-24", 14.0), ("25-34", 26.0), ("35-44", 23.0), ("45-54", 17.0), ("55-64", 12.0), ("65+", 8.0),
)
# (plan, share of subscribers, activity multiplier): premium subscribers watch more.
PLANS: tuple[tuple[str, float, float], ...] = (
    ("basic_with_ads", 35.0, 0.8), ("standard", 45.0, 1.0), ("premium", 20.0, 1.35),
)
DEVICES: tuple[tuple[str, float], ...] = (("tv", 48.0), ("mobile", 27.0), ("web", 15.0), ("tablet", 10.0))

FIRST_NAMES: tuple[str, ...] = (
    "Aaliyah", "Adam", "Adriana", "Ahmed", "Aiko", "Alan", "Alejandro", "Alice", "Amara", "Amir", "Ana", "Andre",
    "Anika", "Anna", "Arjun", "Ava", "Ben", "Bianca", "Bruno", "Camila", "Carlos", "Catherine", "Chen", "Chloe",
    "Chris", "Daniel", "Daria", "David", "Deepika", "Diego", "Dmitri", "Elena", "Elijah", "Emily", "Emma", "Farah",
    "Felix", "Fatima", "Gabriel", "Grace", "Hana", "Hannah", "Hiroshi", "Ian", "Ingrid", "Isabel", "Ivan", "Jack",
    "James", "Jamal", "Jin", "Joao", "Jonas", "Julia", "Kai", "Karan", "Kate", "Kenji", "Kwame", "Laila", "Lars",
    "Laura", "Leila", "Leo", "Lucas", "Lucia", "Luis", "Maya", "Marco", "Maria", "Mateo", "Mei", "Michael", "Mina",
    "Mohammed", "Nadia", "Naomi", "Nathan", "Nia", "Nikolai", "Noah", "Nora", "Olivia", "Omar", "Oscar", "Paolo",
    "Priya", "Rafael", "Rahul", "Rania", "Rosa", "Ryan", "Sakura", "Samuel", "Sara", "Sean", "Sofia", "Sung-min",
    "Tariq", "Thomas", "Tomas", "Valentina", "Victor", "Wei", "Yara", "Yusuf", "Zara", "Zoe",
)
LAST_NAMES: tuple[str, ...] = (
    "Abara", "Adeyemi", "Ahmed", "Alvarez", "Andersen", "Bailey", "Banerjee", "Becker", "Bennett", "Bianchi",
    "Brooks", "Campbell", "Castillo", "Chen", "Clarke", "Costa", "Cruz", "Das", "Davies", "Diaz", "Dubois",
    "Duarte", "Edwards", "Eriksson", "Evans", "Fernandez", "Fischer", "Fontaine", "Garcia", "Gomez", "Gupta",
    "Haddad", "Hansen", "Harris", "Hayashi", "Hughes", "Ibrahim", "Ito", "Jansen", "Johnson", "Kapoor", "Kato",
    "Kaur", "Kim", "Kowalski", "Kumar", "Larsen", "Laurent", "Lee", "Lopez", "Martin", "Meyer", "Mendes",
    "Moreau", "Morales", "Murphy", "Nakamura", "Nguyen", "Novak", "Okafor", "Oliveira", "Ortiz", "Park",
    "Patel", "Perez", "Petrov", "Popescu", "Quinn", "Ramirez", "Reddy", "Reyes", "Ricci", "Rossi", "Russo",
    "Sato", "Schmidt", "Sharma", "Silva", "Singh", "Sokolov", "Suzuki", "Tanaka", "Taylor", "Thompson", "Torres",
    "Tran", "Turner", "Vargas", "Volkov", "Walker", "Wang", "Watanabe", "Weber", "Williams", "Wilson", "Wong",
    "Yamamoto", "Yilmaz", "Young", "Zhang",
)
MIDDLE_INITIALS: tuple[str, ...] = tuple("ABCDEFGHJKLMNPRSTW")

# Synopsis word banks, one pair (positive pole, negative pole) per synopsis latent dimension. A title whose synopsis
# latent is strongly positive in dimension k draws many words from BANKS[k][0]. Each bank: adjectives, characters,
# settings, goals (verb phrases after "to"). The words are data, in ``word_banks.json`` (same order rule).
WORD_BANK_PARTS: tuple[str, ...] = ("adjectives", "characters", "settings", "goals")
WordBank = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def _load_word_banks() -> tuple[tuple[WordBank, WordBank], ...]:
    dimensions = json.loads(_data_text("word_banks.json"))
    return tuple(
        tuple(tuple(tuple(dimension[pole][part]) for part in WORD_BANK_PARTS) for pole in ("positive", "negative"))
        for dimension in dimensions
    )


WORD_BANKS: tuple[tuple[WordBank, WordBank], ...] = _load_word_banks()

GENERIC_ADJECTIVES: tuple[str, ...] = ("young", "determined", "reluctant", "ambitious", "lonely", "stubborn")
