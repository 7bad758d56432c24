"""Generator of the caption-style training corpus that primes the ``ppm`` text coder.

The corpus is synthetic: a small grammar of scenes, subjects, attributes and sentence frames in
the register of vision-language model descriptions (keyframe descriptions, comparisons with the
previous keyframe, small details, summaries, clip / motion descriptions). It never contains the
benchmark descriptions in ``benchmarks/data``. The shipped file ``data/captions-v1.txt.gz`` is the
output of ``python -m m3cvc.text.corpus`` (seed and size below); the coder checks its SHA-256, so
a regenerated or edited corpus needs a new model version.
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

DEFAULT_SEED = 20261125
DEFAULT_PARAGRAPHS = 2000

COLORS = (
    "red", "blue", "green", "white", "black", "gray", "yellow", "orange", "brown", "pink", "purple",
    "dark blue", "light blue", "dark green", "beige", "silver", "golden", "navy blue", "maroon", "teal",
    "cream-colored", "light gray", "dark gray", "bright red", "pale yellow",
)
CLOTHES = (
    "a {c} jacket", "a {c} shirt", "a {c} dress", "a {c} sweater", "a {c} hoodie", "a {c} coat",
    "a {c} t-shirt and jeans", "a {c} uniform", "a {c} hat", "a {c} suit", "a {c} top and {c2} pants",
    "a {c} helmet", "a {c} scarf", "a {c} apron", "a {c} jersey", "sunglasses and a {c} cap",
)
PEOPLE = (
    "a man", "a woman", "a young man", "a young woman", "an elderly man", "an elderly woman", "a boy",
    "a girl", "a child", "a person", "a cyclist", "a runner", "a chef", "a worker", "a police officer",
    "a musician", "a student", "a tourist", "a couple", "two men", "two women", "a group of people",
    "a family", "a soccer player", "a basketball player", "a skateboarder", "a dancer", "a jockey",
    "a fisherman", "a waiter", "a teacher", "a photographer", "a driver", "a hiker", "a surfer",
)
ANIMALS = (
    "a dog", "a cat", "a horse", "a bird", "a flock of birds", "a cow", "a herd of sheep", "a duck",
    "a brown dog", "a small white dog", "a black cat", "a group of horses", "a swan", "a squirrel",
    "a bee", "a butterfly", "a deer", "a pair of ducks", "a seagull", "a golden retriever",
)
VEHICLES = (
    "a car", "a white car", "a red car", "a bus", "a truck", "a motorcycle", "a bicycle", "a boat",
    "a sailboat", "a train", "a taxi", "a tram", "a van", "a police car", "a yacht", "a ferry",
    "a tractor", "a scooter", "a small airplane", "a helicopter",
)
SCENES = {
    "street": dict(
        place=("a busy city street", "a quiet residential street", "an urban intersection", "a sidewalk",
               "a narrow street lined with shops", "a crosswalk"),
        objects=("parked cars", "street lamps", "traffic lights", "a bus stop", "shop windows",
                 "a row of buildings", "trees along the sidewalk", "a bicycle rack", "road signs",
                 "pedestrians", "a fire hydrant", "a trash can"),
        background=("tall buildings", "a row of shops", "apartment buildings", "office towers",
                    "a church tower", "a bridge", "a cloudy sky", "a clear blue sky"),
        actions=("walking along the sidewalk", "crossing the street", "waiting at the traffic light",
                 "riding a bicycle down the road", "talking on a phone", "carrying shopping bags"),
    ),
    "park": dict(
        place=("a park", "a public garden", "a grassy field", "a playground", "a tree-lined path",
               "a lawn near a pond"),
        objects=("benches", "green trees", "flower beds", "a fountain", "a walking path", "bushes",
                 "a wooden fence", "a lamp post", "picnic tables", "fallen leaves"),
        background=("dense trees", "a line of trees", "a small lake", "a hill", "a blue sky with white clouds",
                    "a few buildings in the distance"),
        actions=("sitting on a bench", "walking a dog", "jogging along the path", "playing with a ball",
                 "having a picnic", "reading a book", "flying a kite"),
    ),
    "kitchen": dict(
        place=("a kitchen", "a restaurant kitchen", "a small home kitchen", "a cafe counter"),
        objects=("a stove", "pots and pans", "a cutting board", "vegetables", "a sink", "cabinets",
                 "a refrigerator", "plates", "a kettle", "a bowl of fruit", "knives", "spices"),
        background=("white cabinets", "tiled walls", "shelves with jars", "a window with curtains",
                    "kitchen appliances"),
        actions=("chopping vegetables", "stirring a pot", "washing dishes", "preparing a meal",
                 "pouring water into a glass", "plating food"),
    ),
    "beach": dict(
        place=("a sandy beach", "a rocky shore", "a beach at sunset", "the edge of the sea", "a pier"),
        objects=("waves", "beach umbrellas", "footprints in the sand", "seashells", "a lifeguard tower",
                 "towels", "surfboards", "rocks"),
        background=("the ocean", "the horizon", "cliffs", "palm trees", "a pale blue sky",
                    "the setting sun"),
        actions=("walking along the shore", "swimming in the water", "surfing a wave",
                 "building a sandcastle", "playing volleyball", "running toward the water"),
    ),
    "sports": dict(
        place=("a basketball court", "a soccer field", "a tennis court", "a race track",
               "an indoor gymnasium", "a stadium"),
        objects=("a basketball hoop", "a ball", "white lines on the field", "spectators", "a scoreboard",
                 "a net", "players in uniforms", "a referee", "goal posts"),
        background=("stands full of spectators", "advertising banners", "bright floodlights",
                    "a wooden floor", "a green field"),
        actions=("dribbling the ball", "shooting the ball toward the hoop", "running across the field",
                 "passing the ball to a teammate", "jumping to catch the ball", "racing around the track"),
    ),
    "office": dict(
        place=("an office", "a meeting room", "a classroom", "a library", "a studio"),
        objects=("desks", "computer monitors", "chairs", "a whiteboard", "bookshelves", "papers",
                 "a laptop", "a coffee cup", "a lamp", "a potted plant"),
        background=("large windows", "a white wall", "shelves filled with books", "a projector screen",
                    "framed pictures on the wall"),
        actions=("typing on a laptop", "writing on the whiteboard", "talking to a colleague",
                 "reading documents", "giving a presentation", "sitting at a desk"),
    ),
    "nature": dict(
        place=("a forest", "a mountain trail", "a meadow", "a riverbank", "a snowy landscape",
               "a hillside", "a field of flowers", "a lake"),
        objects=("tall trees", "rocks", "wildflowers", "a stream", "grass", "bushes", "a dirt path",
                 "fallen branches", "snow-covered ground", "reeds"),
        background=("mountains", "a dense forest", "rolling hills", "a cloudy sky", "a misty valley",
                    "snow-capped peaks", "a calm lake"),
        actions=("hiking along the trail", "riding a mountain bike", "grazing on the grass",
                 "flying over the water", "crossing the stream", "walking through the snow"),
    ),
    "water": dict(
        place=("a harbor", "a river", "a canal", "a marina", "open water", "a wide strait"),
        objects=("boats", "a dock", "buoys", "ripples on the water", "a wooden pier", "ropes",
                 "a lighthouse", "cargo ships"),
        background=("a city skyline", "a bridge", "hills along the shore", "buildings on the waterfront",
                    "a hazy sky"),
        actions=("sailing across the water", "moving slowly along the river", "docking at the pier",
                 "leaving a white wake behind it", "rocking gently on the waves"),
    ),
    "indoor": dict(
        place=("a living room", "a shopping mall", "a restaurant", "a hotel lobby", "a train station",
               "a museum hall", "a stage", "a party room"),
        objects=("a sofa", "tables and chairs", "a television", "a carpet", "lamps", "a staircase",
                 "display cases", "balloons", "a chandelier", "a counter", "decorations"),
        background=("bright lights", "a glass ceiling", "colorful walls", "shops on the upper floor",
                    "a large window", "a crowd of people"),
        actions=("talking to each other", "walking through the hall", "sitting at a table", "dancing",
                 "playing the guitar", "shopping", "waving at the camera"),
    ),
    "road": dict(
        place=("a highway", "a country road", "a parking lot", "a bridge over a river",
               "a road through the countryside"),
        objects=("lane markings", "guardrails", "traffic", "road signs", "a tunnel entrance",
                 "parked vehicles", "power lines"),
        background=("fields", "hills", "a line of trees", "a gray sky", "industrial buildings"),
        actions=("driving along the road", "overtaking another vehicle", "turning at the intersection",
                 "slowing down", "speeding past the camera"),
    ),
}
LIGHT = (
    "The lighting is bright and natural, suggesting it is daytime.",
    "The scene is lit by soft, warm sunlight.",
    "The lighting is dim, indicating that it is evening.",
    "The sky is overcast, giving the scene a muted tone.",
    "Strong shadows suggest that the sun is high in the sky.",
    "The image has a warm color palette with golden tones.",
    "The colors are vibrant and the image is sharp.",
    "The scene is illuminated by artificial lights.",
    "The lighting is even, with no strong shadows.",
    "The image appears slightly blurred, suggesting motion.",
)
MOOD = (
    "calm and peaceful", "busy and lively", "relaxed", "energetic", "quiet", "festive", "serene",
    "cheerful", "tense and competitive", "cozy",
)
POSITIONS = (
    "on the left side of the frame", "on the right side of the frame", "in the center of the image",
    "in the foreground", "in the background", "near the top of the frame", "at the bottom of the image",
    "in the lower left corner", "in the upper right corner", "slightly to the left", "in the distance",
)
CAMERA = (
    "The camera remains mostly static.", "The camera pans slowly from left to right.",
    "The camera pans to the left, following the subject.", "The camera zooms in gradually.",
    "The camera zooms out to reveal more of the scene.", "The camera tracks the subject as it moves.",
    "The camera tilts upward.", "The camera is handheld and shakes slightly.",
    "The shot is taken from a low angle.", "The camera moves forward smoothly.",
)
SPEED = ("slowly", "quickly", "steadily", "gradually", "rapidly", "gently", "smoothly")
DIRECTION = (
    "from left to right", "from right to left", "toward the camera", "away from the camera",
    "across the frame", "into the distance", "to the center of the frame", "upward", "downward",
)
SIZES = ("large", "small", "tall", "wide", "narrow", "long", "old", "modern", "wooden", "metal")


NOUNS = (
    "table", "chair", "window", "door", "wall", "floor", "ceiling", "roof", "street", "road", "path",
    "bridge", "river", "lake", "sea", "ocean", "mountain", "hill", "valley", "forest", "tree", "branch",
    "leaf", "flower", "garden", "field", "farm", "fence", "gate", "house", "building", "tower", "church",
    "temple", "castle", "station", "airport", "market", "store", "shop", "restaurant", "cafe", "hotel",
    "school", "hospital", "museum", "theater", "stadium", "gym", "pool", "beach", "island", "harbor",
    "ship", "boat", "car", "truck", "bus", "train", "plane", "bicycle", "motorcycle", "horse", "dog",
    "cat", "bird", "fish", "insect", "cow", "sheep", "goat", "chicken", "duck", "rabbit", "deer", "bear",
    "lion", "tiger", "elephant", "monkey", "person", "man", "woman", "child", "baby", "boy", "girl",
    "crowd", "audience", "team", "player", "athlete", "rider", "driver", "pilot", "singer", "artist",
    "painter", "doctor", "nurse", "farmer", "soldier", "guard", "vendor", "customer", "passenger",
    "face", "hand", "arm", "leg", "head", "hair", "eye", "mouth", "shoulder", "back", "body", "foot",
    "shirt", "dress", "coat", "jacket", "hat", "cap", "shoe", "boot", "glove", "bag", "backpack", "umbrella",
    "book", "paper", "phone", "camera", "screen", "computer", "keyboard", "cup", "glass", "bottle", "plate",
    "bowl", "spoon", "fork", "knife", "pan", "pot", "box", "basket", "toy", "ball", "rope", "flag", "sign",
    "poster", "painting", "picture", "mirror", "lamp", "candle", "clock", "bench", "stairs", "railing",
    "column", "arch", "balcony", "tent", "umbrella", "boat deck", "sail", "wave", "cloud", "sky", "sun",
    "moon", "star", "rain", "snow", "fog", "smoke", "fire", "water", "sand", "stone", "rock", "grass",
    "dirt", "mud", "ice", "shadow", "light", "reflection", "surface", "edge", "corner", "center", "side",
    "top", "bottom", "front", "middle", "distance", "horizon", "landscape", "skyline", "city", "town",
    "village", "neighborhood", "square", "plaza", "courtyard", "terrace", "porch", "yard", "lawn",
    "playground", "track", "court", "ring", "stage", "studio", "room", "hall", "corridor", "lobby",
    "kitchen", "bedroom", "bathroom", "office", "library", "classroom", "factory", "warehouse", "workshop",
    "machine", "engine", "wheel", "tire", "seat", "window frame", "curtain", "carpet", "pillow", "blanket",
    "fruit", "apple", "orange", "banana", "bread", "cake", "pizza", "salad", "soup", "meat", "vegetable",
    "tomato", "potato", "onion", "pepper", "rice", "noodles", "sauce", "coffee", "tea", "juice", "wine",
)
ADJECTIVES = (
    "large", "small", "big", "tiny", "tall", "short", "long", "wide", "narrow", "old", "new", "modern",
    "ancient", "traditional", "simple", "ornate", "elegant", "colorful", "bright", "dark", "pale", "vivid",
    "shiny", "dull", "smooth", "rough", "soft", "hard", "wet", "dry", "clean", "dirty", "empty", "full",
    "crowded", "quiet", "busy", "calm", "still", "moving", "fast", "slow", "heavy", "light", "thin",
    "thick", "round", "square", "flat", "curved", "straight", "steep", "deep", "shallow", "open", "closed",
    "wooden", "metal", "glass", "plastic", "stone", "brick", "concrete", "paper", "leather", "wool",
    "striped", "checkered", "patterned", "plain", "transparent", "blurry", "sharp", "distant", "nearby",
    "sunny", "cloudy", "rainy", "snowy", "foggy", "windy", "warm", "cold", "fresh", "green", "golden",
    "rusty", "polished", "cozy", "spacious", "cluttered", "neat", "tidy", "wild", "natural", "urban",
    "rural", "industrial", "historic", "famous", "beautiful", "peaceful", "lively", "dramatic", "happy",
    "smiling", "serious", "young", "elderly", "athletic", "focused", "relaxed", "curious", "playful",
)
VERBS = (
    "standing", "sitting", "walking", "running", "jumping", "climbing", "riding", "driving", "flying",
    "swimming", "floating", "sailing", "dancing", "singing", "playing", "talking", "laughing", "smiling",
    "looking", "watching", "holding", "carrying", "pushing", "pulling", "throwing", "catching", "kicking",
    "hitting", "lifting", "reaching", "pointing", "waving", "turning", "bending", "leaning", "kneeling",
    "lying", "resting", "sleeping", "eating", "drinking", "cooking", "cutting", "cleaning", "washing",
    "painting", "writing", "reading", "typing", "working", "building", "fixing", "repairing", "selling",
    "buying", "waiting", "crossing", "entering", "leaving", "approaching", "following", "chasing",
    "racing", "rolling", "spinning", "swinging", "shaking", "falling", "rising", "growing", "shining",
    "glowing", "reflecting", "blowing", "flowing", "dripping", "splashing", "passing", "moving",
)
ADVERBS = (
    "slowly", "quickly", "carefully", "gently", "steadily", "suddenly", "gradually", "briefly", "calmly",
    "easily", "closely", "slightly", "clearly", "partly", "mostly", "nearly", "almost", "already", "still",
    "again", "together", "forward", "backward", "upward", "downward", "away", "around", "across", "along",
)
PREPS = ("on", "in", "near", "next to", "behind", "in front of", "under", "above", "beside", "between",
         "around", "along", "across", "through", "over", "at the edge of", "on top of", "inside", "outside")
GENERAL = (
    "{A} {n} is {v} {p} the {n2}.",
    "There is {a} {adj} {n} {p} the {n2}, and {a2} {adj2} {n3} can be seen {pos}.",
    "{A} {adj} {n} {v} {p} the {n2} is the main subject of the image.",
    "The {n} appears to be {adj}, with {a} {adj2} {n2} {p} it.",
    "Several {ns} are {v} {adv} {p} the {n2}.",
    "The {n} and the {n2} are {adj} and {adj2}.",
    "It looks like the {n} has been {adj} for a long time.",
    "On the {side} side of the {n}, there is {a} {adj} {n2}.",
    "The {n} is partially hidden by the {n2}.",
    "The {adj} {n} in the {place2} draws attention to the {n2}.",
    "The {n} {is_are} {adv} {v}, while the {n2} stays {adj}.",
    "Overall, the image gives a sense of {feeling}.",
    "The composition of the image focuses on the {n}, which is {pos}.",
    "The colors of the scene are mainly {c} and {c2}.",
    "The texture of the {n} is {adj} and {adj2}.",
    "The {n} casts a {adj} shadow on the {n2}.",
    "The {n} seems to be made of {material}.",
    "In the distance, {a} {adj} {n} is barely visible.",
    "The person {p} the {n} is {v} and {v2}.",
    "The {n} looks {adj}, suggesting that {reason}.",
)
FEELINGS = ("calm", "movement", "peace", "excitement", "depth", "scale", "tension", "warmth", "freedom",
            "joy", "speed", "nostalgia", "mystery", "balance", "energy", "everyday life")
MATERIALS = ("wood", "metal", "glass", "stone", "plastic", "fabric", "brick", "concrete", "paper", "leather")
REASONS = ("it is early in the morning", "it has just rained", "the weather is warm",
           "the event is about to begin", "someone has just left", "the day is ending",
           "the area is well maintained", "it is a popular place", "the photo was taken from far away")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


_ARTICLE = re.compile(r"\b([Aa])n? (?=(\w))")


def _fix_articles(text: str) -> str:
    return _ARTICLE.sub(lambda m: m.group(1) + ("n " if m.group(2).lower() in "aeiou" else " "), text)


def _plural(noun: str) -> str:
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _general_sentence(rng: random.Random) -> str:
    pick = rng.choice
    n, n2, n3 = pick(NOUNS), pick(NOUNS), pick(NOUNS)
    adj, adj2 = pick(ADJECTIVES), pick(ADJECTIVES)
    slots = dict(
        n=n, ns=_plural(n), n2=n2, n3=n3, adj=adj, adj2=adj2, v=pick(VERBS), v2=pick(VERBS), adv=pick(ADVERBS),
        p=pick(PREPS), pos=pick(POSITIONS), c=pick(COLORS), c2=pick(COLORS), side=pick(("left", "right")),
        place2=pick(("foreground", "background", "center", "corner", "middle")), feeling=pick(FEELINGS),
        material=pick(MATERIALS), reason=pick(REASONS), is_are=pick(("is", "keeps")),
        a=_article(n), a2=_article(adj2), A=_cap(_article(adj)),
    )
    frame = pick(GENERAL)
    if frame.startswith("{A} {n}"):
        slots["A"] = _cap(_article(n))
    return frame.format(**slots)


@dataclass
class _Slots:
    rng: random.Random
    scene: dict

    def pick(self, options: Sequence[str]) -> str:
        return self.rng.choice(options)

    def subject(self) -> str:
        r = self.rng.random()
        if r < 0.6:
            person = self.pick(PEOPLE)
            outfit = self.pick(CLOTHES).format(c=self.pick(COLORS), c2=self.pick(COLORS))
            return f"{person} wearing {outfit}" if self.rng.random() < 0.7 else person
        if r < 0.8:
            return self.pick(ANIMALS)
        return self.pick(VEHICLES)

    def thing(self) -> str:
        return self.pick(self.scene["objects"])

    def place(self) -> str:
        return self.pick(self.scene["place"])

    def back(self) -> str:
        return self.pick(self.scene["background"])

    def action(self) -> str:
        return self.pick(self.scene["actions"])


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _objects_turn(s: _Slots) -> list[str]:
    subj = s.subject()
    opener = s.pick((
        f"The image shows {subj} in {s.place()}.",
        f"The image depicts {subj} {s.action()} in {s.place()}.",
        f"In this image, {subj} is {s.action()}.",
        f"This frame captures {subj} in {s.place()}.",
        f"The scene takes place in {s.place()}, where {subj} is {s.action()}.",
    ))
    out = [opener]
    out.append(s.pick((
        f"{_cap(subj)} is {s.pick(POSITIONS)}.",
        f"There are {s.thing()} and {s.thing()} {s.pick(POSITIONS)}.",
        f"{_cap(s.thing())} can be seen {s.pick(POSITIONS)}.",
        f"Next to {subj}, there is {s.pick(('a', 'another'))} {s.pick(SIZES)} object that looks like "
        f"{s.pick(('a bag', 'a box', 'a sign', 'a chair', 'a table', 'a pole'))}.",
    )))
    out.append(s.pick((
        f"In the background, there are {s.back()} and {s.back()}.",
        f"The background features {s.back()}.",
        f"Behind {subj}, {s.back()} can be seen.",
        f"The background consists of {s.back()} under {s.pick(('a clear sky', 'a cloudy sky', 'soft light'))}.",
    )))
    return out


def _compare_turn(s: _Slots) -> list[str]:
    return [s.pick((
        f"Compared to the previous keyframe, {s.subject()} has moved {s.pick(DIRECTION)}.",
        f"Compared to the previous frame, the camera angle has changed and {s.thing()} are now more visible.",
        f"The main difference from the previous keyframe is that {s.subject()} now appears {s.pick(POSITIONS)}.",
        "The scene is almost the same as in the previous keyframe, with only small changes in position.",
        f"Unlike the previous image, {s.thing()} are no longer visible, and {s.back()} fill the background.",
        f"In contrast to the previous frame, the view is closer and {s.subject()} is larger in the frame.",
        f"Both images show {s.place()}, but in this one {s.subject()} has entered from the "
        f"{s.pick(('left', 'right'))}.",
    ))]


def _detail_turn(s: _Slots) -> list[str]:
    out = [s.pick(LIGHT)]
    out.append(s.pick((
        f"There are also {s.thing()} {s.pick(POSITIONS)}.",
        f"A few {s.pick(('small', 'distant', 'blurry'))} details include {s.thing()} and {s.thing()}.",
        f"The ground is covered with {s.pick(('grass', 'pavement', 'sand', 'tiles', 'snow', 'gravel'))}.",
        f"{_cap(s.thing())} {s.pick(('is', 'are'))} partially visible {s.pick(POSITIONS)}.",
    )))
    if s.rng.random() < 0.5:
        out.append(f"The overall atmosphere of the scene is {s.pick(MOOD)}.")
    return out


def _clip_turn(s: _Slots) -> list[str]:
    subj = s.subject()
    out = [s.pick((
        f"The video shows {subj} {s.action()} in {s.place()}.",
        f"In the video, {subj} is {s.action()}.",
        f"The video clip features {subj} moving {s.pick(SPEED)} {s.pick(DIRECTION)}.",
        f"The primary motion in the video is {subj} {s.action()}.",
    ))]
    out.append(s.pick(CAMERA))
    out.append(s.pick((
        f"As the video progresses, {subj} moves {s.pick(SPEED)} {s.pick(DIRECTION)}.",
        f"Throughout the clip, {s.thing()} remain still while {subj} keeps moving.",
        f"{_cap(subj)} {s.pick(('continues', 'keeps'))} {s.action()} while the background stays the same.",
        f"Other people in the scene move {s.pick(SPEED)} in the background.",
        f"By the end of the clip, {subj} has reached {s.pick(POSITIONS)}.",
    )))
    return out


_KINDS: dict[str, Callable[[_Slots], list[str]]] = {
    "keyframe": lambda s: _objects_turn(s) + (_compare_turn(s) if s.rng.random() < 0.5 else []) + _detail_turn(s),
    "objects": _objects_turn,
    "compare": lambda s: _compare_turn(s) + _detail_turn(s)[:1],
    "clip": _clip_turn,
}


def generate_paragraph(rng: random.Random) -> str:
    scene = SCENES[rng.choice(sorted(SCENES))]
    kind = rng.choice(("keyframe", "keyframe", "objects", "compare", "clip", "clip"))
    sentences = _KINDS[kind](_Slots(rng, scene))
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        sentences.insert(rng.randrange(1, len(sentences) + 1), _general_sentence(rng))
    return _fix_articles(" ".join(sentences))


def generate_corpus(seed: int = DEFAULT_SEED, paragraphs: int = DEFAULT_PARAGRAPHS) -> str:
    """``paragraphs`` synthetic descriptions, one per line (deterministic for a seed)."""
    rng = random.Random(seed)
    return "\n".join(generate_paragraph(rng) for _ in range(paragraphs)) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="write the caption-style corpus that primes the ppm text coder")
    ap.add_argument("-o", "--output", default=str(Path(__file__).with_name("data") / "captions-v1.txt.gz"))
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--paragraphs", type=int, default=DEFAULT_PARAGRAPHS)
    args = ap.parse_args(argv)
    text = generate_corpus(args.seed, args.paragraphs)
    # mtime=0 keeps the gzip bytes reproducible
    Path(args.output).write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    print(f"{args.output}: {len(text)} chars, {args.paragraphs} paragraphs, seed {args.seed}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
