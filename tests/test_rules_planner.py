"""The rule planner: category accuracy on labelled instruction sets, slots, boxes, errors.

The three ``regression_*.jsonl`` sets were corrected until the grammar passed them, so
they measure nothing about new text any more: they are regression guards (each scores
1.00 today; the asserts fail on a drop of a few points). Generalisation is measured on
benchmark instructions the grammar was never fixed against (see
``tests/test_planner_benchmarks.py``).

``tests/data/regression_dev.jsonl`` is the set the grammar was developed on.
``tests/data/regression_holdout.jsonl`` holds five batches, each written before the
parser had seen it (ids ``ho*``: written before the parser existed; ``hob*``, ``hoc*``,
``hod*``, ``hoe*``: written later, blind; ``hoe*`` after the last grammar change, so its
score is the cleanest estimate: 0.97, local 0.90, remove 0.95, others 1.00). First-run accuracies, i.e. before any fix was made after
seeing the batch: ``ho*`` 1.00 (but written while the grammar was being designed), ``hob*`` 0.952 (background 0.80), ``hoc*`` 0.960 (local 0.92, background
0.92), ``hod*`` 0.960 (local 0.92). Two more blind batches were scored and then moved
into the dev set: 0.867 (background 0.70, an early one) and 0.941 (background 0.88). Fixes made after those runs were generic rules, but they
were prompted by the errors seen, so the current holdout score is optimistic; the
first-run numbers are the honest estimate. All batches were written by the same person who
wrote the grammar, so real benchmark phrasings may still score lower.
Targets from issue 2: overall category accuracy >= 0.88 and every class >= 0.75.

Measure: ``python -m iiie.plan input=tests/data/regression_holdout.jsonl
output=/tmp/out.jsonl planner=rules`` (prints per-class accuracy and a confusion matrix).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iiie.errors import InstructionError
from iiie.masks import box_is_degenerate, mask_to_box
from iiie.planners.rules import MAX_INSTRUCTION_CHARS, RulePlanner, parse_instruction
from iiie.types import Category, EditRequest, Plan

DATA = Path(__file__).parent / "data"
CLASSES = [c.value for c in Category]
#: The regression sets score 1.00 overall and per class; these bars catch a drop of a
#: few points (3 overall, 6 in one class), not the 10+ the old issue-2 targets allowed.
REGRESSION_OVERALL = 0.97
REGRESSION_PER_CLASS = 0.94


def _load(name: str) -> list[dict]:
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _accuracy(rows: list[dict]) -> tuple[float, dict[str, float]]:
    total, correct = Counter(), Counter()
    for row in rows:
        plan = parse_instruction(row["instruction"])
        total[row["category"]] += 1
        correct[row["category"]] += plan.category.value == row["category"]
    per_class = {c: correct[c] / total[c] for c in total}
    return sum(correct.values()) / sum(total.values()), per_class


def _head(phrase: str) -> str:
    """Head noun for lenient object matching: "vase of flowers" -> "vase", plural-blind."""
    words = phrase.split(" of ")[0].split()
    return words[-1].rstrip("s") if words else ""


# ------------------------------------------------------------------------------------------
# labelled sets
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,minimum",
    [
        ("regression_dev.jsonl", 400),
        ("regression_holdout.jsonl", 150),
        ("regression_blind2.jsonl", 250),
    ],
)
def test_instruction_sets_are_well_formed_and_balanced(name, minimum):
    rows = _load(name)
    assert len(rows) >= minimum
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r) == {"id", "instruction", "category", "object"}
        assert r["category"] in CLASSES
        if r["category"] in ("local", "remove", "addition"):
            assert r["object"], r
    counts = Counter(r["category"] for r in rows)
    assert set(counts) == set(CLASSES)
    assert min(counts.values()) >= 0.15 * len(rows)


def test_holdout_does_not_repeat_dev_instructions():
    dev = {r["instruction"].strip().lower() for r in _load("regression_dev.jsonl")}
    hold = {r["instruction"].strip().lower() for r in _load("regression_holdout.jsonl")}
    assert len(dev & hold) <= 0.05 * len(hold)


def test_dev_accuracy_meets_targets_and_guards_regressions():
    overall, per_class = _accuracy(_load("regression_dev.jsonl"))
    # regression guard: 1.00 today; a drop of a few points fails
    assert overall >= REGRESSION_OVERALL, per_class
    assert min(per_class.values()) >= REGRESSION_PER_CLASS, per_class


def test_holdout_accuracy_meets_targets():
    overall, per_class = _accuracy(_load("regression_holdout.jsonl"))
    assert overall >= REGRESSION_OVERALL, per_class
    assert min(per_class.values()) >= REGRESSION_PER_CLASS, per_class


def test_blind2_accuracy_meets_targets():
    """Regression guard on ``regression_blind2.jsonl``, written by a second author in
    benchmark styles (MagicBrush, Emu Edit, PIE-Bench, GEdit) in five batches, each
    scored before the fixes it prompted: ``blind2_*`` (261, grammar unread) 0.962 overall
    with remove 0.885; ``blind2b_*`` (133, harder phrasing) 0.887 with remove 0.72;
    ``blind2c_*`` (122) 0.951 with background 0.83; ``blind2d_*`` (96, chatty multi-clause
    requests, slang) 0.896 with remove 0.78; ``blind2e_*`` (96) 0.938 with local 0.89;
    ``blind2f_*`` (79, terse Emu Edit / PIE-Bench style) 0.975; ``blind2g_*`` (75,
    MagicBrush style) 0.947 with background 0.80. All were then fixed with general
    rules, so the set is tuned-on now and guards those rules rather than estimating
    accuracy on new text (pooled first-run accuracy over the 862: about 0.94)."""
    overall, per_class = _accuracy(_load("regression_blind2.jsonl"))
    assert overall >= REGRESSION_OVERALL, per_class
    assert min(per_class.values()) >= REGRESSION_PER_CLASS, per_class


@pytest.mark.parametrize("name", ["regression_dev.jsonl", "regression_holdout.jsonl"])
def test_object_phrase_matches_label_head(name):
    hits = n = 0
    for row in _load(name):
        if not row["object"] or row["category"] in ("global",):
            continue
        plan = parse_instruction(row["instruction"])
        if plan.category.value != row["category"]:
            continue
        n += 1
        hits += _head(plan.object) == _head(row["object"])
    assert hits / n >= 0.9


# ------------------------------------------------------------------------------------------
# representative instructions: category, object, prompts
# ------------------------------------------------------------------------------------------

CASES = [
    # instruction, category, object, substring of target_prompt
    ("get rid of the background behind the woman", "background", "woman", "background"),
    ("turn the garage surroundings into a beach", "background", "garage", "beach"),
    ("change the background to a brick wall", "background", "main subject", "brick wall"),
    ("have the sky be cloudy", "background", "main subject", "cloudy sky"),
    ("put the dog on a beach", "background", "dog", "beach"),
    ("keep the person but change the background to a park", "background", "person", "park"),
    ("make the horse a unicorn", "local", "horse", "a unicorn"),
    ("change the color of the car to red", "local", "car", "red car"),
    ("the dog should be a cat", "local", "dog", "a cat"),
    ("make the blue square green", "local", "blue square", "green square"),
    ("what if the woman was an old lady", "local", "woman", "old lady"),
    ("make the man smile", "local", "man", "smiling"),
    ("give her blonde hair", "local", "hair", "blonde hair"),
    ("take the lamp out", "remove", "lamp", ""),
    ("remove the people in the background", "remove", "people", ""),
    ("I want the fence gone", "remove", "fence", ""),
    ("the dog should not be there", "remove", "dog", ""),
    ("what if there was no boat", "remove", "boat", ""),
    ("what if the man had a hat", "addition", "hat", "a hat"),
    ("put a cat on the sofa", "addition", "cat", "a cat"),
    ("give the snowman a red scarf", "addition", "red scarf", "a red scarf"),
    ("the boy should be holding a balloon", "addition", "balloon", "a balloon"),
    ("a small owl sitting on the fence", "addition", "small owl", "owl sitting"),
    ("add a yellow star in the top left", "addition", "yellow star", "a yellow star"),
    ("remove the yellow cast", "global", "", ""),
    ("make it look like a painting by van gogh", "global", "", "van gogh"),
    ("let's see it in winter", "global", "", "winter"),
    ("make the image grayscale", "global", "", "grayscale"),
    ("invert the colors", "global", "", "inverted"),
    ("blur the whole picture", "global", "", "blurry"),
    ("add a warm filter", "global", "", "warm filter"),
]


@pytest.mark.parametrize("instruction,category,obj,target", CASES)
def test_representative_instruction(instruction, category, obj, target):
    plan = parse_instruction(instruction)
    assert plan.category.value == category, plan.raw
    assert plan.object == obj, plan.raw
    assert target in plan.target_prompt, plan.target_prompt
    if category == "remove":
        assert obj not in plan.target_prompt  # the removal prompt never names the object
    if category == "addition":
        assert plan.add_box is not None
    else:
        assert plan.add_box is None


def test_global_captions():
    plan = parse_instruction("let's see it in winter")
    assert plan.source_caption == "a photo"
    assert plan.target_caption == "a photo in winter, snowy"
    plan = parse_instruction("remove the yellow cast")
    assert "yellow cast" in plan.source_caption
    assert "yellow cast" not in plan.target_caption and plan.target_caption
    plan = parse_instruction("increase the contrast")
    assert plan.target_caption == "a photo with higher contrast"
    for instruction in ("make it rain", "convert to pencil sketch", "desaturate"):
        plan = parse_instruction(instruction)
        assert plan.category == Category.GLOBAL
        assert plan.source_caption and plan.target_caption
        assert plan.target_caption != plan.source_caption


def test_non_global_plans_have_no_captions():
    for instruction in ("remove the dog", "make the car red", "add a hat to the man"):
        plan = parse_instruction(instruction)
        assert plan.source_caption == "" and plan.target_caption == ""


@pytest.mark.parametrize(
    "instruction,category",
    [
        ("remove the dog and add a cat", "remove"),
        ("Could you please, erase the woman walking in the back? thanks", "remove"),
        ("pls make teh cat orange!!", "local"),
        ("change the backround to the ocean", "background"),
        ("ad a cat in the window", "addition"),
        ("i'd like the motorcycle to be blue", "local"),
        ("In the style of Picasso.", "global"),
        ("background -> snowy mountains", "background"),
        ("cat to dog", "local"),
    ],
)
def test_phrasing_variants(instruction, category):
    assert parse_instruction(instruction).category.value == category


@pytest.mark.parametrize(
    "instruction,category,obj",
    [
        ("The woman is wearing a red dress. Make it blue.", "local", "red dress"),
        ("the car is parked outside. remove it", "remove", "car"),
        ("There is a lamp. Add a cat next to it.", "addition", "cat"),
    ],
)
def test_description_then_request(instruction, category, obj):
    plan = parse_instruction(instruction)
    assert (plan.category.value, plan.object) == (category, obj), plan.raw


@pytest.mark.parametrize(
    "instruction,obj,target",
    [
        ("remove the background and replace it with a forest", "main subject", "a forest"),
        ("remove the background behind the dog. Then put it on a beach", "dog", "a beach"),
    ],
)
def test_background_removal_followed_by_the_new_scene(instruction, obj, target):
    plan = parse_instruction(instruction)
    assert plan.category == Category.BACKGROUND
    assert (plan.object, plan.target_prompt) == (obj, target)


def test_raw_trace_records_the_parse():
    plan = parse_instruction("Please remove the red car and then add a tree")
    raw = plan.raw
    assert raw["planner"] == "rules"
    assert raw["frame"] == "remove"
    assert raw["confidence"] == "high"
    assert raw["n_clauses"] == 2
    assert raw["clause"] == "remove the red car"
    json.dumps(raw)  # provenance is written to JSON files
    assert Plan.from_dict(plan.to_dict()) == plan


def test_unparseable_instruction_is_a_low_confidence_best_guess():
    plan = parse_instruction("zxcv qwerty")
    assert isinstance(plan.category, Category)
    assert plan.raw["confidence"] == "low"


# ------------------------------------------------------------------------------------------
# synthetic benchmark templates (iiie/data/synthetic.py) parse exactly
# ------------------------------------------------------------------------------------------


def test_synthetic_templates_parse_exactly():
    syn = pytest.importorskip("iiie.data.synthetic")
    size = (256, 256)
    colors, shapes = list(syn.COLORS), list(syn.SHAPES)
    checked = 0
    for i, (color, shape) in enumerate((c, s) for c in colors for s in shapes):
        obj = f"{color} {shape}"
        new_color = colors[(colors.index(color) + 1) % len(colors)]
        new_shape = shapes[(shapes.index(shape) + 1) % len(shapes)]
        for t in syn.TEMPLATES["remove"]:
            p = parse_instruction(t.format(obj=obj), size)
            assert (p.category, p.object) == (Category.REMOVE, obj), t
        for t in syn.TEMPLATES["recolor"]:
            p = parse_instruction(t.format(obj=obj, new=new_color, shape=shape), size)
            assert (p.category, p.object) == (Category.LOCAL, obj), t
            assert new_color in p.target_prompt and shape in p.target_prompt, (t, p)
        for t in syn.TEMPLATES["reshape"]:
            p = parse_instruction(t.format(obj=obj, new=new_shape, color=color), size)
            assert (p.category, p.object) == (Category.LOCAL, obj), t
            assert new_shape in p.target_prompt
        scene = syn.BACKDROPS[i % len(syn.BACKDROPS)]
        for t in syn.TEMPLATES["background"]:
            p = parse_instruction(t.format(obj=obj, scene=scene), size)
            expected = obj if "{obj}" in t else "main subject"
            assert (p.category, p.object) == (Category.BACKGROUND, expected), t
            assert scene in p.target_prompt
        for t in syn.TEMPLATES["addition"]:
            for region, (fx, fy) in syn.REGIONS.items():
                p = parse_instruction(t.format(obj=obj, region=region), size)
                assert (p.category, p.object) == (Category.ADDITION, obj), t
                x0, y0, x1, y1 = p.add_box
                assert abs((x0 + x1) / 2 / size[0] - fx) <= 0.1, (t, region, p.add_box)
                assert abs((y0 + y1) / 2 / size[1] - fy) <= 0.1, (t, region, p.add_box)
                checked += 1
    for templates in syn.GLOBAL_TEMPLATES.values():
        for t in templates:
            p = parse_instruction(t, size)
            assert p.category == Category.GLOBAL and p.object == "", t
            assert p.target_caption
    assert checked > 0


# ------------------------------------------------------------------------------------------
# addition boxes
# ------------------------------------------------------------------------------------------


def _mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    w, h = size
    m = np.zeros((h, w), bool)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = True
    return m


def _valid(box, size):
    w, h = size
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, box
    assert not box_is_degenerate(box)


@pytest.mark.parametrize("size", [(512, 512), (640, 360), (300, 900)])
@pytest.mark.parametrize(
    "phrase,quadrant",
    [
        ("add a yellow star in the top left", (0, 0)),
        ("put a bird in the upper right corner", (1, 0)),
        ("place a ball at the bottom left", (0, 1)),
        ("add a red circle to the bottom right of the image", (1, 1)),
    ],
)
def test_absolute_regions_land_in_their_quadrant(size, phrase, quadrant):
    box = parse_instruction(phrase, size).add_box
    _valid(box, size)
    w, h = size
    qx, qy = quadrant
    x0, y0, x1, y1 = box
    assert (x1 <= w / 2) if qx == 0 else (x0 >= w / 2)
    assert (y1 <= h / 2) if qy == 0 else (y0 >= h / 2)


def test_phrase_only_locations():
    size = (400, 300)
    sky = parse_instruction("add a hot air balloon in the sky", size).add_box
    ground = parse_instruction("put a dog on the ground", size).add_box
    assert (sky[1] + sky[3]) / 2 < 0.35 * 300 and (ground[1] + ground[3]) / 2 > 0.6 * 300
    left = parse_instruction("add a car on the left", size).add_box
    assert (left[0] + left[2]) / 2 < 200
    default = parse_instruction("add a cat", size).add_box
    _valid(default, size)
    cx, cy = (default[0] + default[2]) / 2, (default[1] + default[3]) / 2
    assert 0.3 * 400 < cx < 0.7 * 400 and 0.3 * 300 < cy < 0.7 * 300
    # a relation to an object without a mask still picks its side
    right = parse_instruction("add a car on the right of the house", size).add_box
    assert (right[0] + right[2]) / 2 > 200


def test_relative_to_object_masks():
    size = (512, 512)
    dog = (200, 260, 300, 380)
    table = (150, 300, 400, 420)
    man = (220, 100, 300, 460)
    objects = {"dog": _mask(size, dog), "wooden table": _mask(size, table), "man": _mask(size, man)}
    box = parse_instruction("could you add a cat on the right of the dog?", size, objects).add_box
    _valid(box, size)
    assert box[0] >= dog[2]
    box = parse_instruction("put a lamp to the left of the dog", size, objects).add_box
    assert box[2] <= dog[0]
    box = parse_instruction("add a lamp above the table", size, objects).add_box
    assert box[3] <= table[1]
    box = parse_instruction("add a ball under the dog", size, objects).add_box
    assert box[1] >= dog[3]
    hat = parse_instruction("what if the man had a hat", size, objects)
    hx0, hy0, hx1, hy1 = hat.add_box
    assert hat.raw["box"]["anchor"] == "man"
    assert man[0] <= (hx0 + hx1) / 2 <= man[2]
    assert hy0 < man[1] + 0.25 * (man[3] - man[1]) and hy1 > man[1]  # on top of the head
    nxt = parse_instruction(
        "there should be a dog next to the man", size, {"man": _mask(size, man)}
    ).add_box
    assert nxt[0] >= man[2] or nxt[2] <= man[0]


def test_anchor_lookup_skips_empty_masks_and_matches_head_nouns():
    size = (300, 300)
    objects = {"dog": np.zeros((300, 300), bool), "brown dog": _mask(size, (20, 20, 80, 80))}
    plan = parse_instruction("add a ball below the dog", size, objects)
    assert plan.raw["box"]["anchor"] == "brown dog"
    assert plan.add_box[1] >= 80


def test_boxes_are_clamped_and_shifted_inside():
    size = (200, 100)
    edge = {"dog": _mask(size, (170, 40, 200, 90))}
    box = parse_instruction("add a cat right of the dog", size, edge).add_box
    _valid(box, size)
    assert box[2] <= 200
    for tiny in [(1, 1), (3, 500), (500, 2)]:
        for phrase in ("add a hat in the top left", "add a cat", "add a dog next to the cat"):
            _valid(parse_instruction(phrase, tiny).add_box, tiny)


def test_box_scale_follows_default_add_box_frac():
    small = parse_instruction("add a cat", (400, 400), default_add_box_frac=0.1).add_box
    large = parse_instruction("add a cat", (400, 400), default_add_box_frac=0.5).add_box
    assert (small[2] - small[0]) == pytest.approx(40)
    assert (large[2] - large[0]) == pytest.approx(200)


# ------------------------------------------------------------------------------------------
# errors and the planner class
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["", "   \n\t", None, 42, b"remove the dog", "?!...", "remove the dog " * 200]
)
def test_bad_instructions_raise_instruction_error(bad):
    with pytest.raises(InstructionError):
        parse_instruction(bad)


def test_length_limit_is_inclusive():
    text = ("remove the dog " * 200)[:MAX_INSTRUCTION_CHARS]
    assert parse_instruction(text).category == Category.REMOVE
    with pytest.raises(InstructionError, match="2001 characters"):
        parse_instruction("a" * (MAX_INSTRUCTION_CHARS + 1))


def test_rule_planner_reads_request_size_and_objects():
    image = Image.new("RGB", (320, 240))
    dog = _mask((320, 240), (40, 100, 120, 200))
    req = EditRequest(
        "s1", image, "add a cat on the right of the dog", meta={"objects": {"dog": dog}}
    )
    planner = RulePlanner(default_add_box_frac=0.25)
    assert planner.name == "rules"
    (plan,) = planner.plan_batch([req])
    assert plan.category == Category.ADDITION
    assert plan.add_box[0] >= mask_to_box(dog)[2]
    blind = RulePlanner(use_object_masks=False).plan(req)
    assert blind.raw["box"]["anchor_found"] is False


def test_unnamed_background_subject_is_configurable():
    req = EditRequest("b", Image.new("RGB", (64, 64)), "change the background to a forest")
    plan = RulePlanner().plan(req)
    assert plan.object == "main subject" and plan.raw["subject_named"] is False
    assert RulePlanner(unnamed_subject="").plan(req).object == ""
    named = RulePlanner(unnamed_subject="").plan(
        EditRequest("c", req.image, "put the dog on a beach")
    )
    assert named.object == "dog" and named.raw["subject_named"] is True


def test_rule_planner_rejects_bad_settings():
    with pytest.raises(ValueError, match="default_add_box_frac"):
        RulePlanner(default_add_box_frac=0)
    with pytest.raises(ValueError, match="default_add_box_frac"):
        RulePlanner(default_add_box_frac=1.5)


def test_hydra_config_builds_the_rule_planner():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg_path = Path(__file__).parents[1] / "conf" / "planner" / "rules.yaml"
    if not cfg_path.exists():
        pytest.skip("conf/planner/rules.yaml not present")
    planner = instantiate(OmegaConf.load(cfg_path))
    assert isinstance(planner, RulePlanner)
    req = EditRequest("x", Image.new("RGB", (64, 64)), "remove the red circle")
    assert planner.plan(req).object == "red circle"


def test_scrambled_and_odd_inputs_never_crash():
    """Shuffled, truncated, joined and noisy instructions: a plan or an InstructionError."""
    import random
    import string

    rows = [r["instruction"] for r in _load("regression_dev.jsonl")]
    rng = random.Random(0)
    for _ in range(1500):
        base = rng.choice(rows).split()
        kind = rng.randrange(4)
        if kind == 0:
            rng.shuffle(base)
        elif kind == 1 and len(base) > 1:
            base.pop(rng.randrange(len(base)))
        elif kind == 2:
            base += [rng.choice(["😀", "ñandú", "日本", "\u200b", "'s", "->", ":", "?!"])]
        else:
            base = ["".join(rng.choice(string.printable) for _ in range(rng.randint(1, 40)))]
        size = (rng.randint(1, 1500), rng.randint(1, 1500))
        try:
            plan = parse_instruction(" ".join(base), size)
        except InstructionError:
            continue
        json.dumps(plan.to_dict())
        if plan.add_box is not None:
            _valid(plan.add_box, size)
