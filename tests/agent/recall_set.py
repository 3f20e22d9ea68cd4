"""A harder labelled memory-retrieval set: one user's facts (English and Portuguese) and paraphrased
questions that each need exactly one of them."""

import re

# All facts belong to ONE user and are searched together. They are grouped by topic, and most topics hold
# near-miss distractors: facts on the same subject that do not answer a given question (the user's
# allergy next to the brother's, where they were born next to where they grew up, the user's football
# club next to the husband's). NEAR_MISSES lists these (answer fact, distractor fact) pairs. About 70% of
# the set is English and the rest European Portuguese; some questions are in a different language from
# their fact. Each entry is (language code, fact); the trailing comment is the fact's index.
_TAGGED_FACTS: list[tuple[str, str]] = [
    # family
    ("en", "My daughter Inês was born in 2017"),  # 0
    ("en", "My son Tomás was born in 2021"),  # 1
    ("pt", "O meu marido Rui dá aulas de História numa escola secundária"),  # 2
    ("en", "My sister Carla moved to Berlin with her wife in 2019"),  # 3
    ("en", "My brother Miguel runs a bakery in Porto"),  # 4
    ("en", "My brother is allergic to shellfish"),  # 5
    ("pt", "A minha mãe faz anos a 12 de outubro"),  # 6
    ("en", "My father is retired and spends most mornings fishing off the pier in Nazaré"),  # 7
    ("pt", "A minha avó tem 94 anos e vive num lar em Coimbra"),  # 8
    ("pt", "Os meus sogros vivem em Viseu e passamos lá o Natal"),  # 9
    ("en", "I'm godmother to Leo, my best friend's son"),  # 10
    ("en", "My best friend Joana is a dentist in Setúbal"),  # 11
    ("en", "My daughter's best friend at school is called Matilde"),  # 12
    ("en", "My daughter wants to be a vet when she grows up"),  # 13
    ("en", "My son is scared of the dark and sleeps with a nightlight"),  # 14
    ("en", "Our wedding anniversary is on the 9th of September"),  # 15
    ("pt", "Passámos a lua de mel em Cabo Verde"),  # 16
    # pets
    ("en", "Our cat Miso is a grey rescue who hides from the vacuum cleaner"),  # 17
    ("en", "Miso gets her vaccines at the vet every November"),  # 18
    ("pt", "A Miso só come comida húmida sem cereais"),  # 19
    ("en", "My son keeps two goldfish in his bedroom"),  # 20
    ("pt", "O nosso cão Bolota morreu no inverno passado, com 14 anos"),  # 21
    ("en", "My sister's dog is a poodle called Rex"),  # 22
    # work
    ("en", "I work as a civil engineer designing bridges"),  # 23
    ("en", "I'm employed by a small consultancy called Arcos Engenharia"),  # 24
    ("en", "Before engineering I waited tables at a restaurant in Camden"),  # 25
    ("en", "I lived in London for two years in my mid-twenties"),  # 26
    ("en", "I'm currently designing a footbridge over the railway in Coimbra"),  # 27
    ("en", "My manager Helena is very strict about deadlines"),  # 28
    ("en", "My closest colleague, Duarte, loves terrible puns"),  # 29
    ("pt", "Trabalho a partir de casa às sextas-feiras"),  # 30
    ("pt", "Tenho reunião de equipa todas as segundas às nove"),  # 31
    ("pt", "Estou a estudar para o exame da Ordem dos Engenheiros, que é em junho"),  # 32
    ("en", "I take the ferry across the Tagus to get to the office"),  # 33
    ("en", "I ride an electric bike to the ferry terminal"),  # 34
    ("en", "I listen to true-crime podcasts on the ferry"),  # 35
    ("en", "I studied civil engineering at the University of Porto"),  # 36
    ("pt", "O meu marido estudou em Coimbra"),  # 37
    # money
    ("en", "I take home about 3,200 euros a month"),  # 38
    ("en", "Our rent is 1,450 euros a month"),  # 39
    ("pt", "Estamos a poupar para comprar uma casa no Alentejo"),  # 40
    ("en", "I keep an emergency fund equal to six months of expenses"),  # 41
    ("en", "I always clear my credit card in full at the end of the month"),  # 42
    ("en", "I put ten percent of my salary into a private pension plan"),  # 43
    ("pt", "Gastamos cerca de 600 euros por mês no supermercado"),  # 44
    ("en", "Our car insurance renews every February"),  # 45
    # health
    ("en", "I carry an EpiPen because of a severe peanut allergy"),  # 46
    ("pt", "Sou intolerante à lactose"),  # 47
    ("en", "I take levothyroxine every morning for an underactive thyroid"),  # 48
    ("pt", "Tomo vitamina D durante o inverno"),  # 49
    ("en", "I have a bad lower back from an old cycling accident"),  # 50
    ("en", "My left knee hurts when I run downhill"),  # 51
    ("en", "I had my appendix removed when I was twelve"),  # 52
    ("pt", "A minha médica de família é a Dra. Sofia Lopes"),  # 53
    ("en", "I see the dentist twice a year, in January and July"),  # 54
    ("en", "I'm short-sighted and wear contact lenses"),  # 55
    ("en", "My blood type is O negative"),  # 56
    ("pt", "Tenho enxaquecas quando durmo pouco"),  # 57
    ("en", "My husband has type 1 diabetes"),  # 58
    ("en", "I'm terrified of spiders"),  # 59
    # sleep
    ("en", "I usually go to bed at eleven and get up at half past six"),  # 60
    ("en", "My husband snores, so I sleep with earplugs"),  # 61
    ("en", "I'm a morning person and do my best thinking before nine"),  # 62
    ("pt", "Os miúdos deitam-se às oito e meia"),  # 63
    ("pt", "De manhã levo eu os miúdos à escola; à tarde vai buscá-los o meu marido"),  # 64
    # food and drink
    ("en", "I gave up meat five years ago but still eat fish"),  # 65
    ("pt", "O meu marido adora carne e faz churrasco aos domingos"),  # 66
    ("en", "My favourite dish is bacalhau à Brás"),  # 67
    ("en", "I can't stand coriander, it tastes like soap to me"),  # 68
    ("en", "I love very spicy food, the hotter the better"),  # 69
    ("en", "I drink two espressos a day and none after 4 pm"),  # 70
    ("pt", "O meu marido só bebe chá verde"),  # 71
    ("en", "I bake sourdough bread every weekend"),  # 72
    ("pt", "O nosso restaurante preferido é uma tasca em Alfama"),  # 73
    ("en", "I prefer white wine, especially Alvarinho"),  # 74
    ("en", "My daughter refuses to eat anything green"),  # 75
    ("pt", "O meu filho come tudo, até sardinhas"),  # 76
    ("pt", "Ao pequeno-almoço como sempre papas de aveia"),  # 77
    # places and travel
    ("en", "I was born in Braga"),  # 78
    ("en", "I grew up in Porto"),  # 79
    ("en", "We live in Lisbon, in Campo de Ourique"),  # 80
    ("pt", "Antes de virmos para Lisboa, morámos na Foz, no Porto"),  # 81
    ("en", "Next April we are going to Japan for two weeks"),  # 82
    ("en", "Last summer we rented a house in the Azores"),  # 83
    ("pt", "O meu passaporte caduca em março de 2026"),  # 84
    ("en", "I get panic attacks on planes, so I take trains whenever I can"),  # 85
    ("en", "I have always wanted to see the northern lights"),  # 86
    ("en", "On long journeys I always book an aisle seat"),  # 87
    ("pt", "Já visitei 23 países"),  # 88
    # hobbies
    ("en", "I play bass guitar in an amateur band called Os Parafusos"),  # 89
    ("pt", "A minha filha tem aulas de piano às quartas"),  # 90
    ("en", "I run 10 km along the river three times a week"),  # 91
    ("en", "I'm training for the Lisbon half marathon in March"),  # 92
    ("en", "I do Pilates on Tuesday and Thursday evenings"),  # 93
    ("en", "I'm in a book club that meets on the first Thursday of each month"),  # 94
    ("en", "Right now I'm reading Saramago's Blindness"),  # 95
    ("en", "On the balcony I grow basil, mint and chillies"),  # 96
    ("pt", "Aprendi a fazer surf na Ericeira há dois anos"),  # 97
    ("en", "I shoot film with my grandfather's old Pentax"),  # 98
    ("en", "I'm learning Japanese on an app before our trip"),  # 99
    ("en", "I speak Portuguese, English and some French"),  # 100
    ("en", "My husband and I play Catan with friends every other Friday"),  # 101
    ("pt", "Sou do FC Porto desde pequena"),  # 102
    ("pt", "O meu marido é adepto do Sporting"),  # 103
    ("pt", "Faço croché para relaxar à noite"),  # 104
    ("pt", "O meu filho joga futebol aos sábados de manhã"),  # 105
    ("en", "I volunteer at a food bank one Saturday a month"),  # 106
    ("en", "I have a small swallow tattooed on my wrist"),  # 107
    ("en", "I'm left-handed"),  # 108
    # home life
    ("en", "Our flat is on the fourth floor and the building has no lift"),  # 109
    ("pt", "A casa é muito fria no inverno e usamos um aquecedor a óleo"),  # 110
    ("en", "Our downstairs neighbour, Dona Lurdes, waters the plants when we travel"),  # 111
    ("pt", "Uma senhora vem limpar a casa às terças"),  # 112
    ("en", "I drive a silver 2012 Toyota Yaris"),  # 113
    ("en", "We rent a garage space two streets away"),  # 114
    ("pt", "Só tirei a carta de condução aos 30 anos"),  # 115
    # preferences
    ("en", "My favourite colour is mustard yellow"),  # 116
    ("en", "My birthday is on the 28th of June"),  # 117
    ("en", "I listen to a lot of fado, especially Carminho"),  # 118
    ("en", "Horror films give me nightmares, so I avoid them"),  # 119
    ("pt", "Prefiro respostas curtas e diretas"),  # 120
    ("en", "I hate talking on the phone and prefer texts"),  # 121
    ("en", "I think in Celsius and use the 24-hour clock"),  # 122
    ("pt", "As minhas flores preferidas são peónias"),  # 123
    ("en", "I'd rather get experiences than things as presents"),  # 124
    ("pt", "Leio o Público todas as manhãs"),  # 125
]

