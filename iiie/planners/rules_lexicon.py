"""Word lists for the rule planner (:mod:`iiie.planners.rules`).

Kept apart from the grammar so the parser reads as rules and the vocabulary can grow
without touching them. Every list is lower case; multi-word entries are matched as
whole phrases. The lists encode *meaning classes* the grammar asks about ("is this noun a
place a subject can be moved to?", "is this adjective a colour?"), not per-category
keyword votes.
"""

from __future__ import annotations

# --- spelling and phrasing normalisation -------------------------------------------------

#: Frequent typos / variants in user instructions, fixed word by word before parsing.
TYPOS: dict[str, str] = {
    "teh": "the",
    "hte": "the",
    "th": "the",
    "tha": "the",
    "backround": "background",
    "backgrond": "background",
    "bakground": "background",
    "backgroud": "background",
    "backgound": "background",
    "bg": "background",
    "backgorund": "background",
    "background's": "background",
    "cahnge": "change",
    "chnage": "change",
    "chang": "change",
    "chage": "change",
    "remvoe": "remove",
    "reomve": "remove",
    "rmove": "remove",
    "delet": "delete",
    "remoev": "remove",
    "removee": "remove",
    "erease": "erase",
    "remov": "remove",
    "delte": "delete",
    "eras": "erase",
    "ad": "add",
    "addd": "add",
    "shuld": "should",
    "shoud": "should",
    "sould": "should",
    "shold": "should",
    "whould": "would",
    "woud": "would",
    "coud": "could",
    "mak": "make",
    "maek": "make",
    "amke": "make",
    "repalce": "replace",
    "replcae": "replace",
    "backgroun": "background",
    "pls": "please",
    "plz": "please",
    "plse": "please",
    "colour": "color",
    "colours": "colors",
    "coloured": "colored",
    "recolour": "recolor",
    "grey": "gray",
    "greyscale": "grayscale",
    "gray-scale": "grayscale",
    "b&w": "black and white",
    "bw": "black and white",
    "u": "you",
    "ur": "your",
    "pic": "picture",
    "pics": "pictures",
    "img": "image",
    "foto": "photo",
    "pict": "picture",
    "nightime": "nighttime",
    "sunglases": "sunglasses",
    "umbrela": "umbrella",
    "wont": "will not",
    "dont": "do not",
    "doesnt": "does not",
    "isnt": "is not",
    "wasnt": "was not",
    "werent": "were not",
    "shouldnt": "should not",
    "cant": "can not",
    "cannot": "can not",
    "im": "i am",
    "id": "i would",
    "lets": "let us",
    "thats": "that is",
    "theres": "there is",
}

#: Contractions expanded before parsing (applied as regex-free substring swaps on words).
CONTRACTIONS: dict[str, str] = {
    "let's": "let us",
    "i'd": "i would",
    "i'm": "i am",
    "it's": "it is",
    "that's": "that is",
    "there's": "there is",
    "wasn't": "was not",
    "weren't": "were not",
    "isn't": "is not",
    "aren't": "are not",
    "don't": "do not",
    "doesn't": "does not",
    "shouldn't": "should not",
    "won't": "will not",
    "can't": "can not",
    "couldn't": "could not",
    "wouldn't": "would not",
    "he's": "he is",
    "she's": "she is",
    "they're": "they are",
    "we'd": "we would",
    "you'd": "you would",
    "i've": "i have",
    "what's": "what is",
}

#: Politeness / hedging lead-ins stripped from the start of a clause (longest first).
LEAD_INS: tuple[str, ...] = (
    "would it be possible to",
    "is it possible to",
    "would you be able to",
    "it would be nice to",
    "it would be nice if",
    "it would be cool to",
    "it would be cool if",
    "it would be great to",
    "it would be great if",
    "it would be better if",
    "it would be better to",
    "i would love it if",
    "i would like it if",
    "i think that",
    "i think",
    "would be nice if",
    "would be nice to",
    "would be cool if",
    "would be cool to",
    "would be great if",
    "would be great to",
    "i feel like",
    "i would love to see",
    "i want to see",
    "i would like to see",
    "i would like you to",
    "i would love you to",
    "i want you to",
    "i need you to",
    "could you please",
    "can you please",
    "would you please",
    "will you please",
    "could you",
    "can you",
    "would you",
    "will you",
    "you should",
    "you can",
    "go ahead and",
    "i would like to",
    "i want to",
    "i need to",
    "we need to",
    "we should",
    "help me",
    "try to",
    "let us",
    "please",
    "kindly",
    "now",
    "just",
    "ok",
    "okay",
    "so",
    "hey",
    "hi",
    "also",
    "then",
    "and",
    "maybe",
    "simply",
    "can we",
    "could we",
    "i wish to",
    "i am hoping to",
    "i hope to",
    "we want to",
    "edit the image to",
    "edit the photo to",
    "edit this to",
    "edit it to",
    "in this image",
    "in the image",
    "in this photo",
    "in the photo",
    "in this picture",
    "in the picture",
    # "make it so there is no dog": the rest is the request
    "make it so that",
    "make it so",
    "make sure that",
    "make sure",
    # sequencing words in multi-step requests ("first add a hat, then ...")
    "first of all",
    "firstly",
    "first",
    "to start",
    "finally",
    "lastly",
)

