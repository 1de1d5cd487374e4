"""A generated editing benchmark with exact ground truth (``data=synthetic``).

Each sample is a procedural scene (a named textured backdrop with named flat objects such
as "red circle") plus an instruction from one of many paraphrase templates, and the exact
answer: category, object phrase, the region that must change, and the target image
rendered by the same code. It lets ``make reproduce`` produce a real, checkable results
table on a CPU in minutes, with no downloads.

Everything is a pure function of ``(seed, index)``: the same config gives the same
samples in any order and in any process.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from iiie.data.base import Dataset, GroundTruth, Sample
from iiie.imageio import load_image
from iiie.types import Category, EditRequest

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (245, 215, 30),
    "orange": (250, 140, 20),
    "purple": (140, 40, 180),
    "pink": (250, 120, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "cyan": (30, 210, 220),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon")
BACKDROPS = ("brick wall", "blue sky", "green grass", "wooden floor", "sandy beach", "checkerboard", "night sky")
FILTERS = ("grayscale", "sepia", "invert", "blur", "darken", "brighten")
REGIONS: dict[str, tuple[float, float]] = {  # name -> centre as a fraction of (w, h)
    "top left": (0.22, 0.22),
    "top right": (0.78, 0.22),
    "bottom left": (0.22, 0.78),
    "bottom right": (0.78, 0.78),
    "center": (0.5, 0.5),
    "left": (0.2, 0.5),
    "right": (0.8, 0.5),
    "top": (0.5, 0.2),
    "bottom": (0.5, 0.8),
}

TEMPLATES: dict[str, tuple[str, ...]] = {
    "remove": (
        "remove the {obj}",
        "Remove the {obj}.",
        "get rid of the {obj}",
        "delete the {obj} from the picture",
        "take the {obj} out",
        "erase the {obj}",
        "can you remove the {obj}?",
        "I want the {obj} gone",
        "the {obj} should not be there",
        "make the {obj} disappear",
    ),
    "recolor": (
        "make the {obj} {new}",
        "change the color of the {obj} to {new}",
        "turn the {obj} {new}",
        "paint the {obj} {new}",
        "the {obj} should be {new}",
        "Recolor the {obj} in {new}.",
        "can you make the {obj} {new} instead?",
        "change the {obj} into a {new} {shape}",
    ),
    "reshape": (
        "turn the {obj} into a {new}",
        "replace the {obj} with a {color} {new}",
        "make the {obj} a {new}",
        "change the {obj} to a {new}",
        "the {obj} should be a {new}",
    ),
    "background": (
        "change the background to a {scene}",
        "replace the background with a {scene}",
        "put the {obj} in front of a {scene}",
        "make the background a {scene}",
        "swap the backdrop for a {scene}",
        "turn the background into a {scene}",
        "keep the {obj} but change the background to a {scene}",
        "I want a {scene} behind the {obj}",
        "let the {obj} stand in front of a {scene}",
    ),
    "addition": (
        "add a {obj} in the {region}",
        "put a {obj} in the {region}",
        "place a {obj} at the {region}",
        "add a {obj} to the {region} of the image",
        "there should be a {obj} in the {region}",
        "insert a {obj} in the {region} corner",
        "draw a {obj} on the {region}",
        "let's add a {obj} in the {region}",
    ),
}
GLOBAL_TEMPLATES: dict[str, tuple[str, ...]] = {
    "grayscale": (
        "make the image black and white",
        "convert the photo to grayscale",
        "turn it into a greyscale picture",
        "desaturate the whole image",
        "let's see it in black and white",
        "make the whole picture grayscale",
    ),
    "sepia": (
        "apply a sepia filter",
        "give it a sepia tone",
        "make the photo look old with a sepia effect",
        "turn the picture sepia",
    ),
    "invert": (
        "invert the colors",
        "invert the colours of the image",
        "make it look like a photo negative",
        "turn the image into its negative",
    ),
    "blur": (
        "blur the whole picture",
        "make the image blurry",
        "make everything out of focus",
        "apply a blur filter to the photo",
    ),
    "darken": (
        "darken the image",
        "make everything darker",
        "make it look like dusk",
        "lower the brightness of the photo",
    ),
    "brighten": (
        "brighten the image",
        "increase the brightness",
        "make the whole photo brighter",
        "make it look sunnier and brighter",
    ),
}


@dataclass(frozen=True)
class SceneObject:
    color: str
    shape: str
    cx: float
    cy: float
    r: float

    @property
    def phrase(self) -> str:
        return f"{self.color} {self.shape}"


# --------------------------------------------------------------------------- rendering


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    """Vertices of a polygonal shape centred at (cx, cy) with circumradius r (None: circle)."""
    if shape == "circle":
        return None
    if shape == "square":
        s = r * 0.85
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    n, rot, inner = {
        "triangle": (3, -np.pi / 2, None),
        "diamond": (4, -np.pi / 2, None),
        "hexagon": (6, 0.0, None),
        "star": (5, -np.pi / 2, 0.45),
    }[shape]
    pts = []
    for k in range(n):
        a = rot + 2 * np.pi * k / n
        pts.append((cx + r * np.cos(a), cy + r * np.sin(a)))
        if inner is not None:
            a2 = a + np.pi / n
            pts.append((cx + r * inner * np.cos(a2), cy + r * inner * np.sin(a2)))
    return pts


def object_mask(obj: SceneObject, size: tuple[int, int]) -> np.ndarray:
    """Exact HxW bool mask of one object (drawn without antialiasing)."""
    canvas = Image.new("L", size, 0)
    _draw_shape(ImageDraw.Draw(canvas), obj, 255)
    return np.asarray(canvas) > 0


def _draw_shape(draw: ImageDraw.ImageDraw, obj: SceneObject, fill) -> None:
    poly = _shape_polygon(obj.shape, obj.cx, obj.cy, obj.r)
    if poly is None:
        draw.ellipse((obj.cx - obj.r, obj.cy - obj.r, obj.cx + obj.r, obj.cy + obj.r), fill=fill)
    else:
        draw.polygon(poly, fill=fill)


def render_backdrop(name: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A procedural textured backdrop as HxWx3 uint8; ``rng`` adds per-scene variation."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    noise = rng.normal(0, 1, (h, w)).astype(np.float32)
    noise = np.asarray(Image.fromarray(((noise * 20) + 128).clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2)), np.float32) - 128
    if name == "brick wall":
        bh, bw = 10, 22
        row = (yy // bh).astype(int)
        shift = (row % 2) * (bw // 2)
        mortar = ((yy % bh) < 2) | (((xx + shift) % bw) < 2)
        base = np.stack([170 + 0 * xx, 70 + 0 * xx, 50 + 0 * xx], -1)
        base[mortar] = (200, 195, 185)
    elif name == "blue sky":
        t = yy / max(h - 1, 1)
        base = np.stack([90 + 90 * t, 150 + 70 * t, 235 + 15 * t], -1)
    elif name == "green grass":
        stripes = 12 * np.sin(xx * 0.9 + 3 * np.sin(yy * 0.2))
        base = np.stack([60 + stripes, 150 + stripes, 50 + 0 * xx], -1)
    elif name == "wooden floor":
        planks = ((xx // 18) % 2) * 18
        grain = 10 * np.sin(yy * 0.35 + xx * 0.05)
        base = np.stack([150 + planks + grain, 100 + planks + grain, 60 + 0 * xx], -1)
    elif name == "sandy beach":
        t = yy / max(h - 1, 1)
        base = np.stack([230 - 10 * t, 205 - 15 * t, 150 - 20 * t], -1)
    elif name == "checkerboard":
        c = (((xx // 16) + (yy // 16)) % 2) * 120 + 60
        base = np.stack([c, c, c], -1)
    elif name == "night sky":
        t = yy / max(h - 1, 1)
        base = np.stack([15 + 20 * t, 20 + 25 * t, 60 + 40 * t], -1)
    else:
        raise ValueError(f"unknown backdrop {name!r}")
    out = base + noise[..., None] * 0.6
    return np.clip(out, 0, 255).astype(np.uint8)


def render_scene(backdrop: np.ndarray, objects: list[SceneObject]) -> Image.Image:
    img = Image.fromarray(backdrop.copy())
    draw = ImageDraw.Draw(img)
    for obj in objects:
        _draw_shape(draw, obj, COLORS[obj.color])
    return img


def apply_filter(image: Image.Image, name: str) -> Image.Image:
    """The global edits of the benchmark, as exact image functions."""
    arr = np.asarray(image, dtype=np.float32)
    if name == "grayscale":
        g = arr @ np.array([0.299, 0.587, 0.114], np.float32)
        out = np.repeat(g[..., None], 3, -1)
    elif name == "sepia":
        m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
        out = arr @ m.T
    elif name == "invert":
        out = 255.0 - arr
    elif name == "blur":
        return image.filter(ImageFilter.GaussianBlur(2.0))
    elif name == "darken":
        out = arr * 0.55
    elif name == "brighten":
        out = arr * 0.6 + 255.0 * 0.4
    else:
        raise ValueError(f"unknown global filter {name!r}")
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- dataset


class SyntheticDataset(Dataset):
    """``n`` generated samples, categories in rotation, deterministic from ``seed``.

    ``odd_inputs`` appends a few samples that exercise input handling: an RGBA image, a
    16-bit grayscale image, a truncated PNG (fails to load) and an empty instruction
    (fails to plan). Each failure is recorded per sample and the run continues.
    """

    name = "synthetic"
    CATEGORIES = (Category.REMOVE, Category.LOCAL, Category.BACKGROUND, Category.ADDITION, Category.GLOBAL)
    ODD_KINDS = ("rgba", "gray16", "truncated", "empty_instruction")

    def __init__(
        self,
        n: int = 40,
        seed: int = 0,
        width: int = 160,
        height: int = 128,
        max_objects: int = 3,
        odd_inputs: bool = False,
    ) -> None:
        if n < 0:
            raise ValueError("data.n must be >= 0")
        if min(width, height) < 32:
            raise ValueError("synthetic images must be at least 32x32")
        self.n, self.seed = int(n), int(seed)
        self.size = (int(width), int(height))
        self.max_objects = max(1, int(max_objects))
        self.odd_inputs = bool(odd_inputs)

    def ids(self) -> list[str]:
        ids = [f"syn{i:04d}" for i in range(self.n)]
        if self.odd_inputs:
            ids += [f"odd_{k}" for k in self.ODD_KINDS]
        return ids

    def fingerprint(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": 1,
            "seed": self.seed,
            "size": list(self.size),
            "max_objects": self.max_objects,
            "odd_inputs": self.odd_inputs,
        }

    # ----------------------------------------------------------------------- samples

    def load(self, sample_id: str) -> Sample:
        if sample_id.startswith("odd_"):
            return self._odd_sample(sample_id[4:])
        try:
            index = int(sample_id.removeprefix("syn"))
        except ValueError:
            raise KeyError(f"unknown synthetic sample id {sample_id!r}") from None
        return self.make(index)

    def _rng(self, index: int, salt: str = "") -> np.random.Generator:
        h = hashlib.sha256(f"{self.seed}:{index}:{salt}".encode()).digest()
        return np.random.default_rng(int.from_bytes(h[:8], "little"))

    def _place(self, rng, count: int, taken: list[SceneObject]) -> list[SceneObject]:
        w, h = self.size
        out: list[SceneObject] = []
        used = {o.phrase for o in taken}
        for _ in range(200):
            if len(out) == count:
                break
            r = float(rng.uniform(0.09, 0.16) * min(w, h))
            cx = float(rng.uniform(r + 2, w - r - 2))
            cy = float(rng.uniform(r + 2, h - r - 2))
            color = str(rng.choice(list(COLORS)))
            shape = str(rng.choice(SHAPES))
            cand = SceneObject(color, shape, cx, cy, r)
            if cand.phrase in used:
                continue
            if any(np.hypot(cx - o.cx, cy - o.cy) < (r + o.r) * 1.15 for o in taken + out):
                continue
            out.append(cand)
            used.add(cand.phrase)
        return out

    def make(self, index: int) -> Sample:
        """Build sample ``index`` (category = index mod 5)."""
        rng = self._rng(index)
        category = self.CATEGORIES[index % len(self.CATEGORIES)]
        backdrop_name = str(rng.choice(BACKDROPS))
        backdrop = render_backdrop(backdrop_name, self.size, rng)
        n_obj = 1 if category is Category.BACKGROUND else int(rng.integers(1, self.max_objects + 1))
        objects = self._place(rng, n_obj, [])
        source = render_scene(backdrop, objects)
        sid = f"syn{index:04d}"
        objects_meta = {o.phrase: object_mask(o, self.size) for o in objects}
        extra: dict[str, Any] = {"backdrop": backdrop_name, "objects": [o.phrase for o in objects]}

        if category is Category.REMOVE:
            target_obj = objects[int(rng.integers(len(objects)))]
            kept = [o for o in objects if o is not target_obj]
            target = render_scene(backdrop, kept)
            instruction = str(rng.choice(TEMPLATES["remove"])).format(obj=target_obj.phrase)
            truth = GroundTruth(category, target_obj.phrase, objects_meta[target_obj.phrase], target)
            extra["edit"] = "remove"
        elif category is Category.LOCAL:
            target_obj = objects[int(rng.integers(len(objects)))]
            if rng.random() < 0.6:
                new_color = str(rng.choice([c for c in COLORS if c != target_obj.color]))
                new_obj = SceneObject(new_color, target_obj.shape, target_obj.cx, target_obj.cy, target_obj.r)
                instruction = str(rng.choice(TEMPLATES["recolor"])).format(
                    obj=target_obj.phrase, new=new_color, shape=target_obj.shape
                )
                extra["edit"] = "recolor"
            else:
                new_shape = str(rng.choice([s for s in SHAPES if s != target_obj.shape]))
                new_obj = SceneObject(target_obj.color, new_shape, target_obj.cx, target_obj.cy, target_obj.r)
                instruction = str(rng.choice(TEMPLATES["reshape"])).format(
                    obj=target_obj.phrase, new=new_shape, color=target_obj.color
                )
                extra["edit"] = "reshape"
            scene = [new_obj if o is target_obj else o for o in objects]
            target = render_scene(backdrop, scene)
            gt_mask = objects_meta[target_obj.phrase] | object_mask(new_obj, self.size)
            truth = GroundTruth(category, target_obj.phrase, gt_mask, target)
            extra["new_object"] = new_obj.phrase
        elif category is Category.BACKGROUND:
            subject = objects[0]
            scene_name = str(rng.choice([b for b in BACKDROPS if b != backdrop_name]))
            new_backdrop = render_backdrop(scene_name, self.size, self._rng(index, "backdrop"))
            target = render_scene(new_backdrop, objects)
            instruction = str(rng.choice(TEMPLATES["background"])).format(obj=subject.phrase, scene=scene_name)
            gt_mask = ~objects_meta[subject.phrase]
            # The subject to keep is named only by some templates; "" = not named.
            named = subject.phrase if subject.phrase in instruction else ""
            truth = GroundTruth(category, named, gt_mask, target)
            extra["new_backdrop"] = scene_name
        elif category is Category.ADDITION:
            region = str(rng.choice(list(REGIONS)))
            fx, fy = REGIONS[region]
            w, h = self.size
            r = 0.13 * min(w, h)
            taken = {o.phrase for o in objects}
            choices = [(c, s) for c in COLORS for s in SHAPES if f"{c} {s}" not in taken]
            color, shape = choices[int(rng.integers(len(choices)))]
            new_obj = SceneObject(color, shape, fx * w, fy * h, r)
            target = render_scene(backdrop, objects + [new_obj])
            instruction = str(rng.choice(TEMPLATES["addition"])).format(obj=new_obj.phrase, region=region)
            gt_mask = object_mask(new_obj, self.size)
            truth = GroundTruth(category, new_obj.phrase, gt_mask, target)
            extra.update(region=region, edit="add")
        else:
            filt = str(rng.choice(FILTERS))
            instruction = str(rng.choice(GLOBAL_TEMPLATES[filt]))
            target = apply_filter(source, filt)
            truth = GroundTruth(
                category, "", np.ones(source.size[::-1], bool), target,
                source_caption=f"a picture of {_describe(objects, backdrop_name)}",
                target_caption=f"a {filt} picture of {_describe(objects, backdrop_name)}",
            )
            extra["filter"] = filt
        truth.extra = extra
        request = EditRequest(sid, source, instruction, meta={"objects": objects_meta})
        return Sample(request, truth)

    def _odd_sample(self, kind: str) -> Sample:
        """Input-handling cases, built from a regular sample's image."""
        base = self.make(0)
        img = base.request.image
        buf = io.BytesIO()
        if kind == "rgba":
            rgba = img.convert("RGBA")
            a = np.asarray(rgba).copy()
            a[..., 3] = 255
            a[:4, :4, 3] = 0  # a transparent corner, composited over white
            Image.fromarray(a, "RGBA").save(buf, "PNG")
        elif kind == "gray16":
            g = (np.asarray(img.convert("L"), np.uint16) * 257).astype(np.uint16)
            Image.fromarray(g).save(buf, "PNG")
        elif kind == "truncated":
            img.save(buf, "PNG")
            buf = io.BytesIO(buf.getvalue()[: len(buf.getvalue()) // 3])
        elif kind == "empty_instruction":
            img.save(buf, "PNG")
        else:
            raise KeyError(f"unknown odd sample kind {kind!r}")
        image = load_image(buf.getvalue())  # raises ImageLoadError for the truncated file
        instruction = "" if kind == "empty_instruction" else base.request.instruction
        # The 16-bit sample is grayscale, so the colour target no longer applies.
        truth = base.truth if kind != "gray16" else GroundTruth(base.truth.category, base.truth.object, base.truth.mask)
        request = EditRequest(f"odd_{kind}", image, instruction, meta=base.request.meta)
        return Sample(request, truth)


def _describe(objects: list[SceneObject], backdrop: str) -> str:
    names = [f"a {o.phrase}" for o in objects]
    return (", ".join(names) + f" on a {backdrop}") if names else f"a {backdrop}"


__all__ = ["SyntheticDataset", "apply_filter", "object_mask", "render_scene"]
