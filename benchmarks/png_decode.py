"""PNG decoding per core: PIL (the FID loader's), torchvision's libpng, and imagecodecs' libpng and libspng
where installed, on 512 px PNGs at two noise levels and two zlib levels. Each decoder's pixels are
checked against PIL's first.

The FID features' loader decodes in worker processes, so a host's decode bound is its cores over the
milliseconds per PNG measured here (benchmarks/README.md, the metric engine).

    python3 benchmarks/png_decode.py            # about a minute on one core
"""
from __future__ import annotations

import argparse
import io
import json
import time

import numpy as np
import torch
from PIL import Image


def png(noise: float, level: int, rng: np.random.Generator) -> bytes:
    """A smooth colour field plus Gaussian noise, as ``metrics_speed.write_pngs`` draws them."""
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((512, 512), Image.BILINEAR), dtype=np.float64)
    pixels = np.clip(smooth + rng.normal(0, noise, smooth.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def decoders() -> dict:
    from torchvision.io import decode_png

    found = {"PIL": lambda data: np.asarray(Image.open(io.BytesIO(data)).convert("RGB")),
             "torchvision": lambda data: decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8))
             .permute(1, 2, 0).numpy()}
    try:
        import imagecodecs

        found["imagecodecs libpng"] = imagecodecs.png_decode
        found["imagecodecs libspng"] = imagecodecs.spng_decode
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16, help="PNGs per case, each decoded 4 times")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    for noise in (12.0, 2.0):
        for level in (6, 1):
            files = [png(noise, level, rng) for _ in range(max(args.files, 2))]
            truth = decoders()["PIL"](files[0])
            row = {"noise": noise, "zlib_level": level, "kib": round(np.mean([len(f) for f in files]) / 1024)}
            for name, decode in decoders().items():
                if not np.array_equal(decode(files[0]), truth):
                    raise SystemExit(f"{name} decodes other pixels than PIL")
                decode(files[1])
                started = time.perf_counter()
                for _ in range(4):
                    for data in files:
                        decode(data)
                row[f"{name} ms"] = round((time.perf_counter() - started) / (4 * len(files)) * 1000, 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