#: Phrases stripped from the end of a clause.
TAIL_OUTS: tuple[str, ...] = (
    "please",
    "thanks",
    "thank you",
    "for me",
    "instead",
    "if possible",
    "if you can",
    "in the image",
    "in the photo",
    "in the picture",
    "in this image",
    "in this photo",
    "in this picture",
    "from the image",
    "from the photo",
    "from the picture",
    "from this image",
    "from this photo",
    "from this picture",
    "in the scene",
    "from the scene",
    "entirely",
    "completely",
    "altogether",
    "now",
    "too",
    "as well",
    "a little",
    "a bit",
    "slightly",
    "a little bit",
    "somehow",
    "real quick",
)

# --- determiners, pronouns ----------------------------------------------------------------

DETERMINERS = frozenset(
    "the a an this that these those his her their its my our your some any all each every "
    "both one two three four five six several many few another other".split()
)
INDEFINITE = frozenset("a an some another one two three four five six several many few".split())

#: Pronouns as objects, mapped to a groundable phrase.
PRONOUN_OBJECTS: dict[str, str] = {
    "him": "man",
    "he": "man",
    "his": "man",
    "her": "woman",
    "she": "woman",
    "them": "people",
    "they": "people",
    "us": "people",
    "me": "person",
    "someone": "person",
    "somebody": "person",
    "anyone": "person",
    "anybody": "person",
}

#: Phrases that mean "the whole image".
WHOLE_IMAGE = frozenset(
    "it this that image photo picture photograph shot scene everything frame view overall".split()
    + [
        "whole image",
        "entire image",
        "whole photo",
        "entire photo",
        "whole picture",
        "entire picture",
        "whole scene",
        "entire scene",
        "whole thing",
        "whole frame",
        "overall image",
        "full image",
        "all of it",
        "everything in the image",
    ]
)

# --- nouns with a category meaning ----------------------------------------------------------

#: Nouns that name the background region (the subject is kept, this is replaced).
BACKGROUND_NOUNS = frozenset(
    "background backdrop backgrounds surroundings surrounding scenery setting environment "
    "location sky skies skyline horizon".split()
    + [
        "back ground",
        "area behind",
        "wall behind",
        "room behind",
        "everything behind",
        "everything around",
        "area around",
        "space behind",
        "scenery behind",
    ]
)

