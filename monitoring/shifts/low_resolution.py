"""Low-resolution kinds: each must raise the `low_resolution` flag. A low-resolution photo has at most 3/8 of
the detail of its source (96 px of 256), whatever its pixel count."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from monitoring.shifts.kinds import LOW_RES, Apply, kind
from monitoring.shifts.ops import Rng, blurred, jpeg, lerp_log, resized, sensor_noise, to_array, to_image


LEFT = (3 / 8, 3 / 32)  # the share of its source's detail a low-resolution photo keeps, at strength 0 and 1


def _shrunk(image: Image.Image, s: float, method: Image.Resampling = Image.Resampling.BILINEAR) -> Image.Image:
    """`image` made low-resolution at strength `s`: reduced to LEFT's share of its size."""
    return resized(image, min(image.size) * lerp_log(*LEFT, s), method)


def _small(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    return _shrunk(image, s)


def _upscaled(method: Image.Resampling) -> Apply:
    def apply(image: Image.Image, s: float, rng: Rng) -> Image.Image:
        return _shrunk(image, s).resize(image.size, method)
    return apply


def _thumbnail_chain(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A thumbnail saved, then enlarged by another site: small (3/8 down to 3/32), JPEG 75 down to 40,
    enlarged back with Lanczos, saved again at 85."""
    small = _shrunk(image, s)
    saved = jpeg(small, round(75 - 35 * float(rng.uniform(0, 1))))
    return jpeg(saved.resize(image.size, Image.Resampling.LANCZOS), 85)


def _blurred(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """Out of focus at full size: detail gone as in an upscaled thumbnail, the pixel count intact."""
    return blurred(image, lerp_log(1.5, 6, s))


def _digital_zoom(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A phone's digital zoom: a crop of 3/8 down to 3/32 of the frame, anywhere in it, enlarged to the full
    size (bicubic) and saved at JPEG 80 to 92."""
    w, h = image.size
    f = lerp_log(*LEFT, s)
    cw, ch = max(1, round(w * f)), max(1, round(h * f))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    crop = image.convert("RGB").crop((x0, y0, x0 + cw, y0 + ch))
    return jpeg(crop.resize(image.size, Image.Resampling.BICUBIC), int(rng.integers(80, 93)))


def _sharpened_upscale(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A small photo enlarged back and "enhanced" by a site: 3/8 down to 3/32 of the size, enlarged with
    Lanczos, then an unsharp mask (radius 1 to 3 px at 256 px, 80 to 200%)."""
    big = _shrunk(image, s).resize(image.size, Image.Resampling.LANCZOS)
    radius = float(rng.uniform(1, 3)) * min(image.size) / 256
    return big.filter(ImageFilter.UnsharpMask(radius=radius, percent=int(rng.integers(80, 201)), threshold=0))


def _enhanced_upscale(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A small photo enlarged by a photo app and "enhanced" with its sharpness slider: 3/8 down to 3/32 of
    the size (box filter), enlarged (bicubic), sharpness 2 to 4 (PIL's 3 x 3 kernel), JPEG 75 to 92."""
    small = _shrunk(image, s, Image.Resampling.BOX)
    big = ImageEnhance.Sharpness(small.resize(image.size, Image.Resampling.BICUBIC)).enhance(float(rng.uniform(2, 4)))
    return jpeg(big, int(rng.integers(75, 93)))


def _upscaled_grain(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A small photo enlarged (Lanczos) by a site that adds a light film grain to hide the blur: 3/8 down to
    3/32 of the size, grain of 0.2 to 0.8% of full scale, JPEG 85 to 95."""
    small = _shrunk(image, s, Image.Resampling.LANCZOS)
    grained = sensor_noise(to_array(small.resize(image.size, Image.Resampling.LANCZOS)), rng,
                           float(rng.uniform(0.002, 0.008)))
    return jpeg(to_image(grained), int(rng.integers(85, 96)))


def _enlarged_past(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A small photo enlarged past its source's size: 3/8 down to 3/32 of the size, enlarged (bicubic) to 1
    to 1.5 times the source's size, so it is decoded larger than any training photo."""
    small = _shrunk(image, s)
    return resized(small, min(image.size) * float(rng.uniform(1.0, 1.5)), Image.Resampling.BICUBIC)


def _watermarked(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A small photo enlarged (bicubic) by a site that then stamps its name on it, sharp: 3/8 down to 3/32 of
    the size; white text with a dark outline in a corner, 1/12 to 1/8 of the frame's height."""
    big = _shrunk(image, s).resize(image.size, Image.Resampling.BICUBIC)
    w, h = big.size
    size = max(8, round(h * float(rng.uniform(1 / 12, 1 / 8))))
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(big)
    x, y = (round(w * 0.05), round(h * 0.05)) if rng.random() < 0.5 else (round(w * 0.55), round(h * 0.85) - size)
    draw.text((x, y), "roomsite.example", font=font, fill=(255, 255, 255), stroke_width=max(1, size // 12),
              stroke_fill=(20, 20, 20))
    return jpeg(big, int(rng.integers(80, 93)))


def _framed(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A small photo enlarged (Lanczos) and put in a sharp frame: 3/8 down to 3/32 of the size, a white or
    black border of 2 to 6 px at 256 px around the picture."""
    w, h = image.size
    b = max(1, round(float(rng.uniform(2, 6)) * min(w, h) / 256))
    inner = _shrunk(image, s).resize((w - 2 * b, h - 2 * b), Image.Resampling.LANCZOS)
    out = Image.new("RGB", (w, h), (255, 255, 255) if rng.random() < 0.5 else (0, 0, 0))
    out.paste(inner, (b, b))
    return out


def _date_stamped(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """An old camera's photo enlarged (Lanczos): 3/8 down to 3/32 of the size, the date burnt in small orange
    digits at the bottom right, 1/22 to 1/14 of the frame's height, JPEG 85 to 95."""
    big = _shrunk(image, s).resize(image.size, Image.Resampling.LANCZOS)
    w, h = big.size
    size = max(6, round(h * float(rng.uniform(1 / 22, 1 / 14))))
    stamp = f"'{int(rng.integers(0, 100)):02d} {int(rng.integers(1, 13)):2d} {int(rng.integers(1, 29)):2d}"
    ImageDraw.Draw(big).text((round(w * 0.7), round(h * 0.92) - size), stamp,
                             font=ImageFont.load_default(size=size), fill=(255, 150, 40))
    return jpeg(big, int(rng.integers(85, 96)))


def _banner(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A listing site's card: 3/8 down to 3/32 of the size, enlarged (bicubic), a dark strip across the
    bottom (1/10 to 1/7 of the height) with the price and rooms in white on it, JPEG 80 to 92."""
    big = _shrunk(image, s).resize(image.size, Image.Resampling.BICUBIC)
    w, h = big.size
    strip = round(h * float(rng.uniform(1 / 10, 1 / 7)))
    draw = ImageDraw.Draw(big, "RGBA")
    draw.rectangle((0, h - strip, w, h), fill=(15, 15, 15, int(rng.integers(170, 256))))
    text = f"{int(rng.integers(1, 5))} bed - {int(rng.integers(1, 3))} bath - ${int(rng.integers(60, 400))}/night"
    draw.text((round(w * 0.04), h - round(strip * 0.8)), text, font=ImageFont.load_default(size=round(strip * 0.55)),
              fill=(255, 255, 255, 255))
    return jpeg(big, int(rng.integers(80, 93)))


def _badged(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A small photo enlarged (Lanczos) with a site's badge on it: 3/8 down to 3/32 of the size, a sharp
    rounded label with a short word (1/6 to 1/4 of the width) in the top left or right corner."""
    big = _shrunk(image, s).resize(image.size, Image.Resampling.LANCZOS)
    w, h = big.size
    bw = round(w * float(rng.uniform(1 / 6, 1 / 4)))
    bh = max(6, round(bw * 0.3))
    x0 = round(w * 0.03) if rng.random() < 0.5 else w - round(w * 0.03) - bw
    y0 = round(h * 0.04)
    draw = ImageDraw.Draw(big)
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    draw.rounded_rectangle((x0, y0, x0 + bw, y0 + bh), radius=bh // 3, fill=colour, outline=(255, 255, 255),
                           width=max(1, bh // 10))
    draw.text((x0 + bh // 3, y0 + bh // 5), str(rng.choice(["NEW", "TOP", "HOT", "5.0"])),
              font=ImageFont.load_default(size=round(bh * 0.6)), fill=(255, 255, 255))
    return big


def _tiled_watermark(image: Image.Image, s: float, rng: Rng) -> Image.Image:
    """A stock site's preview: 3/8 down to 3/32 of the size, enlarged (bicubic), its name repeated in rows
    across the whole frame in translucent white (alpha 60 to 140), JPEG 80 to 92."""
    big = _shrunk(image, s).resize(image.size, Image.Resampling.BICUBIC).convert("RGBA")
    w, h = big.size
    size = max(8, round(h * float(rng.uniform(1 / 14, 1 / 9))))
    layer = Image.new("RGBA", big.size, (0, 0, 0, 0))
    draw, font = ImageDraw.Draw(layer), ImageFont.load_default(size=size)
    alpha = int(rng.integers(60, 141))
    for row, y in enumerate(range(-size, h, 3 * size)):
        for x in range(-((row * 2 * size) % (6 * size)), w, 10 * size):
            draw.text((x, y), "roomsite", font=font, fill=(255, 255, 255, alpha))
    return jpeg(Image.alpha_composite(big, layer), int(rng.integers(80, 93)))


kind("small", LOW_RES, about="a small upload: 3/8 down to 3/32 of the size (96 to 24 px of 256)")(_small)
kind("upscaled", LOW_RES, about="small, then blown up again (bicubic)")(_upscaled(Image.Resampling.BICUBIC))
kind("upscaled_bilinear", LOW_RES, held_out=True,
     about="small, then blown up again (bilinear)")(_upscaled(Image.Resampling.BILINEAR))
kind("blurred", LOW_RES, held_out=True, about="out of focus at full size")(_blurred)
kind("thumbnail_chain", LOW_RES, held_out=True,
     about="a compressed thumbnail enlarged back (Lanczos) and compressed again")(_thumbnail_chain)
kind("digital_zoom", LOW_RES, held_out=True,
     about="a crop of 3/8 down to 3/32 of the frame enlarged (bicubic)")(_digital_zoom)
kind("sharpened_upscale", LOW_RES, held_out=True,
     about="small, enlarged back (Lanczos), then sharpened (unsharp mask)")(_sharpened_upscale)
kind("enhanced_upscale", LOW_RES, held_out=True,
     about="small (box), enlarged (bicubic), sharpness slider, JPEG")(_enhanced_upscale)
kind("upscaled_grain", LOW_RES, held_out=True,
     about="small, enlarged (Lanczos), a light film grain on top, JPEG")(_upscaled_grain)
kind("enlarged_past", LOW_RES, held_out=True,
     about="small, enlarged (bicubic) to 1 to 1.5 times its source's size")(_enlarged_past)
kind("watermarked", LOW_RES, held_out=True,
     about="small, enlarged (bicubic), a site's name stamped on it, sharp")(_watermarked)
kind("framed", LOW_RES, held_out=True, about="small, enlarged (Lanczos), inside a sharp border")(_framed)
kind("date_stamped", LOW_RES, held_out=True,
     about="small, enlarged (Lanczos), a camera's date burnt in at the bottom right")(_date_stamped)
kind("banner", LOW_RES, held_out=True,
     about="small, enlarged (bicubic), a site's strip of price and rooms across the bottom")(_banner)
kind("badged", LOW_RES, held_out=True, about="small, enlarged (Lanczos), a site's sharp badge in a corner")(_badged)
kind("tiled_watermark", LOW_RES, held_out=True,
     about="small, enlarged (bicubic), a stock site's name in rows across the frame, translucent")(_tiled_watermark)
