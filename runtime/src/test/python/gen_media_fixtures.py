#!/usr/bin/python3
"""Generates the media decoding / preprocessing fixtures for the Java tests.

Independent reference: Pillow (Debian bookworm python3-pil 9.4.0, libjpeg-turbo 2.1.5, zlib
1.2.13) and numpy 1.24. Run with Debian's interpreter from the repository root:

    /usr/bin/python3 runtime/src/test/python/gen_media_fixtures.py

Writes runtime/src/test/resources/media/{*.png,*.jpg,*.gif,*.bmp,...} and expected.json:
  decode[]:     file, width, height, rgb_sha256 of Image.open(f).convert("RGB") (what the Java
                decoder must return with AlphaMode.DROP), plus a note where Java deliberately
                differs from Pillow.
  resize[]:     source file, (w, h), PIL filter id, sha256 of im.resize((w, h), filter) bytes.
  preprocess[]: source file, CLIP-style config, float64 sum and sha256 of the float32 CHW tensor.
"""
import hashlib
import io
import json
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "media")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20240601)


def photo(w, h):
    """A smooth, photo-like RGB image with some high-frequency detail (uint8 HWC)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0)
    g = 255 * x / max(w - 1, 1)
    b = 255 * y / max(h - 1, 1)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    img[h // 3:h // 2, w // 4:w // 2] = [250, 20, 30]  # a hard-edged block
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def sha(b):
    return hashlib.sha256(b).hexdigest()


decode = []


def save(name, im, **kw):
    path = os.path.join(OUT, name)
    im.save(path, **kw)
    with Image.open(path) as re:
        rgb = re.convert("RGB")
        if name.endswith(".jpg"):
            # Lossy decoders differ slightly: keep Pillow's pixels for a tolerance comparison.
            rgb.save(path + ".pillow.png")
        decode.append({"file": name, "mode": re.mode, "width": rgb.width, "height": rgb.height,
                       "rgb_sha256": sha(rgb.tobytes())})


base = photo(61, 47)
rgb = Image.fromarray(base, "RGB")
save("rgb.png", rgb)
save("rgb.bmp", rgb)
save("rgb_q90.jpg", rgb, quality=90)
save("rgb_q90_444.jpg", rgb, quality=90, subsampling=0)
save("rgb_progressive.jpg", rgb, quality=88, progressive=True)
save("rgba.bmp", Image.merge("RGBA", rgb.split() + (rgb.convert("L"),)))
save("gray.png", rgb.convert("L"))
save("gray.jpg", rgb.convert("L"), quality=92)
save("gray.bmp", rgb.convert("L"))
alpha = Image.fromarray(np.tile(np.linspace(0, 255, 61).astype(np.uint8), (47, 1)), "L")
rgba = rgb.copy()
rgba.putalpha(alpha)
save("rgba.png", rgba)
la = rgb.convert("L")
la.putalpha(alpha)
save("gray_alpha.png", la.convert("LA"))
pal = rgb.quantize(colors=37, dither=Image.Dither.NONE)
save("palette.png", pal)
save("palette.gif", pal)
save("palette.bmp", pal)
pal_t = pal.copy()
save("palette_trns.png", pal_t, transparency=3)
save("bilevel.png", rgb.convert("1"))
save("palette4.png", rgb.quantize(colors=16, dither=Image.Dither.NONE), bits=4)
# 16-bit RGB PNG: pillow cannot write RGB;16 directly, so build it with a PNG writer by hand
def png_chunk(tag, data):
    import zlib
    return (len(data).to_bytes(4, "big") + tag + data
            + (zlib.crc32(tag + data) & 0xFFFFFFFF).to_bytes(4, "big"))


def write_png16(name, arr, color_type):
    import zlib
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))
    data = (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big")
                        + bytes([16, color_type, 0, 0, 0]))
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    return data


def write_png_gray_lowbits(name, arr, bits):
    """Grey PNG with 1/2/4-bit samples packed MSB first (Pillow only writes 8-bit L)."""
    import zlib
    h, w = arr.shape
    per = 8 // bits
    rows = []
    for i in range(h):
        row = bytearray((w + per - 1) // per)
        for j in range(w):
            row[j // per] |= int(arr[i, j]) << (8 - bits * (j % per + 1))
        rows.append(b"\x00" + bytes(row))
    data = (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big")
                        + bytes([bits, 0, 0, 0, 0]))
            + png_chunk(b"IDAT", zlib.compress(b"".join(rows))) + png_chunk(b"IEND", b""))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    with Image.open(os.path.join(OUT, name)) as re:
        decode.append({"file": name, "mode": re.mode, "width": w, "height": h,
                       "rgb_sha256": sha(re.convert("RGB").tobytes())})


write_png_gray_lowbits("gray4.png", base[:, :, 0] >> 4, 4)
write_png_gray_lowbits("gray2.png", base[:, :, 1] >> 6, 2)

arr16 = (base.astype(np.uint32) * 257 + rng.integers(0, 257, base.shape)).astype(np.uint16)
write_png16("rgb16.png", arr16, 2)
with Image.open(os.path.join(OUT, "rgb16.png")) as re:
    # Pillow unpacks RGB;16B by taking the high byte of every sample.
    decode.append({"file": "rgb16.png", "mode": re.mode, "width": 61, "height": 47,
                   "rgb_sha256": sha(re.convert("RGB").tobytes())})
rgba16 = np.concatenate([arr16, (np.arange(61, dtype=np.uint32)[None, :, None].repeat(47, 0) * 1000).astype(np.uint16)], 2)
write_png16("rgba16.png", rgba16, 6)
with Image.open(os.path.join(OUT, "rgba16.png")) as re:
    decode.append({"file": "rgba16.png", "mode": re.mode, "width": 61, "height": 47,
                   "rgb_sha256": sha(re.convert("RGB").tobytes())})
gray16 = arr16[:, :, 1]
write_png16("gray16.png", gray16, 0)
# Pillow opens 16-bit grey as mode I and convert("RGB") clips to 0..255 (so nearly white);
# tokenpress takes the high byte instead, like Pillow does for 16-bit RGB. Expected: high byte.
decode.append({"file": "gray16.png", "mode": "I;16", "width": 61, "height": 47,
               "rgb_sha256": sha(np.repeat((gray16 >> 8).astype(np.uint8)[:, :, None], 3, 2).tobytes()),
               "note": "Pillow 9.4 clips mode I to 255; tokenpress uses the high byte"})
cmyk = rgb.convert("CMYK")
save("cmyk.jpg", cmyk, quality=95)
# animated GIF: first frame must be used
frames = [Image.fromarray(photo(40, 30), "RGB").quantize(64) for _ in range(3)]
frames[0].save(os.path.join(OUT, "anim.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
with Image.open(os.path.join(OUT, "anim.gif")) as re:
    decode.append({"file": "anim.gif", "mode": re.mode, "width": re.width, "height": re.height,
                   "rgb_sha256": sha(re.convert("RGB").tobytes())})
rgb.save(os.path.join(OUT, "rgb.webp"), lossless=True)  # unsupported format probe
rgb.save(os.path.join(OUT, "rgb.tiff"))
with Image.open(os.path.join(OUT, "rgb.tiff")) as re:
    decode.append({"file": "rgb.tiff", "mode": re.mode, "width": re.width, "height": re.height,
                   "rgb_sha256": sha(re.convert("RGB").tobytes())})

# Resize goldens on a larger photo (down- and up-scaling, every filter).
big = Image.fromarray(photo(203, 157), "RGB")
big.save(os.path.join(OUT, "photo_203x157.png"))
resize = []
for (w, h) in [(128, 99), (64, 49), (31, 23), (203, 128), (300, 232), (7, 5), (165, 128), (203, 157)]:
    for f in [0, 1, 2, 3, 4, 5]:
        out = big.resize((w, h), f)
        resize.append({"file": "photo_203x157.png", "width": w, "height": h, "filter": f,
                       "sha256": sha(out.tobytes())})


def clip_preprocess(im, size, crop, resample, mean, std):
    """Hugging Face CLIPImageProcessor semantics (transformers 4.4x), written out with PIL+numpy."""
    im = im.convert("RGB")
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    im = im.resize((nw, nh), resample)
    a = np.asarray(im)
    if nh < crop or nw < crop:  # transformers.image_transforms.center_crop pads with zeros first
        ch, cw = max(crop, nh), max(crop, nw)
        canvas = np.zeros((ch, cw, 3), np.uint8)
        tp, lp = -(-(ch - nh) // 2), -(-(cw - nw) // 2)
        canvas[tp:tp + nh, lp:lp + nw] = a
        top, left = (nh - crop) // 2 + tp, (nw - crop) // 2 + lp
        a = canvas[max(0, top):top + crop, max(0, left):left + crop]
    else:
        top = (nh - crop) // 2
        left = (nw - crop) // 2
        a = a[top:top + crop, left:left + crop]
    a = (a.astype(np.float64) * (1 / 255)).astype(np.float32)
    a = (a - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    return a.transpose(2, 0, 1).astype(np.float32)


MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
preprocess = []
for name in ["photo_203x157.png", "rgb.png", "gray.png", "rgba.png", "palette.gif"]:
    for size, crop, f in [(128, 128, 2), (32, 32, 3), (64, 48, 2), (224, 224, 2), (32, 41, 2)]:
        with Image.open(os.path.join(OUT, name)) as im:
            t = clip_preprocess(im, size, crop, f, MEAN, STD)
        preprocess.append({"file": name, "size": size, "crop": crop, "filter": f,
                           "mean": MEAN, "std": STD, "sum": float(t.astype(np.float64).sum()),
                           "sha256": sha(t.astype("<f4").tobytes())})

# Real photos (real/SOURCES.md): decode and preprocessing goldens.
import base64
real = []
for name in ["real/chelsea.png", "real/hubble_deep_field.jpg", "real/no_time_for_that_tiny.gif"]:
    with Image.open(os.path.join(OUT, name)) as im:
        rgb = im.convert("RGB")
        a = np.asarray(rgb)
        h, w = a.shape[:2]
        y0, x0 = h // 2 - 16, w // 2 - 16
        crop = np.ascontiguousarray(a[max(0, y0):max(0, y0) + 32, max(0, x0):max(0, x0) + 32])
        entry = {"file": name, "width": w, "height": h, "rgb_sha256": sha(rgb.tobytes()),
                 "channel_means": [float(a[..., c].mean()) for c in range(3)],
                 "center_crop": {"x": max(0, x0), "y": max(0, y0), "w": crop.shape[1], "h": crop.shape[0],
                                 "rgb_base64": base64.b64encode(crop.tobytes()).decode()},
                 "preprocess": []}
        for size, crop_size, f in [(128, 128, 2), (224, 224, 3), (336, 336, 3)]:
            t = clip_preprocess(im, size, crop_size, f, MEAN, STD)
            entry["preprocess"].append({"size": size, "crop": crop_size, "filter": f,
                                        "sum": float(t.astype(np.float64).sum()),
                                        "sha256": sha(t.astype("<f4").tobytes())})
        real.append(entry)

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump({"generator": "gen_media_fixtures.py",
               "pillow": Image.__version__, "numpy": np.__version__,
               "decode": decode, "resize": resize, "preprocess": preprocess, "real": real}, f, indent=1)
print("wrote", len(decode), "decode,", len(resize), "resize,", len(preprocess), "preprocess cases")