#: Places a subject can be put in (a background swap when the subject is already there).
SCENE_NOUNS = frozenset(
    "beach forest desert park city jungle field fields space moon mars mountain mountains "
    "snow street savanna savannah stadium garden classroom office library island ocean sea "
    "meadow farm kitchen bedroom museum cafe restaurant tokyo paris london rome venice "
    "york egypt racetrack harbor harbour village countryside rainforest pyramids "
    "arctic antarctica cave grassland hills valley waterfall studio stage underwater "
    "jungle swamp canyon glacier volcano lake river shore coast seaside tundra prairie "
    "church cathedral castle palace temple mall supermarket market gym bar pub arena "
    "airport station subway highway road alley sidewalk bridge rooftop roof hospital "
    "school playground zoo aquarium hotel lobby club concert party wedding battlefield "
    "galaxy universe cosmos planet nebula clouds heaven hell dungeon spaceship landscape "
    "scenery wilderness countryside suburbs downtown room bathroom hallway grass sand lawn "
    "mansion land wonderland fairyland dreamland mountaintop hilltop summit peak cliff "
    "cliffs hillside mountainside riverbank pier dock boardwalk plaza courtyard backyard "
    "ranch vineyard orchard farmland campsite campground dunes reef iceberg snowfield "
    "oasis marsh wetlands bayou fjord lagoon bay cove harbour marina skyscraper "
    "runway racecourse circus carnival fairground amusement theater theatre cinema "
    "nightclub ballroom stable barn greenhouse attic basement garage warehouse factory "
    "laboratory lab classroom auditorium courtroom chapel mosque shrine ruins colosseum "
    "hawaii africa australia india china japan mexico italy france greece iceland "
    "alaska scotland ireland switzerland catwalk podium cloud tunnel".split()
    + [
        "outer space",
        "red carpet",
        "living room",
        "new york",
        "times square",
        "eiffel tower",
        "basketball court",
        "tennis court",
        "football field",
        "soccer field",
        "train station",
        "parking lot",
        "city street",
        "night club",
        "coffee shop",
        "space station",
        "rain forest",
        "snowy field",
        "city skyline",
        "night sky",
        "great wall",
        "golden gate",
        "grand canyon",
        "the alps",
        "north pole",
        "south pole",
        # places named in benchmark scene changes ("turn the construction site into ...")
        "construction site",
        "building site",
        "race track",
        "gas station",
        "bus stop",
        "shopping mall",
        "train platform",
        "zen garden",
        "flower meadow",
        "flower field",
        "town square",
        "city square",
        "canal",
        "harbour front",
        "waterfront",
        "boulevard",
        "avenue",
        "parking garage",
        "terrace",
        "patio",
        "balcony",
        "porch",
        "veranda",
        "clearing",
        "pasture",
        "village",
        "town",
        "interior",
        "wasteland",
        "terrain",
        "underwater world",
        "subway platform",
    ]
)

#: Tonal ranges of a photo: adjusting them ("lighten the shadows") is a global edit.
TONAL_RANGES = frozenset("shadows highlights midtones blacks whites".split())

#: Weather that falls over the whole scene: "add rain", "add a thunderstorm" are global.
WEATHER_EVENTS = frozenset(
    "rain fog mist haze storm snowfall snow thunderstorm rainstorm snowstorm blizzard "
    "drizzle hail sleet sandstorm downpour showers".split()
    + ["falling snow", "heavy rain", "light rain", "snow storm", "rain storm", "thunder storm",
       "hail storm", "ice storm", "dust storm", "sand storm", "winter storm", "heavy snow",
       "light snow", "snow flurries", "thick fog", "heavy fog"]
)

#: Nouns that name a global property of the picture (an adjustment, not an object).
GLOBAL_PROPERTIES = frozenset(
    "brightness contrast saturation exposure colors color hue hues tone tones lighting "
    "sharpness noise grain warmth temperature vibrance gamma tint cast "
    "filter mood atmosphere weather season vibe look feel style aesthetic effect effects "
    "vignette haze glare blur blurriness focus quality resolution palette "
    "tonality luminance".split()
    + [
        "white balance",
        "color cast",
        "colour cast",
        "time of day",
        "color balance",
        "color grading",
        "overall color",
        "overall tone",
        "lighting conditions",
    ]
)

#: Words that name a time, season or weather (turning the whole scene).
TIME_WEATHER = frozenset(
    "winter summer spring autumn fall night nighttime daytime day sunset sunrise dusk "
    "dawn evening morning noon midnight twilight rain rainy raining snow snowy snowing "
    "fog foggy misty mist storm stormy thunderstorm overcast sunny hot cold halloween "
    "christmas blizzard drought flood".split()
    + [
        "night time",
        "day time",
        "golden hour",
        "blue hour",
        "rainy day",
        "snowy day",
        "sunny day",
        "cloudy day",
        "foggy day",
        "a snowy day",
        "a rainy day",
    ]
)