FACTS: list[str] = [fact for _, fact in _TAGGED_FACTS]
FACT_LANGUAGES: list[str] = [language for language, _ in _TAGGED_FACTS]

# (question, index of the one fact that answers it, question language code). Questions avoid the fact's
# content words: they paraphrase, use synonyms or ask indirectly.
QUESTIONS: list[tuple[str, int, str]] = [
    # family
    ("In what year did my little girl come into the world?", 0, "en"),
    ("Em que ano nasceu o meu filho?", 1, "pt"),
    ("What subject does my spouse teach?", 2, "en"),
    ("Em que cidade vive a minha irmã?", 3, "pt"),
    ("Which of my siblings makes bread for a living?", 4, "en"),
    ("Which relative of mine has to steer clear of prawns?", 5, "en"),
    ("Quando devo ligar à mãe para lhe dar os parabéns?", 6, "pt"),
    ("What does my dad do with his free time since he stopped working?", 7, "en"),
    ("Em que cidade fica a casa de repouso da avó?", 8, "pt"),
    ("Where do we spend the Christmas holidays?", 9, "en"),
    ("What's my godchild called?", 10, "en"),
    ("What does my closest friend do for work?", 11, "en"),
    ("Como se chama a melhor amiga da minha filha?", 12, "pt"),
    ("What career does my girl dream of?", 13, "en"),
    ("Why is there a lamp on all night in my boy's room?", 14, "en"),
    ("On what date do we celebrate getting married?", 15, "en"),
    ("Where did we go straight after our wedding?", 16, "en"),
    # pets
    ("What's the name of our feline?", 17, "en"),
    ("When is the kitty due for her jabs?", 18, "en"),
    ("What should I buy for the cat's dinner?", 19, "en"),
    ("Que animais tem o meu filho no quarto?", 20, "pt"),
    ("Como se chamava o animal de estimação que perdemos?", 21, "pt"),
    ("What breed is the pet my sister owns?", 22, "en"),
    # work
    ("What's my profession?", 23, "en"),
    ("What's the name of the firm that pays me?", 24, "en"),
    ("What did I do for money before my current career?", 25, "en"),
    ("Durante quanto tempo vivi em Inglaterra?", 26, "pt"),
    ("Which structure is my current project at work?", 27, "en"),
    ("Who is my line supervisor?", 28, "en"),
    ("Which coworker keeps making bad wordplay jokes?", 29, "en"),
    ("Em que dia útil não vou ao escritório?", 30, "pt"),
    ("Quando é o encontro semanal com os meus colegas?", 31, "pt"),
    ("When is my professional licensing exam?", 32, "en"),
    ("How do I cross the river on workdays?", 33, "en"),
    ("What kind of bicycle do I own?", 34, "en"),
    ("What audio shows do I enjoy during my commute?", 35, "en"),
    ("Where did I get my degree?", 36, "en"),
    ("Em que cidade tirou o curso o meu marido?", 37, "pt"),
    # money
    ("What's my monthly net pay?", 38, "en"),
    ("How much do we give the landlord each month?", 39, "en"),
    ("Para que grande compra andamos a juntar dinheiro?", 40, "pt"),
    ("How big is my rainy-day cushion?", 41, "en"),
    ("Do I ever carry a balance over on my plastic?", 42, "en"),
    ("How much of my pay goes towards retirement?", 43, "en"),
    ("Quanto nos custa a comida do mês?", 44, "pt"),
    ("When does our motor cover need renewing?", 45, "en"),
    # health
    ("Is satay sauce safe for me?", 46, "en"),
    ("Posso beber um batido de leite sem ficar mal disposta?", 47, "pt"),
    ("Which pill do I swallow before breakfast?", 48, "en"),
    ("Que suplemento preciso quando faz frio?", 49, "pt"),
    ("Why should I avoid lifting heavy boxes?", 50, "en"),
    ("Which joint bothers me on descents?", 51, "en"),
    ("What surgery have I had?", 52, "en"),
    ("Quem é o meu clínico geral?", 53, "pt"),
    ("How often do I get my teeth checked?", 54, "en"),
    ("What's wrong with my eyesight?", 55, "en"),
    ("Am I a universal donor?", 56, "en"),
    ("What triggers my headaches?", 57, "en"),
    ("Which of us needs insulin injections?", 58, "en"),
    ("Which creepy-crawlies scare me?", 59, "en"),
    # sleep and daily routine
    ("What time does my alarm go off?", 60, "en"),
    ("Why do I need something in my ears at night?", 61, "en"),
    ("When is my brain sharpest?", 62, "en"),
    ("What time do the children go to sleep?", 63, "en"),
    ("Who collects the kids in the afternoon?", 64, "en"),
    # food and drink
    ("Would a beef burger suit my diet?", 65, "en"),
    ("Quem grelha lá em casa ao domingo?", 66, "pt"),
    ("What meal would cheer me up the most?", 67, "en"),
    ("Which herb should you leave out when cooking for me?", 68, "en"),
    ("Should you add extra chilli when making dinner for me?", 69, "en"),
    ("Quantos cafés bebo por dia?", 70, "pt"),
    ("Que bebida quente prefere o meu marido?", 71, "pt"),
    ("What do I make in the oven on Saturdays and Sundays?", 72, "en"),
    ("Onde gostamos mais de ir jantar fora?", 73, "pt"),
    ("Which grape do I like in my glass?", 74, "en"),
    ("Which of my kids won't touch vegetables?", 75, "en"),
    ("Qual dos miúdos não é esquisito à mesa?", 76, "pt"),
    ("What's my usual first meal of the day?", 77, "en"),
    # places and travel
    ("In which city did I come into the world?", 78, "en"),
    ("Onde passei a infância?", 79, "pt"),
    ("Which neighbourhood is our flat in?", 80, "en"),
    ("Onde era a nossa casa anterior?", 81, "pt"),
    ("Where are we heading for our spring holiday?", 82, "en"),
    ("Para onde fomos de férias no verão do ano passado?", 83, "pt"),
    ("When do I need to renew my travel document?", 84, "en"),
    ("Gosto de andar de avião?", 85, "pt"),
    ("What natural phenomenon is on my bucket list?", 86, "en"),
    ("Window or corridor: which place do I pick when booking?", 87, "en"),
    ("Em quantas nações diferentes já estive?", 88, "pt"),
    # hobbies
    ("Which instrument do I perform on?", 89, "en"),
    ("Que instrumento anda a nossa filha a aprender?", 90, "pt"),
    ("How often do I go jogging?", 91, "en"),
    ("What race am I preparing for?", 92, "en"),
    ("On which weekdays do I go to my core-strength class?", 93, "en"),
    ("When does my reading group get together?", 94, "en"),
    ("Which novel am I in the middle of?", 95, "en"),
    ("What plants do I have growing in pots outside?", 96, "en"),
    ("Which board sport did I pick up a couple of years back?", 97, "en"),
    ("Which camera takes my photos?", 98, "en"),
    ("Which language am I studying at the moment?", 99, "en"),
    ("Que idiomas domino?", 100, "pt"),
    ("Which tabletop game do we bring out fortnightly?", 101, "en"),
    ("Qual é o meu clube de futebol?", 102, "pt"),
    ("Which football side does my spouse follow?", 103, "en"),
    ("Que passatempo manual me acalma ao serão?", 104, "pt"),
    ("What does my boy do on Saturday mornings?", 105, "en"),
    ("What charity work do I do?", 106, "en"),
    ("What bird is inked on my skin?", 107, "en"),
    ("Which hand do I write with?", 108, "en"),
    # home life
    ("Will I have to carry the shopping up the stairs?", 109, "en"),
    ("Como aquecemos a casa nos meses frios?", 110, "pt"),
    ("Who looks after our greenery while we're away?", 111, "en"),
    ("Em que dia da semana vem a empregada?", 112, "pt"),
    ("Which automobile do I own?", 113, "en"),
    ("Where do I leave the car overnight?", 114, "en"),
    ("Com que idade aprendi a guiar?", 115, "pt"),
    # preferences
    ("De que cor gosto mais?", 116, "pt"),
    ("When do I turn a year older?", 117, "en"),
    ("Which singer should you put on for me?", 118, "en"),
    ("Should we pick a scary movie tonight?", 119, "en"),
    ("How long should your replies to me be?", 120, "en"),
    ("Should you ring me or message me?", 121, "en"),
    ("Em que escala devo indicar a temperatura?", 122, "pt"),
    ("What bouquet would make me happy?", 123, "en"),
    ("Should you buy me an object or a day out for a special occasion?", 124, "en"),
    ("Que jornal costumo ler?", 125, "pt"),
]

