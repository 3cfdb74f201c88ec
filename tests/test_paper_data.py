"""Paper-suite data, offline: tiny stand-ins of the real archives, fetched through file:// URLs.

The stand-ins have the real layout (``val2017/<id>.jpg``, ``annotations/captions_val2017.json``,
``dreambooth-<commit>/dataset/<subject>/00.jpg`` and ``prompts_and_classes.txt`` in its real format);
their checksums replace the real ones in ``paper_data.DOWNLOADS`` for the test only.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipbench import paper_data as pd
from ipbench.io import read_jsonl
from ipbench.published import CITATIONS, PUBLISHED, TASKS, published

ROOT = f"dreambooth-{pd.DREAMBOOTH_COMMIT}/"

PROMPTS_AND_CLASSES = """Classes

subject_name,class
backpack,backpack
dog,dog
robot_toy,toy

Prompts

Object Prompts

prompt_list = [
'a {0} {1} in the jungle'.format(unique_token, class_token),
'a {0} {1} on the beach'.format(unique_token, class_token),
'a red {0} {1}'.format(unique_token, class_token)
]

Live Subject Prompts

prompt_list = [
'a {0} {1} in the jungle'.format(unique_token, class_token),
'a {0} {1} wearing a red hat'.format(unique_token, class_token),
'a {0} {1} in a chef outfit'.format(unique_token, class_token),
'a cube shaped {0} {1}'.format(unique_token, class_token)
]
"""

COCO_FILES = ("val2017.zip", "annotations_trainval2017.zip", "val2014.zip", "annotations_trainval2014.zip")
COCO_IDS = [139, 285, 632, 724, 776, 785]  # 776 is greyscale; 802 has no caption and must be skipped


def jpeg(seed: int, size=(20, 14), mode="RGB") -> bytes:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(array).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def coco_archives(folder: Path, split: str) -> tuple[Path, Path]:
    prefix = "COCO_val2014_" if split == "val2014" else ""
    images, annotations, members = [], [], {}
    for k, image_id in enumerate(COCO_IDS + [802]):
        file_name = f"{prefix}{image_id:012d}.jpg"
        size = (24, 12) if k % 2 else (10, 16)
        members[f"{split}/{file_name}"] = jpeg(image_id, size, "L" if image_id == 776 else "RGB")
        images.append({"id": image_id, "file_name": file_name, "width": size[0], "height": size[1]})
        if image_id != 802:
            for c in range(5):
                annotations.append({"id": 10_000 + 10 * image_id + c, "image_id": image_id,
                                    "caption": f"  Photo {image_id} caption {c}.\n"})
    captions = json.dumps({"info": {}, "images": images, "annotations": annotations}).encode()
    images_zip = write_zip(folder / f"{split}.zip", members)
    annotations_zip = write_zip(folder / f"annotations_trainval{split[-4:]}.zip",
                                {f"annotations/captions_{split}.json": captions,
                                 f"annotations/instances_{split}.json": b"{}"})
    return images_zip, annotations_zip


def dreambooth_members(counts=None) -> dict[str, bytes]:
    counts = counts or {"backpack": 3, "dog": 4, "robot_toy": 2}
    members = {f"{ROOT}README.md": b"# DreamBooth Dataset\n",
               f"{ROOT}dataset/prompts_and_classes.txt": PROMPTS_AND_CLASSES.encode(),
               f"{ROOT}dataset/references_and_licenses.txt": b"licences\n"}
    for s, (subject, count) in enumerate(counts.items()):
        for k in range(count):
            members[f"{ROOT}dataset/{subject}/{k:02d}.jpg"] = jpeg(100 * s + k, (18 + k, 15))
    return members


def file_table(members: dict[str, bytes]) -> dict[str, tuple[int, str]]:
    return {name[len(ROOT):]: (len(data), hashlib.sha256(data).hexdigest())
            for name, data in members.items() if name.startswith(f"{ROOT}dataset/")}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stand_in(monkeypatch, name: str, path: Path, files=None) -> str:
    """Point table entry ``name`` at ``path`` (file:// URL, its checksums); return the URL."""
    url = path.resolve().as_uri()
    entry = pd.DOWNLOADS[name]
    if files is None:
        new = replace(entry, url=url, sha256=sha256(path), size=path.stat().st_size)
    else:
        new = replace(entry, url=url, files=files)
    monkeypatch.setitem(pd.DOWNLOADS, name, new)
    return url


@pytest.fixture
def sources(tmp_path, monkeypatch):
    """Stand-in archives registered in the table, downloaded through file:// into downloads/."""
    origin = tmp_path / "origin"
    origin.mkdir()
    paths = {}
    for split in ("val2017", "val2014"):
        images_zip, annotations_zip = coco_archives(origin, split)
        for path in (images_zip, annotations_zip):
            stand_in(monkeypatch, path.name, path)
    members = dreambooth_members()
    archive = write_zip(origin / "dreambooth.zip", members)
    stand_in(monkeypatch, pd.DREAMBENCH_ARCHIVE, archive, file_table(members))
    for name in COCO_FILES + (pd.DREAMBENCH_ARCHIVE,):
        paths[name] = pd.download(name, tmp_path / "downloads" / name)
    paths["members"] = members
    return paths


def coco(sources, split: str, **override) -> dict[str, Path]:
    """The builder's path arguments for ``split``."""
    year = split[-4:]
    return {"images_zip": sources[f"val{year}.zip"],
            "annotations_zip": sources[f"annotations_trainval{year}.zip"], **override}


def listing(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the real table ---------------------------------------------------------------------------------------

def test_table_has_the_real_files():
    assert pd.DOWNLOADS["val2017.zip"].url == "http://images.cocodataset.org/zips/val2017.zip"
    assert pd.DOWNLOADS["annotations_trainval2017.zip"].url == \
        "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"
    for name in COCO_FILES:
        entry = pd.DOWNLOADS[name]
        assert len(entry.sha256) == 64 and entry.size > 0 and entry.checksum_source
    dreambench = pd.DOWNLOADS[pd.DREAMBENCH_ARCHIVE]
    assert dreambench.sha256 is None and pd.DREAMBOOTH_COMMIT in dreambench.url
    images = [path for path in dreambench.files if path.endswith(".jpg")]
    assert len(images) == 158 and len({path.split("/")[1] for path in images}) == 30
    assert "dataset/prompts_and_classes.txt" in dreambench.files
    assert pd.download_inputs("coco_text2image") == {"images_zip": "val2014.zip",
                                                     "annotations_zip": "annotations_trainval2014.zip"}
    assert pd.download_inputs("dreambench") == {"archive": pd.DREAMBENCH_ARCHIVE}


def test_parse_real_format_and_bad_lines():
    table = pd.parse_prompts_and_classes(PROMPTS_AND_CLASSES)
    assert table.classes == {"backpack": "backpack", "dog": "dog", "robot_toy": "toy"}
    assert table.prompts_for("dog")[1] == "a {unique_token} {class_token} wearing a red hat"
    assert table.prompts_for("robot_toy") == table.object_prompts and len(table.object_prompts) == 3
    with pytest.raises(pd.DataError, match=r"x.txt:4: expected 'subject_name,class'"):
        pd.parse_prompts_and_classes(PROMPTS_AND_CLASSES.replace("backpack,backpack", "backpack"), "x.txt")
    with pytest.raises(pd.DataError, match="no Live Subject Prompts"):
        pd.parse_prompts_and_classes(PROMPTS_AND_CLASSES.split("Live Subject Prompts")[0])


# --- download ---------------------------------------------------------------------------------------------

def test_download_verifies_and_leaves_no_part(sources, tmp_path):
    path = sources["val2017.zip"]
    assert sha256(path) == pd.DOWNLOADS["val2017.zip"].sha256
    assert not list((tmp_path / "downloads").glob("*.part"))


def test_download_checksum_mismatch_names_everything(tmp_path, monkeypatch):
    origin = write_zip(tmp_path / "val2017.zip", {"val2017/000000000139.jpg": jpeg(1)})
    url = stand_in(monkeypatch, "val2017.zip", origin)
    expected = "0" * 64
    monkeypatch.setitem(pd.DOWNLOADS, "val2017.zip", replace(pd.DOWNLOADS["val2017.zip"], sha256=expected))
    out = tmp_path / "downloads" / "val2017.zip"
    with pytest.raises(pd.ChecksumError) as err:
        pd.download("val2017.zip", out)
    message = str(err.value)
    assert "val2017.zip" in message and url in message and expected in message and sha256(origin) in message
    assert not out.exists() and not out.with_name("val2017.zip.part").exists()


def test_download_missing_source(tmp_path):
    url = (tmp_path / "nowhere.zip").as_uri()
    with pytest.raises(pd.DataError, match="val2017.zip: downloading .*nowhere.zip failed"):
        pd.download("val2017.zip", tmp_path / "val2017.zip", url=url)
    with pytest.raises(pd.DataError, match="unknown download 'train2017.zip'"):
        pd.download("train2017.zip", tmp_path / "x")


def test_download_restarts_a_stale_part_over_file_url(tmp_path, monkeypatch):
    origin = write_zip(tmp_path / "origin.zip", {"val2017/000000000139.jpg": jpeg(1)})
    stand_in(monkeypatch, "val2017.zip", origin)
    out = tmp_path / "downloads" / "val2017.zip"
    out.parent.mkdir()
    out.with_name("val2017.zip.part").write_bytes(b"garbage from an earlier, different file")
    pd.download("val2017.zip", out)
    assert out.read_bytes() == origin.read_bytes()


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, status: int, headers: dict):
        super().__init__(data)
        self.status, self.headers = status, headers


def test_download_resumes_with_a_range_request(tmp_path, monkeypatch):
    origin = write_zip(tmp_path / "origin.zip", {"val2017/000000000139.jpg": jpeg(1)})
    stand_in(monkeypatch, "val2017.zip", origin)
    data, cut = origin.read_bytes(), 100
    out = tmp_path / "val2017.zip"
    out.with_name("val2017.zip.part").write_bytes(data[:cut])
    seen = []

    def fake_urlopen(request, timeout):
        seen.append(request.get_header("Range"))
        return FakeResponse(data[cut:], 206, {"Content-Range": f"bytes {cut}-{len(data) - 1}/{len(data)}"})

    monkeypatch.setattr(pd.urllib.request, "urlopen", fake_urlopen)
    pd.download("val2017.zip", out, url="https://example.org/val2017.zip")
    assert seen == [f"bytes={cut}-"] and out.read_bytes() == data


class BrokenResponse(FakeResponse):
    def read(self, size=-1):
        if self.tell():
            raise ConnectionResetError("connection reset by peer")
        return super().read(10)


def test_download_broken_off_keeps_only_the_part(tmp_path, monkeypatch):
    origin = write_zip(tmp_path / "origin.zip", {"val2017/000000000139.jpg": jpeg(1)})
    stand_in(monkeypatch, "val2017.zip", origin)
    monkeypatch.setattr(pd.urllib.request, "urlopen",
                        lambda request, timeout: BrokenResponse(origin.read_bytes(), 200, {}))
    out = tmp_path / "val2017.zip"
    broke_off = r"val2017.zip: download of https://example.org/v.zip broke off after 10 bytes"
    with pytest.raises(pd.DataError, match=broke_off):
        pd.download("val2017.zip", out, url="https://example.org/v.zip")
    assert not out.exists() and out.with_name("val2017.zip.part").read_bytes() == origin.read_bytes()[:10]


def test_download_skips_a_verified_file(sources, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(pd.urllib.request, "urlopen", no_network)
    assert pd.download("val2017.zip", sources["val2017.zip"]) == sources["val2017.zip"]


def test_download_of_a_truncated_archive_fails(tmp_path, monkeypatch):
    members = dreambooth_members()
    whole = write_zip(tmp_path / "whole.zip", members).read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(whole[: len(whole) // 2])
    url = stand_in(monkeypatch, pd.DREAMBENCH_ARCHIVE, truncated, file_table(members))
    out = tmp_path / "downloads" / pd.DREAMBENCH_ARCHIVE
    with pytest.raises(pd.DataError, match="is not a readable zip archive"):
        pd.download(pd.DREAMBENCH_ARCHIVE, out, url=url)
    assert not out.exists() and not out.with_name(out.name + ".part").exists()


# --- COCO builders ----------------------------------------------------------------------------------------

def build_variation(sources, out: Path, **options):
    options = {"n_items": 4, "n_real": 2, "seed": 0, **options}
    paths = {"images_zip": options.pop("images_zip", sources["val2017.zip"]),
             "annotations_zip": sources["annotations_trainval2017.zip"]}
    pd.coco_variation("variation", out, **paths, **options)
    return read_jsonl(out / "items.jsonl"), read_jsonl(out / "real" / "manifest.jsonl")


def test_coco_variation(sources, tmp_path):
    items, real = build_variation(sources, tmp_path / "a")
    assert len(items) == 4 and len(real) == 2
    with zipfile.ZipFile(sources["val2017.zip"]) as archive:
        for item in items:
            image_id = item["truth"]["coco_image_id"]
            assert item["id"] == f"coco-{image_id:012d}"
            condition = item["condition"]
            assert condition["image"] == f"conditions/{image_id:012d}.jpg"
            original = archive.read(f"val2017/{image_id:012d}.jpg")
            assert (tmp_path / "a" / condition["image"]).read_bytes() == original
            assert condition["prompt"] in item["truth"]["captions"] and len(item["truth"]["captions"]) == 5
            assert condition["prompt"] == condition["prompt"].strip() and "\n" not in condition["prompt"]
            assert condition["source_mode"] == ("L" if image_id == 776 else "RGB")
        for row in real:
            original = archive.read(f"val2017/{row['path']}")
            assert (tmp_path / "a" / "real" / row["path"]).read_bytes() == original
    prompts = {item["truth"]["coco_image_id"] for item in items}
    assert prompts.isdisjoint(row["coco_image_id"] for row in real)
    assert prompts | {row["coco_image_id"] for row in real} <= set(COCO_IDS)  # 802 has no caption


def test_coco_variation_is_deterministic_and_prefix_stable(sources, tmp_path):
    build_variation(sources, tmp_path / "a")
    build_variation(sources, tmp_path / "b")
    assert listing(tmp_path / "a") == listing(tmp_path / "b")
    small, _ = build_variation(sources, tmp_path / "c", n_items=2, n_real=0)
    big, _ = build_variation(sources, tmp_path / "a")
    assert {item["id"]: item for item in small}.items() <= {item["id"]: item for item in big}.items()
    full, none = build_variation(sources, tmp_path / "d", n_items=6, n_real=0)
    assert len(full) == 6 and none == []
    seeded = {json.dumps(build_variation(sources, tmp_path / f"s{seed}", seed=seed)[0]) for seed in range(3)}
    assert len(seeded) > 1  # the seed changes which images and captions are drawn


def items_of(folder: Path):
    return read_jsonl(folder / "items.jsonl")


def test_coco_variation_counts_and_task(sources, tmp_path):
    with pytest.raises(pd.DataError, match=r"n_real: asks for 3, but val2017 \(6 captioned images"):
        build_variation(sources, tmp_path / "x", n_items=4, n_real=3)
    with pytest.raises(ValueError, match="has no data for task 'subject'"):
        pd.coco_variation("subject", tmp_path / "x", n_items=1, n_real=0, **coco(sources, "val2017"))
    assert not (tmp_path / "x").exists()


def test_coco_text2image(sources, tmp_path):
    out = tmp_path / "t2i"
    pd.coco_text2image("text2image", out, n_items=5, n_real=3, seed=0, image_size=32,
                       **coco(sources, "val2014"))
    items, real = items_of(out), read_jsonl(out / "real" / "manifest.jsonl")
    assert len(items) == 5 and len(real) == 3 and not (out / "conditions").exists()
    for item in items:
        assert set(item["condition"]) == {"prompt", "source"}
        assert item["condition"]["source"].startswith("coco/val2014/COCO_val2014_")
        assert item["condition"]["prompt"] in item["truth"]["captions"]
    paired = [item["truth"]["real_image"] for item in items if "real_image" in item["truth"]]
    assert sorted(paired) == sorted(f"real/{row['path']}" for row in real)  # real set = the items' images
    for row in real:
        with Image.open(out / "real" / row["path"]) as image:
            assert image.format == "PNG" and image.mode == "RGB" and image.size == (32, 32)
    pd.coco_text2image("text2image", tmp_path / "again", n_items=5, n_real=3, seed=0, image_size=32,
                       **coco(sources, "val2014"))
    assert listing(out) == listing(tmp_path / "again")


def test_coco_text2image_checks_the_split_downloads(sources, tmp_path):
    # val2017 files handed in for the val2014 split fail the val2014 checksums.
    with pytest.raises(pd.ChecksumError, match="val2014.zip"):
        pd.coco_text2image("text2image", tmp_path / "x", n_items=1, n_real=1,
                           **coco(sources, "val2014", images_zip=sources["val2017.zip"]))
    with pytest.raises(ValueError, match="knows splits"):
        pd.coco_text2image("text2image", tmp_path / "x", n_items=1, n_real=1, split="train2017",
                           **coco(sources, "val2014"))


def test_center_crop_resize():
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = 200  # the centre square is all 200, the sides 0
    assert (pd.center_crop_resize(wide, 8) == 200).all()
    cleanfid_resize = pytest.importorskip("cleanfid.resize")
    square = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    expected = cleanfid_resize.make_resizer("PIL", False, "bicubic", (16, 16))(square)
    assert np.abs(pd.center_crop_resize(square, 16).astype(np.float32) - expected).max() <= 0.5 + 1e-3


def test_missing_and_corrupt_coco_inputs(sources, tmp_path, monkeypatch):
    with pytest.raises(pd.DataError, match=r"val2017.zip: .*missing.zip does not exist"):
        build_variation(sources, tmp_path / "x", n_items=1, n_real=0,
                        images_zip=tmp_path / "missing.zip")
    # A member whose bytes fail its CRC, in a file the table accepts (a hand-made copy, say).
    members = {f"val2017/{image_id:012d}.jpg": jpeg(image_id) for image_id in COCO_IDS}
    data = bytearray(write_zip(tmp_path / "ok.zip", members, zipfile.ZIP_STORED).read_bytes())
    target = data.find(members["val2017/000000000285.jpg"]) + 50
    data[target] ^= 0xFF
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(data))
    stand_in(monkeypatch, "val2017.zip", corrupt)
    with pytest.raises(pd.DataError, match=r"corrupt.zip: member val2017/000000000285.jpg is corrupt"):
        build_variation(sources, tmp_path / "x", n_items=6, n_real=0, images_zip=corrupt)
    assert not (tmp_path / "x").exists()


# --- DreamBench -------------------------------------------------------------------------------------------

def build_dreambench(archive: Path, out: Path, **options):
    pd.dreambench("subject", out, archive=archive, **options)
    return items_of(out), read_jsonl(out / "real" / "manifest.jsonl")


def test_dreambench(sources, tmp_path):
    out = tmp_path / "db"
    items, real = build_dreambench(sources[pd.DREAMBENCH_ARCHIVE], out, seed=0)
    members = sources["members"]
    assert len(items) == 3 + 4 + 3 and len(real) == 3 + 4 + 2
    by_id = {item["id"]: item for item in items}
    dog = by_id["dog-p01"]["condition"]
    assert dog == {"images": [f"conditions/dog/{k:02d}.jpg" for k in range(4)],
                   "prompt": "a dog wearing a red hat",
                   "prompt_template": "a {unique_token} {class_token} wearing a red hat", "subject": "dog",
                   "class_word": "dog"}
    assert by_id["robot_toy-p02"]["condition"]["prompt"] == "a red toy"
    assert by_id["robot_toy-p02"]["truth"] == {
        "real_images": ["real/robot_toy-00.jpg", "real/robot_toy-01.jpg"], "prompt_list": "object",
        "prompt_index": 2}
    assert "dog-p03" in by_id and "backpack-p03" not in by_id  # live subjects get the live list
    for k in range(4):
        original = members[f"{ROOT}dataset/dog/{k:02d}.jpg"]
        assert (out / "conditions" / "dog" / f"{k:02d}.jpg").read_bytes() == original
        assert (out / "real" / f"dog-{k:02d}.jpg").read_bytes() == original
    assert {row["subject"] for row in real} == {"backpack", "dog", "robot_toy"}
    assert real[0]["source"] == f"dreambooth@{pd.DREAMBOOTH_COMMIT}/dataset/backpack/00.jpg"


def test_dreambench_subsets_are_seeded(sources, tmp_path):
    archive = sources[pd.DREAMBENCH_ARCHIVE]
    a = build_dreambench(archive, tmp_path / "a", seed=3, n_refs=2, n_items=5, n_real=4)
    b = build_dreambench(archive, tmp_path / "b", seed=3, n_refs=2, n_items=5, n_real=4)
    assert a == b and listing(tmp_path / "a") == listing(tmp_path / "b")
    items, real = a
    assert len(items) == 5 and len(real) == 4 and len(list((tmp_path / "a" / "real").glob("*.jpg"))) == 4
    assert all(len(item["condition"]["images"]) == 2 for item in items)
    dog_refs = set()
    for seed in range(6):
        items, _ = build_dreambench(archive, tmp_path / f"s{seed}", seed=seed, n_refs=2, subjects=["dog"])
        dog_refs.add(tuple(items[0]["condition"]["images"]))
    assert len(dog_refs) > 1  # the seed picks which two of the dog's four images


def test_dreambench_too_few_images_names_the_subject(sources, tmp_path):
    with pytest.raises(pd.DataError, match=r"subject 'robot_toy' has 2 images .* but 3 are needed"):
        build_dreambench(sources[pd.DREAMBENCH_ARCHIVE], tmp_path / "x", n_refs=3)
    with pytest.raises(pd.DataError, match=r"subjects: \['cat'\] are not DreamBench subjects"):
        build_dreambench(sources[pd.DREAMBENCH_ARCHIVE], tmp_path / "x", subjects=["cat"])
    assert not (tmp_path / "x").exists()


def test_dreambench_per_file_checksums(tmp_path, monkeypatch):
    members = dreambooth_members()
    table = file_table(members)
    changed = dict(members)
    changed[f"{ROOT}dataset/dog/02.jpg"] = jpeg(999)
    archive = write_zip(tmp_path / "changed.zip", changed)
    stand_in(monkeypatch, pd.DREAMBENCH_ARCHIVE, archive, table)
    with pytest.raises(pd.ChecksumError) as err:
        build_dreambench(archive, tmp_path / "x")
    assert f"{ROOT}dataset/dog/02.jpg: expected sha256 {table['dataset/dog/02.jpg'][1]}" in str(err.value)
    assert hashlib.sha256(jpeg(999)).hexdigest() in str(err.value)
    # A subject folder with an image missing, and one with an image the list does not know.
    fewer = dict(members)
    del fewer[f"{ROOT}dataset/robot_toy/01.jpg"]
    more = dict(members, **{f"{ROOT}dataset/robot_toy/02.jpg": jpeg(7)})
    for label, variant, needle in (("fewer", fewer, "robot_toy/01.jpg: missing"),
                                   ("more", more, "robot_toy/02.jpg: not in the checksum list")):
        path = write_zip(tmp_path / f"{label}.zip", variant)
        with pytest.raises(pd.ChecksumError, match=needle):
            build_dreambench(path, tmp_path / "x")
    with pytest.raises(pd.DataError, match=r"dreambooth-.*\.zip: .*absent.zip does not exist"):
        build_dreambench(tmp_path / "absent.zip", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_dreambench_class_without_folder(tmp_path, monkeypatch):
    members = dreambooth_members({"backpack": 3, "dog": 4})  # robot_toy is in the classes but has no folder
    archive = write_zip(tmp_path / "db.zip", members)
    stand_in(monkeypatch, pd.DREAMBENCH_ARCHIVE, archive, file_table(members))
    with pytest.raises(pd.DataError, match=r"subject 'robot_toy' has 0 images"):
        build_dreambench(archive, tmp_path / "x")


# --- published numbers ------------------------------------------------------------------------------------

def test_published_numbers():
    assert set(PUBLISHED) == set(CITATIONS) == set(TASKS)
    metrics = {metric for rows in PUBLISHED.values() for row in rows.values() for metric in row}
    assert metrics == {"clip_t", "clip_i", "dino", "fid"}
    assert published("ip_adapter_table1", "IP-Adapter (22M parameters)", "clip_i") == 0.828
    assert published("dreambench", "Real images", "clip_t") is None
    assert published("coco_fid30k", "DeepFloyd IF", "fid") == 6.66
    assert len(PUBLISHED["ip_adapter_table1"]) == 9 and "2308.06721" in CITATIONS["ip_adapter_table1"]
    with pytest.raises(KeyError, match="unknown row"):
        published("dreambench", "DreamBooth", "dino")