#: Styles / media / looks that re-render the whole picture.
STYLE_WORDS = frozenset(
    "painting paintings watercolor watercolour sketch sketches drawing cartoon cartoons "
    "cartoony cartoonish anime manga comic comics illustration pencil charcoal pastel "
    "mosaic claymation render rendering poster lego minecraft polaroid noir negative "
    "ukiyo-e woodcut engraving impressionist impressionism cubism cubist surreal "
    "surrealist renaissance baroque vaporwave cyberpunk steampunk ghibli pixar disney "
    "gogh monet picasso dali rembrandt vermeer hokusai warhol klimt munch kandinsky "
    "sepia grayscale monochrome vintage retro infrared thermal hdr dream dreamy "
    "futuristic apocalyptic post-apocalyptic gothic fantasy sci-fi scifi noir "
    "oil acrylic artwork art artistic photorealistic realistic hyperrealistic "
    "cinematic film movie 3d 2d low-poly lowpoly pixelated pixel pixels graphite crayon "
    "ink tapestry fresco pointillism pointillist expressionist abstract psychedelic "
    "neon glitch halftone blueprint doodle storybook synthwave vhs 8-bit 16-bit "
    "origami papercut embroidery stained cel-shaded caricature".split()
    + [
        "black and white",
        "black & white",
        "pixel art",
        "oil painting",
        "stained glass",
        "film noir",
        "3d render",
        "pop art",
        "van gogh",
        "studio ghibli",
        "low poly",
        "old photo",
        "old photograph",
        "old film",
        "in the style of",
        "art style",
        "children's book",
        "comic book",
        "video game",
        "line art",
        "cel shaded",
        "ukiyo e",
        "vector art",
        "digital art",
        "concept art",
        "1970s",
        "1980s",
        "1920s",
        "1950s",
        "1960s",
        "1990s",
        "80s",
        "70s",
        "90s",
        "60s",
        "50s",
    ]
)

#: Adjustment words that are global when they have no specific object.
GLOBAL_ADJECTIVES = frozenset(
    "brighter darker lighter sharper blurry blurred blurrier sharp bright dark dim dimmer "
    "desaturated saturated inverted negative grayscale sepia monochrome warmer cooler "
    "warm cool vibrant muted faded washed overexposed underexposed contrasty grainy noisy "
    "hazy moody dramatic cinematic glowing glow pop vivid crisp clearer clear "
    "old older aged vintage retro colorful colourful pastel neon dreamy gloomy cheerful "
    "creepy spooky scary eerie magical ethereal festive".split()
    + [
        "high contrast",
        "low contrast",
        "less saturated",
        "more saturated",
        "washed out",
        "black and white",
        "more vibrant",
        "less vibrant",
        "more colorful",
    ]
)

#: Verbs whose meaning is an image adjustment (global unless given a specific object).
GLOBAL_VERBS = frozenset(
    "desaturate saturate sharpen brighten darken lighten dim cartoonize cartoonify "
    "colorize colourize stylize stylise invert denoise enhance retouch grayscale "
    "posterize pixelate vignette blur defocus soften warm cool tint tone filter "
    "color-correct oversaturate age zoom crop rotate flip mirror".split()
)

#: Adjustment verbs that take a property (global when the property is global).
ADJUST_VERBS = frozenset(
    "increase decrease reduce lower raise boost adjust amp tone dial crank "
    "bump more less fewer fix correct balance improve reduced increased".split()
)

#: Image artefacts whose removal is a global correction, not an object removal.
ARTIFACTS = frozenset(
    "cast tint noise grain blur blurriness haze glare filter vignette color colors "
    "colour colours saturation redness yellowness jpeg artifacts artefacts compression "
    "distortion tone shading overexposure underexposure fog graininess".split()
    + ["yellow cast", "color cast", "red eye", "lens flare", "motion blur", "white balance"]
)

#: Nouns that are properties of an object: "the color of the car" edits the car.
OBJECT_PROPERTIES = frozenset(
    "color colors colour colours material texture shape size pattern patterns expression "
    "pose height length width fabric finish surface paint paintjob design print".split()
)

#: Properties only read as such in "the X of the car" ("the style of the car" edits the
#: car; "the art style" alone stays a picture property).
OF_PROPERTIES = frozenset("style breed species type kind model".split())

#: Body parts / coverings: "give her blonde hair" recolours, it adds nothing.
BODY_PARTS = frozenset(
    "hair eyes eye skin face fur feathers lips nails beard mustache moustache eyebrows "
    "teeth smile expression cheeks stripes spots scales wings".split()
)

#: Nouns that keep their own category when they are the thing "added" (filters, looks).
GLOBAL_ADDABLES = frozenset(
    "filter effect look tone tint vibe feel aesthetic style grain vignette glow "
    "atmosphere mood lighting hue texture overlay flare bokeh fisheye".split()
    + ["light leak", "light leaks", "depth of field", "tilt shift", "motion blur"]
)