# (index of a fact that answers some question, index of a same-topic fact that does not answer it)
NEAR_MISSES: list[tuple[int, int]] = [
    (0, 1),
    (1, 0),
    (3, 4),
    (4, 72),
    (5, 46),
    (46, 5),
    (6, 117),
    (117, 6),
    (15, 117),
    (10, 1),
    (11, 12),
    (12, 11),
    (54, 11),
    (17, 21),
    (21, 17),
    (22, 21),
    (18, 17),
    (19, 17),
    (20, 14),
    (14, 20),
    (23, 25),
    (25, 23),
    (27, 23),
    (2, 23),
    (33, 34),
    (34, 113),
    (113, 34),
    (28, 29),
    (29, 28),
    (30, 31),
    (31, 94),
    (94, 31),
    (95, 94),
    (36, 37),
    (37, 36),
    (38, 43),
    (43, 38),
    (39, 44),
    (44, 39),
    (40, 41),
    (41, 40),
    (47, 46),
    (48, 49),
    (49, 48),
    (50, 51),
    (51, 50),
    (52, 50),
    (53, 54),
    (60, 63),
    (63, 60),
    (62, 60),
    (61, 60),
    (65, 66),
    (66, 65),
    (70, 71),
    (71, 70),
    (75, 76),
    (76, 75),
    (69, 68),
    (68, 96),
    (67, 73),
    (73, 67),
    (78, 79),
    (79, 78),
    (80, 81),
    (81, 80),
    (82, 83),
    (83, 82),
    (16, 83),
    (84, 45),
    (45, 84),
    (85, 59),
    (59, 85),
    (89, 90),
    (90, 89),
    (91, 92),
    (92, 91),
    (99, 100),
    (100, 99),
    (102, 103),
    (103, 102),
    (123, 96),
    (96, 123),
    (111, 112),
    (112, 111),
    (64, 63),
    (120, 121),
    (121, 120),
    (118, 35),
    (35, 118),
    (13, 90),
    (116, 113),
    (26, 3),
    (114, 113),
    (9, 83),
]

