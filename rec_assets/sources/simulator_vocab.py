"""Fixed vocabularies of the catalog simulator: genres, ratings, countries, names and synopsis word banks.

Plain data only. Order matters (indexes are used by the generator), so append, never reorder: reordering changes the
bytes every seed produces.
"""

from __future__ import annotations

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

# (ISO country code, weight as a country of origin, weight as a subscriber's country). 60 countries, US-heavy.
COUNTRIES: tuple[tuple[str, float, float], ...] = (
    ("US", 380.0, 400.0), ("GB", 70.0, 90.0), ("IN", 55.0, 70.0), ("FR", 35.0, 30.0), ("JP", 35.0, 25.0),
    ("KR", 30.0, 15.0), ("CA", 30.0, 60.0), ("DE", 28.0, 55.0), ("ES", 22.0, 25.0), ("IT", 20.0, 20.0),
    ("AU", 15.0, 35.0), ("MX", 15.0, 30.0), ("BR", 14.0, 35.0), ("CN", 12.0, 2.0), ("SE", 9.0, 8.0),
    ("DK", 8.0, 6.0), ("NO", 6.0, 5.0), ("TR", 9.0, 8.0), ("AR", 7.0, 10.0), ("IE", 6.0, 6.0),
    ("NL", 6.0, 12.0), ("BE", 5.0, 7.0), ("PL", 6.0, 12.0), ("RU", 5.0, 1.0), ("NG", 7.0, 5.0),
    ("ZA", 5.0, 6.0), ("EG", 4.0, 3.0), ("IL", 5.0, 4.0), ("TH", 5.0, 4.0), ("PH", 5.0, 7.0),
    ("ID", 5.0, 6.0), ("HK", 6.0, 3.0), ("TW", 5.0, 3.0), ("NZ", 4.0, 5.0), ("CO", 5.0, 7.0),
    ("CL", 3.0, 5.0), ("PE", 2.0, 3.0), ("AT", 3.0, 5.0), ("CH", 3.0, 5.0), ("FI", 3.0, 4.0),
    ("PT", 3.0, 5.0), ("GR", 2.5, 3.0), ("CZ", 2.5, 3.0), ("HU", 2.0, 2.5), ("RO", 2.0, 3.0),
    ("IS", 1.5, 0.5), ("MY", 2.0, 4.0), ("SG", 2.0, 3.0), ("VN", 2.0, 3.0), ("PK", 2.0, 2.0),
    ("BD", 1.5, 1.0), ("IR", 2.0, 0.5), ("MA", 1.5, 1.5), ("KE", 1.5, 2.0), ("GH", 1.0, 1.0),
    ("SA", 1.5, 3.0), ("AE", 1.5, 3.0), ("UA", 2.0, 2.0), ("LB", 1.0, 0.5), ("UY", 1.0, 1.0),
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
# settings, goals (verb phrases after "to").
WordBank = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
WORD_BANKS: tuple[tuple[WordBank, WordBank], ...] = (
    (
        (("haunted", "cursed", "sinister", "eerie", "spectral", "blood-soaked", "shadowy", "forsaken"),
         ("ghost hunter", "exorcist", "witch", "gravedigger", "medium", "vampire", "cult leader", "night watchman"),
         ("abandoned asylum", "fog-bound village", "crumbling manor", "forgotten cemetery", "candlelit chapel",
          "cellar beneath the church", "silent forest", "derelict lighthouse"),
         ("banish an ancient evil", "survive until dawn", "break a centuries-old curse",
          "uncover what lurks in the dark", "escape the presence that follows them",
          "silence the voices in the walls")),
        (("sunny", "cheerful", "heartwarming", "sweet", "gentle", "cozy", "golden", "tender"),
         ("baker", "florist", "kindergarten teacher", "retired postman", "dog walker", "wedding planner",
          "grandmother", "piano teacher"),
         ("seaside bakery", "sleepy market town", "flower shop", "summer camp", "lakeside cottage", "vineyard",
          "corner cafe", "village fair"),
         ("save the family bakery", "find love again", "win the town's baking contest", "reunite an old band",
          "bring a community together", "open the cafe of their dreams")),
    ),
    (
        (("synthetic", "orbital", "quantum", "cybernetic", "autonomous", "neon-lit", "encrypted", "interstellar"),
         ("android", "hacker", "starship pilot", "AI researcher", "colonist", "engineer", "drone operator",
          "cyborg"),
         ("orbital station", "megacity", "Martian colony", "server farm", "research lab", "generation ship",
          "virtual world", "lunar base"),
         ("stop a rogue algorithm", "reach a distant star system", "expose a corporate conspiracy",
          "upload a human mind", "restore the failing reactor", "decode a signal from deep space")),
        (("medieval", "imperial", "Victorian", "ancient", "royal", "feudal", "wartime", "colonial"),
         ("knight", "queen", "samurai", "scribe", "general", "blacksmith", "courtesan", "pharaoh"),
         ("royal court", "castle keep", "Roman province", "monastery", "imperial palace", "Viking longhouse",
          "Tudor household", "desert kingdom"),
         ("claim the throne", "defend the kingdom", "avenge a fallen king", "forge an unlikely alliance",
          "survive the siege", "restore a broken dynasty")),
    ),
    (
        (("corrupt", "ruthless", "undercover", "gritty", "crooked", "relentless", "hardboiled", "desperate"),
         ("detective", "hitman", "mob boss", "public defender", "getaway driver", "informant", "forensic analyst",
          "con artist"),
         ("rain-slicked city", "police precinct", "casino", "waterfront", "penthouse", "back alley",
          "federal courthouse", "border town"),
         ("pull off one last heist", "bring down a cartel", "solve a string of murders", "clear their name",
          "expose a dirty cop", "pay off a dangerous debt")),
        (("untamed", "remote", "frozen", "tropical", "windswept", "wild", "uncharted", "rugged"),
         ("explorer", "park ranger", "mountaineer", "marine biologist", "sailor", "tracker",
          "wildlife photographer", "bush pilot"),
         ("Arctic tundra", "rainforest", "mountain pass", "coral reef", "desert canyon", "volcanic island",
          "open ocean", "savanna"),
         ("reach the summit", "find a lost expedition", "protect an endangered herd",
          "cross the ice before winter", "survive a shipwreck", "map an uncharted river")),
    ),
    (
        (("hapless", "bumbling", "outrageous", "chaotic", "ridiculous", "awkward", "eccentric", "accidental"),
         ("slacker", "substitute teacher", "failed magician", "intern", "best man", "roommate", "stand-up comic",
          "reluctant groom"),
         ("open-plan office", "wedding gone wrong", "road trip", "high school reunion", "cruise ship",
          "suburban cul-de-sac", "talent show", "family holiday"),
         ("survive the worst week ever", "fake a fancy lifestyle", "win back an ex", "plan a disastrous party",
          "keep a ridiculous secret", "pass a driving test at forty")),
        (("grieving", "estranged", "troubled", "quiet", "fragile", "broken", "bittersweet", "weary"),
         ("widow", "single father", "nurse", "veteran", "refugee", "recovering addict", "estranged sister",
          "immigrant"),
         ("hospital ward", "small farm", "mill town", "courtroom", "hospice", "factory floor",
          "immigrant neighbourhood", "family home"),
         ("rebuild a shattered family", "face a terminal diagnosis", "reconcile with an estranged parent",
          "keep the farm", "start over", "confront the past")),
    ),
    (
        (("passionate", "forbidden", "star-crossed", "romantic", "secret", "whirlwind", "longing", "unlikely"),
         ("heiress", "musician", "bride", "fashion designer", "prince", "ballerina", "poet", "matchmaker"),
         ("Parisian apartment", "Italian villa", "ballroom", "tropical resort", "loft", "Venetian palazzo",
          "summer wedding", "seaside hotel"),
         ("choose between two lovers", "hide a forbidden romance", "win the heart of a rival",
          "marry for love", "rekindle a summer romance", "find the one")),
        (("explosive", "tactical", "elite", "deadly", "armored", "covert", "battle-hardened", "lethal"),
         ("soldier", "special forces captain", "mercenary", "sniper", "bodyguard", "fighter pilot",
          "bomb disposal expert", "commando"),
         ("war zone", "enemy territory", "military base", "embassy", "aircraft carrier", "jungle outpost",
          "hijacked train", "besieged city"),
         ("rescue the hostages", "stop a nuclear strike", "hold the line", "extract a defector",
          "lead a suicide mission", "hunt a terrorist cell")),
    ),
    (
        (("magical", "enchanted", "brave", "curious", "tiny", "talking", "mischievous", "legendary"),
         ("young wizard", "dragon", "princess", "orphan", "talking fox", "robot pal", "mermaid", "troll"),
         ("enchanted forest", "floating kingdom", "wizard school", "toy workshop", "underwater city",
          "cloud castle", "hidden valley", "magic library"),
         ("save the enchanted kingdom", "find their way home", "learn the secret of magic",
          "befriend a lonely dragon", "rescue a kidnapped friend", "win the great race")),
        (("true", "real-life", "investigative", "untold", "remarkable", "landmark", "behind-the-scenes",
          "definitive"),
         ("journalist", "scientist", "athlete", "chef", "activist", "whistleblower", "entrepreneur",
          "legendary musician"),
         ("newsroom", "laboratory", "Olympic stadium", "restaurant kitchen", "recording studio", "tech campus",
          "archive", "front line"),
         ("uncover the truth behind a scandal", "chronicle a historic season", "attempt a world record",
          "reveal how a famous empire was built", "investigate a decades-old cold case",
          "document a changing planet")),
    ),
)

GENERIC_ADJECTIVES: tuple[str, ...] = ("young", "determined", "reluctant", "ambitious", "lonely", "stubborn")