#: Parts an object already has: recolouring them is a local edit even when phrased as
#: giving or having ("give the house a red roof", "the trees should have autumn leaves").
PART_NOUNS = frozenset(
    "roof wheels wheel door doors windows leaves blossoms petals stripes spots fur feathers "
    "hair eyes skin lips nails scales shell wings tail mane horns".split()
)

#: Things "given" to an object that change it rather than add to it ("a haircut").
CHANGE_ITEMS = frozenset(
    "hairstyle haircut hairdo makeover outfit costume color colour tan paintjob "
    "frosting icing glaze coating finish paint "
    "expression smile frown mohawk mullet ponytail pigtails braids bun afro buzzcut "
    "dreadlocks perm bob fringe bangs".split()
    + ["paint job", "new look", "fresh coat"]
)

# --- adjectives and verbs -------------------------------------------------------------------

COLORS = frozenset(
    "red blue green yellow orange purple pink white black gray brown gold golden silver "
    "cyan magenta violet indigo teal turquoise beige maroon navy lime olive crimson "
    "scarlet lavender tan cream ivory amber bronze copper aqua coral peach mint rose "
    "ruby emerald sapphire blonde blond ginger auburn brunette rainbow multicolored "
    "multicolor colorful colourful transparent dark light bright pale neon pastel "
    "reddish bluish greenish yellowish pinkish purplish".split()
)

MATERIALS = frozenset(
    "wooden wood metal metallic glass gold golden silver leather marble plastic stone "
    "brick paper ice icy chocolate steel iron copper bronze concrete velvet denim silk "
    "wool woolen furry fur crystal diamond rubber ceramic clay cardboard fabric lego "
    "rusty rusted chrome porcelain straw bamboo jade knitted".split()
)

#: Adjectives (beyond colours/materials) that finish a "make X ADJ" complement.
ADJECTIVES = frozenset(
    "big bigger biggest small smaller tiny huge large larger giant long longer short "
    "shorter tall taller wide wider narrow thin thinner fat fatter old older young younger "
    "new newer happy sad angry surprised scared bald hairy smiling frowning crying "
    "laughing sleeping awake dead alive wet dry clean dirty shiny dull broken fixed "
    "striped spotted dotted checkered plaid floral fluffy furry fuzzy smooth rough "
    "transparent invisible see-through bright dark colorful colourful rusty ancient "
    "modern futuristic cute scary spooky evil friendly fancy elegant messy neat empty "
    "full open closed lit burning frozen melted melting rotten ripe fresh cooked raw "
    "muscular skinny chubby beautiful ugly pretty handsome realistic cartoonish "
    "blurry sharp pointy curly plain simple solid straight wavy glowing sparkly sparkling "
    "shinier darker brighter lighter heavier softer harder hot cold warm cool snowy "
    "cloudy sunny stormy rainy foggy misty starry calm wavy choppy flooded sunlit "
    "wrinkled smooth upside-down upside reflective matte glossy faded vintage retro "
    "more less very much extremely slightly somewhat brown-haired red-haired "
    "blue-eyed colored coloured painted patterned natural unnatural realistic polka "
    "polka-dot dot tartan paisley camo camouflage leopard-print zebra-print tie-dye".split()
)

#: Intransitive / action verbs for "make the dog sit" (a local pose or state edit).
ACTION_VERBS = frozenset(
    "sit stand smile laugh cry jump run walk fly swim sleep dance melt float lie lay "
    "kneel wave raise lift point look face turn frown yawn bark sing read eat drink "
    "play fight hug kiss shrug wink blink open close glow burn shine sparkle spin bend "
    "lean climb ride drive crawl roar growl show grow shrink disappear vanish appear "
    "sitting standing smiling laughing crying jumping running walking flying swimming "
    "sleeping dancing melting floating lying kneeling waving raising looking facing "
    "frowning riding leaning spread stretch flap fold cross clap scream shout yell bow "
    "salute kick wag tilt nod squat crouch pose stare gaze peek graze rest "
    "spreading stretching flapping clapping screaming shouting bowing kicking wagging "
    "nodding squatting crouching posing staring gazing grazing resting".split()
)

#: Verbs of posture/location: with a scene phrase they move the subject to a new place.
POSTURE_VERBS = frozenset(
    "sit stand walk lie lay float swim fly run ride drive live sitting standing walking "
    "lying floating swimming flying running riding driving living be is are was were "
    "being located placed situated".split()
)