_WORD = re.compile(r"[^\W\d_]+")


def content_words(text: str) -> set[str]:
    """Lowercased words of four or more letters."""
    return {word for word in _WORD.findall(text.lower()) if len(word) >= 4}


def recall_at(k: int, ranked: list[list[int]]) -> float:
    """Fraction of QUESTIONS whose labelled fact is among the first k of ranked[i] (best first)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if len(ranked) != len(QUESTIONS):
        raise ValueError(f"expected {len(QUESTIONS)} rankings, got {len(ranked)}")
    hits = sum(answer in row[:k] for (_, answer, _), row in zip(QUESTIONS, ranked, strict=True))
    return hits / len(QUESTIONS)


def check_set() -> None:
    """Assert the structure of the set (indexes, sizes, languages, word overlap, distractors)."""
    assert len(FACTS) == len(FACT_LANGUAGES) >= 100
    assert len(set(FACTS)) == len(FACTS), "duplicate facts"
    assert len(QUESTIONS) >= 100
    assert set(FACT_LANGUAGES) <= {"en", "pt", "de"}
    assert len({question for question, _, _ in QUESTIONS}) == len(QUESTIONS), "duplicate questions"
    cross_lingual = 0
    for question, answer, language in QUESTIONS:
        assert 0 <= answer < len(FACTS), (question, answer)
        assert language in {"en", "pt", "de"}, (question, language)
        cross_lingual += language != FACT_LANGUAGES[answer]
        shared = content_words(question) & content_words(FACTS[answer])
        assert len(shared) <= 1, (question, FACTS[answer], shared)
    other = sum(language != "en" for _, _, language in QUESTIONS)
    assert other >= 30, other
    assert sum(language != "en" for language in FACT_LANGUAGES) >= 30
    assert cross_lingual >= 10, cross_lingual
    answered = {answer for _, answer, _ in QUESTIONS}
    for answer, distractor in NEAR_MISSES:
        assert answer in answered and 0 <= distractor < len(FACTS) and distractor != answer
    assert len({answer for answer, _ in NEAR_MISSES}) >= 40