#: Verbs that give an object to a subject ("the man wearing a hat" adds the hat).
POSSESSION_VERBS = frozenset(
    "wear wears wore wearing hold holds held holding carry carries carrying carried "
    "have has had having with sport sporting don donning eat eating eats drink drinking "
    "play playing grab grabbing grip gripping".split()
)

#: Verbs that mean "make it go away" in the subject-verb form ("the kite should vanish").
VANISH_VERBS = frozenset(
    "disappear disappears disappeared vanish vanishes vanished gone removed deleted "
    "erased eliminated missing absent".split()
)

# --- location vocabulary for boxes -----------------------------------------------------------

#: Surfaces/areas without an object mask: where a box goes, as (cx, cy) fractions.
AREA_CENTRES: dict[str, tuple[float, float]] = {
    "sky": (0.5, 0.17),
    "air": (0.5, 0.2),
    "clouds": (0.5, 0.15),
    "ceiling": (0.5, 0.1),
    "horizon": (0.5, 0.4),
    "distance": (0.5, 0.38),
    "background": (0.5, 0.35),
    "foreground": (0.5, 0.78),
    "ground": (0.5, 0.82),
    "floor": (0.5, 0.82),
    "grass": (0.5, 0.8),
    "road": (0.5, 0.78),
    "street": (0.5, 0.78),
    "sand": (0.5, 0.8),
    "beach": (0.5, 0.78),
    "snow": (0.5, 0.8),
    "field": (0.5, 0.72),
    "water": (0.5, 0.72),
    "sea": (0.5, 0.68),
    "ocean": (0.5, 0.68),
    "lake": (0.5, 0.7),
    "pond": (0.5, 0.72),
    "river": (0.5, 0.72),
    "table": (0.5, 0.65),
    "desk": (0.5, 0.65),
    "counter": (0.5, 0.65),
    "shelf": (0.5, 0.45),
    "bed": (0.5, 0.62),
    "sofa": (0.5, 0.62),
    "couch": (0.5, 0.62),
    "chair": (0.5, 0.62),
    "plate": (0.5, 0.62),
    "wall": (0.5, 0.3),
    "window": (0.5, 0.35),
    "roof": (0.5, 0.25),
    "tree": (0.5, 0.35),
    "branch": (0.5, 0.3),
    "yard": (0.5, 0.78),
    "garden": (0.5, 0.75),
    "hand": (0.62, 0.55),
    "hands": (0.62, 0.55),
}

#: Things worn on top of a head / on the face / around the neck / held in a hand.
HEAD_ITEMS = frozenset(
    "hat cap crown helmet wig halo horns horn ears tiara beanie bow headband bandana "
    "turban hood antlers flower-crown headphones".split()
    + [
        "flower crown",
        "party hat",
        "top hat",
        "cowboy hat",
        "baseball cap",
        "santa hat",
        "witch hat",
        "bunny ears",
        "cat ears",
    ]
)
FACE_ITEMS = frozenset(
    "glasses sunglasses goggles mask mustache moustache beard monocle eyepatch makeup "
    "lipstick freckles tattoo".split()
)
NECK_ITEMS = frozenset(
    "scarf necklace tie collar medal pendant chain lei bowtie".split() + ["bow tie", "gold chain"]
)
HELD_ITEMS = frozenset(
    "umbrella book balloon balloons bouquet flower flowers sword cup mug phone guitar "
    "bag purse briefcase toy ball bat racket stick cane torch lantern wand sign flag "
    "camera fan".split()
    + ["teddy bear", "ice cream", "coffee cup"]
)

#: Surfaces that can serve as a backdrop ("stand in front of a brick wall", "a wall behind
#: the man"): a background edit when the subject is put before them.
BACKDROP_NOUNS = frozenset(
    "wall walls floor grass sky beach checkerboard curtain curtains pattern texture gradient "
    "wallpaper landscape scenery skyline field meadow lawn sand water backdrop screen mural "
    "bricks sunset mountains mountain forest trees ocean sea lake city view house mansion "
    "building buildings skyscraper skyscrapers tower monument fountain palace fireplace".split()
    + ["green screen", "brick wall", "night sky", "christmas tree"]
)

#: Large regions that act as the scene itself: changing one into a place is a background
#: edit ("the room should be a forest", "swap the grass field for a basketball court").
SCENERY_REGIONS = frozenset(
    "field fields grass lawn meadow wall walls room place area floor ground landscape "
    "scenery view setting surroundings bedroom bathroom kitchen office classroom hallway "
    "studio water ocean sea lake river".split()
)
