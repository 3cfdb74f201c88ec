"""Paper-suite task data: COCO and DreamBench, downloaded with checksums.

Three protocols, each a builder with the signature style of ``ipbench.datasets``
(``builder(task, out_dir, *, n_items, n_real, seed, ...)`` plus the paths
of the downloaded files):

- ``coco_variation`` (IP-Adapter Table 1, task ``variation``): COCO 2017 val,
  every image an image prompt with one of its captions (CLIP-T is scored
  against it). The real set, when asked for, is val2017 images disjoint from
  the prompts (so ``n_real`` must be 0 when all 5,000 are prompts).
- ``coco_text2image`` (zero-shot COCO FID-30k at 256², task ``text2image``):
  COCO 2014 val by default (40,504 images), the split GLIDE, DALL-E 2 and
  Imagen sample their 30k captions from. One caption per sampled image; the
  real set is the same sampled images, centre-cropped to a square and resized
  to 256² clean-fid style (PIL bicubic per channel in float, one rounding).
- ``dreambench`` (DreamBooth, task ``subject``): google/dreambooth ``dataset/``
  at a pinned commit; items are subject × prompt, the real set is every image
  of the subjects.

Condition images and DreamBench's real images are the archive's original JPEG
bytes: lossless by construction (no decode/re-encode), what the papers fed
their pipelines, and a fifth of the size of PNG. Only the FID-30k real set is
re-encoded, as PNG (lossless) after the resize, which it needs anyway.

Every builder verifies its inputs against :data:`DOWNLOADS` before reading
them, so a path handed in by hand is checked as strictly as one the
``download`` rule fetched.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import logging
import os
import re
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from ipbench.imageset import check_item_id, png_bytes
from ipbench.io import atomic_directory, write_jsonl

log = logging.getLogger(__name__)


class DataError(ValueError):
    """A downloaded file or dataset that cannot be used as it is."""


class ChecksumError(DataError):
    """A file whose size or sha256 is not the one recorded for it."""


@dataclass(frozen=True)
class Download:
    """One downloadable file.

    ``sha256``/``size`` check the whole file. GitHub's archives are generated on
    request and not byte-stable, so they have none; ``files`` then lists
    ``path -> (size, sha256)`` of the members (paths relative to the archive's
    single top folder), and every listed member must be there and match.
    """

    url: str
    sha256: str | None
    size: int | None
    checksum_source: str
    files: dict[str, tuple[int, str]] | None = None


# google/dreambooth at its newest commit (2023-03-06, "Update README.md"); its
# dataset/ tree is the same in all six commits of the repository.
DREAMBOOTH_COMMIT = "4f887af7970a06fc0cd3adaa1d0b368547d6a1d0"
DREAMBENCH_ARCHIVE = f"dreambooth-{DREAMBOOTH_COMMIT[:12]}.zip"

# sha256, size and path (relative to the archive's top folder) of every file
# under dataset/ at DREAMBOOTH_COMMIT: 158 images of 30 subjects plus the two
# text files. Computed from the blobs of a git snapshot of
# github.com/google/dreambooth at that commit (git cat-file blob | sha256sum);
# the repository has no .gitattributes, so GitHub's archive holds these bytes.
_DREAMBENCH_FILES = """
b9dfa6429a1b77eaea5f4b7bba59c4ac8a77d024d3c1bd4f76bf587cbaa25972 99896 dataset/backpack/00.jpg
0b1858423da8083f74eb966ffc9305487761f834044f70ae7584028227ae21cc 100223 dataset/backpack/01.jpg
113e6661ff47cd0c41e77afd20c194beed2bd13a624371a07e38e4ef366e0d2c 252278 dataset/backpack/02.jpg
076158402fb22645bf368f40e9adefd1c3bfe8827b5e29f0d3ec23b6a2794cd0 332724 dataset/backpack/03.jpg
189a9d396ae2a92fe70369a3f891185d395245e893d0fc3da2b0fec4dad53ecf 236128 dataset/backpack/04.jpg
5c544b874e348aa5c7086aaf4219129a0775c0532faed90641440d51bc7e3a81 306181 dataset/backpack/05.jpg
bab66072d71898f071c84c837bf6b1801abecc4b2f8be42492697b83fea7b859 437593 dataset/backpack_dog/00.jpg
373b3eb7c203216f21ce06c13359921a514ec7e6b5f3f1c8714d1be605462e1d 336686 dataset/backpack_dog/01.jpg
d7c58f4c3b568be497da581536132e21d5010262ffbbfcefe69f6315a3a10d7a 511335 dataset/backpack_dog/02.jpg
a7803463631c04957fe7e0704690268939182173c21725c503f69f948e6ff485 618925 dataset/backpack_dog/03.jpg
1b5ca6852cfc32bc8afcaeff94bdaca65461840234f1c1e0556f66fe5127557f 826022 dataset/backpack_dog/04.jpg
54ae0aef8744d5eb286d30324e9043fdad5dc4715b59a16da85c2908f5bcba50 2119004 dataset/bear_plushie/00.jpg
2c089e78be314269d1efe493f88fda230dc862e96e4e02ab695733c9549ec014 1776704 dataset/bear_plushie/01.jpg
8a8711ec666867330b1e7494c1d62eef9f989f6e33e9ca76eb76a075d6760123 2091198 dataset/bear_plushie/02.jpg
9cfc394fa5dc971740938216c2a9e14e8a3729ae42c1562474f9248d4aa53c52 1814258 dataset/bear_plushie/03.jpg
af106542f708b46a0f0b2e10ccb17ed2eef7891f4cfce6a76beec9d692717c83 2007574 dataset/bear_plushie/04.jpg
361e33d6ca9f806c8405b0a1bcd5c4fe0977455819e1ad046e5c1170c79c6197 142787 dataset/berry_bowl/00.jpg
484a385ed5100a5f883b21a787eab62b5b33d2ffc495a83218fd927fbbbb61fe 128683 dataset/berry_bowl/01.jpg
3ca2f510ca6b9d3b1dd0cb25b3358195d098fe31a8aa2b7d9b370c8a3fdb4246 135957 dataset/berry_bowl/02.jpg
36f266fe7445da5d545fe08d4c716d48cb9a6f377b0d978779b3b37341dd9e6f 120811 dataset/berry_bowl/03.jpg
c9228e531afb25424850ff45565e10ad812e060ba1e67de9219ee8a8df24b7af 133293 dataset/berry_bowl/04.jpg
bfdbe9e71562e97cc4d82cbf6519904a8610d2dfc2f647e8a838a6602b61cae2 130474 dataset/berry_bowl/05.jpg
165f674d17e27ad11c2ec048b23135d5c3ebbe0b7b9ba01bec07f9dd8b505649 220577 dataset/can/00.jpg
0be6499890c9f125f84bb94c3570838892c3caf27527ec7f5e342d2e17480808 200031 dataset/can/01.jpg
3925cb2fddc9433cdb6722667f3eafb7976aa9e31fed994e55a6bb9531a62d35 188889 dataset/can/02.jpg
14b003d0295376567238269f1cc55ef1a83012265f91199bab908f965d73aef9 164715 dataset/can/03.jpg
96743adc998c1bb2c880ea852fca89f370177a58f3d521d88a188fee1dfdab85 220226 dataset/can/04.jpg
18cef529288325383adbd6320010c4b09948a002435cea168afa1247b613b469 223027 dataset/can/05.jpg
13c47512f1d94ec68de0d1571fbd751686bd40bb6a0fa6c381feab37023a2cba 1875322 dataset/candle/00.jpg
26a99418d000e959fdeadf2db97fb5f6ba04b5f70fb9ec2d2fa93aaf02e6ebcd 1021578 dataset/candle/01.jpg
e502da38cb2fd364a6fbb27ff1140ffec233431223a6508b645efb1888459d97 1743366 dataset/candle/02.jpg
34d53443854246c853b6efc631abea152eef213b698dd5a7c31b85ef83d2e379 1368212 dataset/candle/03.jpg
1932819c625666fb0ae6f41d9cb80af609fe0c4922e91159688cfedccfbc1976 1778145 dataset/candle/04.jpg
811beba5bfffc66533e097b9b8aa2fad3b78f410334a258ba0d2c8de900c9af7 258170 dataset/cat/00.jpg
b4b39821f8562d268f28d3bc06f48f72c42e8cdde89414e6764dae743b31eac0 327030 dataset/cat/01.jpg
b3c2334ffe5ab739658c8b35a28578fbdaf63fb8c6217dac69c49c0a9e9efd9c 180854 dataset/cat/02.jpg
02cb573443ecb4d0467313043dbbf9edafade4a49d76a44d8819f280af0fc11c 178039 dataset/cat/03.jpg
62afd15fe7205e514044bb5846299e3b7ef4769ad95a667eb246ae57416d69eb 171835 dataset/cat/04.jpg
0d259e280c29c51341a9d47a28779c4e31661c439e518a3e138044ffe9c85ad7 397464 dataset/cat2/00.jpg
205752743038870205f0bfb69330f3fb723e18ab8e10a395fff543ebd74066ea 474007 dataset/cat2/01.jpg
d6d81497562ff39a58d749a85078fa7fe9734f9c4113e45816f4973697749038 352222 dataset/cat2/02.jpg
d7776e99217bc5cc3b9494d20089602d20d26fce8395d31acd480b765e396d29 510441 dataset/cat2/03.jpg
63f3f2f51c4a9c0410deba057645c4e580d0fcc7df09586afb40088225b9000d 447863 dataset/cat2/04.jpg
a9bdebcfa263a3522679a99b7a53bf1463f30ca7a714657c13c812fe08c934f9 471088 dataset/clock/00.jpg
ded06bf31fdc8e0da7225f5dfe3bc413e6c0c02db85b3e5e69b0bbc3dc608f8b 186081 dataset/clock/01.jpg
bc0136fc201d1112bd7af83033df84d120be66244cb3e478bcc2113c390c043c 140444 dataset/clock/02.jpg
0e1eb6ca2c944f3bfaed3ace56f5f186ed073a477e0333e0237253d98f0c9267 139451 dataset/clock/03.jpg
41235973f26152ac92d32bfc166fb5f9f1e352c5e16807920238473316ec462b 288877 dataset/clock/04.jpg
682c626ee4df269330ac01ef7b73a1f542fc29d70f852a6525c2216c397b5400 115995 dataset/clock/05.jpg
cb6d41f34438e2492ebc1314243ae1ebb046213c18803cff9adb00ae922f064a 1684548 dataset/colorful_sneaker/00.jpg
4a6b167131472609ac531a80ed389f4072f7e393ab6faafb7b967df4f04dd917 1942920 dataset/colorful_sneaker/01.jpg
c735febd2eb153d1c665c38121c1a9dfdf5eef8d9dca1ae77b38009fac7f0180 1631668 dataset/colorful_sneaker/02.jpg
bbc65c40a77341032d26798c246d45f26722efe0c22edcdccf3c613ff5edd2c0 1537134 dataset/colorful_sneaker/03.jpg
0e62ebc95cdce4b4ba75535d484af1558f612dfec066b1616d5b2e31b3bda200 2126801 dataset/colorful_sneaker/04.jpg
adeda67e5dac2a62ac5d122a32ba0365546150da40455d035760c142ebf82c97 97313 dataset/dog/00.jpg
fcb5dcd60a3d02a81e908fd8f37f2bcd533b1258f2ee852a962742cb4bb6e62d 94368 dataset/dog/01.jpg
daad1959b4754734000bcb3699d616876f49797960a2c2b36915503fd5a1c1e5 97739 dataset/dog/02.jpg
1da748df122f41169c4fb41d3476ff84f2c738aa94b267871aa5ec8a945898dc 91879 dataset/dog/03.jpg
be64947acdf522c2c26368b658d8d5594d3a9b90d9e460f42d84b4c19bd6e9bc 76883 dataset/dog/04.jpg
f08aa4923c35e17dca1881330e96a787f3a1c97394398ab3694454b4a4350ac0 208955 dataset/dog2/00.jpg
b321a8635cac2551e6a6e207c32d43c4b2bc8bb71a238bfeba3b0fbb2c0faa0d 452361 dataset/dog2/01.jpg
5548b9f76ba808793ff3c9bc73525810f442ba9284dcaa95894a51dda1890879 363997 dataset/dog2/02.jpg
70d38398ebe495894c945a0aed839d0a634174fdba14635863c51fdc43af568c 235148 dataset/dog2/03.jpg
669eb8f1830aee0589a0c783f62efada67f050132621317d9a4ed6ced0de2795 346965 dataset/dog2/04.jpg
947794cde6a3bf524b370240b24e3c65e19dd64b977f13decb18fa9f28d1b947 323476 dataset/dog2/05.jpg
fbcd579dce6815fda0908bbad98e7d4e8e14a21253c9f2aa66c8e158109f0c35 223259 dataset/dog3/00.jpg
928065e1b52404877dd1ba21cc772805b9419707d5643c7623fccdf1b1caab32 206592 dataset/dog3/01.jpg
15b54d9af1b02481c0e62a35024f7cdc97473f7aa0c68af76ea42e90373858f0 332822 dataset/dog3/02.jpg
af96b4bf6d4c6339cd1b7fe5abcc2068d5d82934c439cb4a57c5201bf6755790 320621 dataset/dog3/03.jpg
4ca8d87cf7baead0687f054c1ce16bcfd570d09ff367f297e8c29d5d37e4ca1f 260298 dataset/dog3/04.jpg
f91476780363cec20e3324745d1ecce2b53573d9506d6dd245ee0b2e5acb062e 147534 dataset/dog3/05.jpg
42e96a78608ec2644115b964f5f97ddc48d099f5c458863a7070f4c83aab1a90 529059 dataset/dog5/00.jpg
c97071e25f3db4aaba96428ca60f08307cc25f82100d308acd1850f907027660 395537 dataset/dog5/01.jpg
0a6146e041e170855be06a6d43a8b1e5e197c39345e43829a512c551c925417d 519686 dataset/dog5/02.jpg
9126c4cb458e679b0ca23a3f8d260293de81fe80d90d5bf2ffdaec3597929334 519410 dataset/dog5/03.jpg
5cd22c1d6bdbdcaa64e9acc9a65d4ab49cc0092409cc1e1193d8d8a753cdf40c 582359 dataset/dog5/04.jpg
1df8d68a0d7967146ce46f5e0da80b891d335bc3e3e01512924a1eb9625592fa 286447 dataset/dog6/00.jpg
7d7ee451e8b6fd252a8b19ea74b6436480fa5b202ae6c73312f4de583c3e179a 299892 dataset/dog6/01.jpg
ff206a9787229e33e6fdc0810ed902531f7a18b0ddb42e9529d8a605895bcb9e 314975 dataset/dog6/02.jpg
aae1d9941213265c94500b1007d31f0b16c1e6eae00771ef5b03512e0d394815 353871 dataset/dog6/03.jpg
481ca0d17c0dd4cbe3e879bf8a222d0487401b497717b3c9ee69369482a1e414 328395 dataset/dog6/04.jpg
2f3f49cc7247fe97302fe98ce7244153b98de89c9785c511035b01758a147426 1149926 dataset/dog7/00.jpg
c8dc22728777cf4be26f5f527b6d96a26a61d5c35dbccb1e0ef9fceb6d107fe8 1096844 dataset/dog7/01.jpg
817df940f51a080f511676858c14c86acb8d92b4d667b32f99045534d9cfbb89 1714230 dataset/dog7/02.jpg
d0e23baea883a23d408647c0098eda24d43cdc6e76890ac54a7c5dca297dbec9 1340903 dataset/dog7/03.jpg
1f567bde72a052992e24956608bc30c4cd9edea60f314a962f0b7e9d10b7278f 1774885 dataset/dog7/04.jpg
0c14902bd3fc3101ff1a27a1bbe9f6632466ae27db95eea1b2f94352341facd9 273303 dataset/dog8/00.jpg
2ebdbeb2d24e19ac07e1274b765277993cfc859eba875548d381a1ed85e5a017 250638 dataset/dog8/01.jpg
babacdd40fb3bd39fdde8c72a60bd98a622df49c288f2ac54606a63220549692 296383 dataset/dog8/02.jpg
daac6f70cbe6a9191d4878fa2fb55de08940b9a5b36573f8344d9db02c5325eb 295984 dataset/dog8/03.jpg
1994030da6d469b983f04c3e0161f49fb5b3b0a261d5f7dc56aefaed1ae74d8f 197308 dataset/dog8/04.jpg
f461a9eafea0870bf392943ba1d3c364f75e544e4d9df7fe559e6d8c541cbae5 310569 dataset/duck_toy/00.jpg
028d9cef79640084382f3c6a62a103095f1b33f017f80dca183a841d199e1bea 383187 dataset/duck_toy/01.jpg
ccbdf9d67fc925196426cff9c1f9e02f6e1da968060032024585ee7cdd636138 314403 dataset/duck_toy/02.jpg
762473d265c497047f332e59ea2a53556bbb0562b1291e9a6ac28459691902ad 478307 dataset/duck_toy/03.jpg
cc13e821085d5a7661463714797fadb5eafcd96b2775e0c981bbfb5eda7fdeaf 1681618 dataset/fancy_boot/00.jpg
a906622d040b7065c3b6020d723735ee17e95ae6ebed6fd195c3bc01f3b66408 1534106 dataset/fancy_boot/01.jpg
906e947c111602a955caeed0544f8e1352fc6b37063e55df4a3af605ab36680d 1762377 dataset/fancy_boot/02.jpg
1aaa5cc16e4de3e9f74058e3c837cc625e48f597732614c5987a6fc56702d9a8 1912192 dataset/fancy_boot/03.jpg
e6744b4630baee66c650c551a374db89fb9496dbc7ffc380262c8da416ee3d84 1845862 dataset/fancy_boot/04.jpg
4dc0a0768af9ce37aa35ca4d023688c35bb3a8e4fd1aedc67c4fc2a5ac643563 1394333 dataset/fancy_boot/05.jpg
b8d8cb0626b21746b451baea8ef46878352b35f1f1001b7f98b19b23af39df97 2446885 dataset/grey_sloth_plushie/00.jpg
81a4f3d269b83a56084c02b21eaeff0e4b91c53d33b8ec31632194c07241f911 1385348 dataset/grey_sloth_plushie/01.jpg
09ba3d2ce2fb10bf2215c2681c2ba850d95ee409b1f58109b015874f11aa69d6 1584765 dataset/grey_sloth_plushie/02.jpg
e81455c83e741cda63a98af6da4924314b78324935c82c5893b167309dde40b0 1411217 dataset/grey_sloth_plushie/03.jpg
01cd945206f96e3bb04967ca59c0a82a1ab3f0c1e2bd334ce4a1147de96542fc 2342398 dataset/grey_sloth_plushie/04.jpg
8138db18ca07bb93126a9de4a4aaf18ee2f3168f90f7e2525fd16edba386d346 320910 dataset/monster_toy/00.jpg
c55c3212e020221e8ac659bafcd181f0ce6dc026bfdb8219573f7a28b425a25e 306583 dataset/monster_toy/01.jpg
eaf37f344c2c4229cf16da19fe38c5722625b81b76d846bbeff057f78f1dd41d 446699 dataset/monster_toy/02.jpg
2c1c5d9e4b7b34b43901b99abad9bf1b043dc3e2e082bb91c0d2f73da5b96e6e 364511 dataset/monster_toy/03.jpg
0acdcfe19e422bac159b2b90eb8702f669175d22761ce6faf21b4b621911824b 492208 dataset/monster_toy/04.jpg
ca1572d6065a2947f65d093a2316d265186297c492a161b42fa879f9b6f3a089 173947 dataset/pink_sunglasses/00.jpg
0dc0e716de621603067a7d4ecb13057962fb34375cc70999763cbf5a0493f96f 594634 dataset/pink_sunglasses/01.jpg
b6086d4352d274ca5ae7c522c008f697852ce49ba7b864384677f535c96290b3 277185 dataset/pink_sunglasses/02.jpg
1aa3c2e432ffc7f2e32ecf1d536b99a1e8d23761efc634b936233c4e80c553f6 219088 dataset/pink_sunglasses/03.jpg
0f4ca83b161dbdbcc642235dedfc3c95a3d78f9ad994e2a493b94f4339f6942d 206987 dataset/pink_sunglasses/04.jpg
8904a9e280461dee836cab2f7354e0f7dc3ff97a31d9826239ea99f313cfcc23 202553 dataset/pink_sunglasses/05.jpg
4ad04ad35c2503b8a68265731e0172edba3f62dc7f43b424421349583684660d 1929821 dataset/poop_emoji/00.jpg
f986c1fff83be5e1cc20d7c65af13c6b338db3eeaf64eac524b3341b15ec9b2d 1475172 dataset/poop_emoji/01.jpg
03c8b77ac98b4d27b8607fd762766368ee0cc0bf79151761a5c2626a07d748cf 1090142 dataset/poop_emoji/02.jpg
c9b42e7c99cc1e626d797dece62b5476d0cbf9edae12d1da38f6ce26ce42dfa3 1295100 dataset/poop_emoji/03.jpg
d220b03e2805270f6159bfb64bb01db3e029d0c6735ba89296ca934b3b07fcb1 1537761 dataset/poop_emoji/04.jpg
f632a5bdb41c3909ce22a0aefcea14432c0897e8db14ab845e68850af5ada486 4039 dataset/prompts_and_classes.txt
ba18333b2a47d96ddf5044fca0842ea8b9a5073dfc16f0b3eae2c84c78109289 425563 dataset/rc_car/00.jpg
0b42640ae2f2939cfbc304096b7a7aa98a75b5b03945a7183e34e3d3fade502c 399777 dataset/rc_car/01.jpg
5306db6234529b9d6d41357724e901791e8f20024d9acee1582b250c599e035b 238343 dataset/rc_car/02.jpg
ed3f563a4ec793e34be5ce3810d8c8da3e42c5d4f2fa3e3f4159f6b05ab4307a 311955 dataset/rc_car/03.jpg
46376e08104f686383f04c15e2a5d8341c02afefd2e544bd043d13d7cbc26bc8 407037 dataset/rc_car/04.jpg
509d4adff91c58058a3a92affffe4fb0d0b019c4ac5302064e3cfb8ddfc665eb 86615 dataset/red_cartoon/00.jpg
4210ab9d515c4d884df661ebf199a521e399895600835515606a7fb1e6826aaf 87413 dataset/red_cartoon/01.jpg
2be865eefa440d4fb505d09015e567e5d7fee65729b68c341cd1105db3127c92 93209 dataset/red_cartoon/02.jpg
e677178e019770006445a95b202020543ac65265737b0b2077fd713aafb89a10 84390 dataset/red_cartoon/03.jpg
1e8ac7742141cd3b17c7f39135d6212082bb443e513eede11a462f891aed9e2a 6827 dataset/references_and_licenses.txt
c7b87b86a58fc702b1245498abbc02e5297bad03c657d089675ef6467f91f6cb 455621 dataset/robot_toy/00.jpg
7d1b5ea66a9dcc30d22fbde70691bc852c468f90b25516c0fb80d00dbd0ad4ba 288636 dataset/robot_toy/01.jpg
e45615ebabd36d5c4771e3df53ff4c1712f1c1f4d8252a7210306e05d8e37884 463535 dataset/robot_toy/02.jpg
5f7c08b540d3759eaed35155c95007971175c05c18775de4d83ed2c56f4259fc 532192 dataset/robot_toy/03.jpg
55b643672325fb064a1010d65633886bcc41b7c9aaaef673be063ee9c4d32ae6 831185 dataset/robot_toy/04.jpg
9ac8eae084177a85999a92110df4ead6187a0e266c999a723d618f94dc01738e 1837527 dataset/shiny_sneaker/00.jpg
5c1024358a1f840a40590f87ff14f530249c09d8bf1ef0379a8ef45fc1d36797 1993826 dataset/shiny_sneaker/01.jpg
a2dd078b59b0a49bacc2999b08f1a9b0e229bbafb251f218d3fdd016b4a2975a 2217152 dataset/shiny_sneaker/02.jpg
0671aaca606b6902fa88c6eea84587663c621bbaecb83660112a7003bd3e024c 2004119 dataset/shiny_sneaker/03.jpg
daa1649e57bf960eefd758ae127829dc62d98282c6c672dd806f0aa9cac8600d 1510094 dataset/shiny_sneaker/04.jpg
9b9e6db941d7bcd00cc5674971e27bcb6321a02afbe1ced16cbcd3217b08a539 1803186 dataset/shiny_sneaker/05.jpg
bcf7866dbe67622ef4b425a1c9d3aa62876b1c94f40c7fabd7a7334bbc66bccb 219149 dataset/teapot/00.jpg
dfe7aa48d3176ec36ce006d763770317c76bcd7b48347277bd722d8bd2d04a30 161887 dataset/teapot/01.jpg
de0491e21dbe5fead9f3f37f4b23f4d942b805d7ccd3817d5a7e348a3a2dd561 228109 dataset/teapot/02.jpg
0ceed80be8043edded76eb21725f9a39a3c00a7638933bda00c5986355ec37fb 42060 dataset/teapot/03.jpg
db6ae25c7689495cb9650023ea7b2029da3abf8dbfff64ae7caadb4a602e1cff 124122 dataset/teapot/04.jpg
5241b89d16df52ed02d3928499a0c00b618f54732c76fa25e1902d42e9342ba0 124431 dataset/vase/00.jpg
01c5f2fd2a628d199b5c928f8288c55d25d9ed563efad9647a311f696b850ce3 159275 dataset/vase/01.jpg
26048d2ea6da0328bb011527793cde0084f6efb029825ce0638554e6b3fcf21c 53244 dataset/vase/02.jpg
0ef4a5a1195c3eb3fd22f99282267546c94171acc23c3cdbe1990843083f0e52 84981 dataset/vase/03.jpg
43d606061f7d7d441e60318b949c8901406fd0c7eeb4791be49ab5169367aadd 50136 dataset/vase/04.jpg
19199cae49930f4e3ec1510bd17225d1124a5a9f8541c8e885f6aca69d63c6f4 105113 dataset/vase/05.jpg
aaa5d9a531de3ab104479ce8b600f6a89334532bcb5556c136c9459d3292fd57 1816663 dataset/wolf_plushie/00.jpg
6f51dd0547d2064b26212000f5292459d50ec8e0df93a0d64d2e69148d0b713a 1819389 dataset/wolf_plushie/01.jpg
6e046819c089b0dcc7ede27c269129bca42e0aac155306003e09618cd78a0b02 2141551 dataset/wolf_plushie/02.jpg
9f446b7812334e57f83659573055b0b0cf3986e288335e55a35d7ddb93f3018b 1406024 dataset/wolf_plushie/03.jpg
e88eb5df08f7dfe7c878c8836456cceb55816e93f04b60498a9a6159d6eb8946 1720478 dataset/wolf_plushie/04.jpg
"""


def _parse_file_list(text: str) -> dict[str, tuple[int, str]]:
    files = {}
    for line in text.strip().splitlines():
        sha256, size, path = line.split()
        files[path] = (int(size), sha256)
    return files


# Checksum sources:
# - COCO archives: size and sha256 from tensorflow/datasets
#   tensorflow_datasets/url_checksums/coco.txt; the same sha256 values appear in
#   ParlAI's COCO image downloader and in other projects' download scripts that
#   hashed their own copies (val2014, val2017, both annotation archives).
# - DreamBench: per-file, see _DREAMBENCH_FILES (no archive checksum is knowable).
_TFDS = "tensorflow/datasets tensorflow_datasets/url_checksums/coco.txt"
DOWNLOADS: dict[str, Download] = {
    "val2017.zip": Download(
        "http://images.cocodataset.org/zips/val2017.zip",
        "4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05", 815_585_330, _TFDS),
    "annotations_trainval2017.zip": Download(
        "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
        "113a836d90195ee1f884e704da6304dfaaecff1f023f49b6ca93c4aaae470268", 252_907_541, _TFDS),
    "val2014.zip": Download(
        "http://images.cocodataset.org/zips/val2014.zip",
        "fe9be816052049c34717e077d9e34aa60814a55679f804cd043e3cbee3b9fde0", 6_645_013_297, _TFDS),
    "annotations_trainval2014.zip": Download(
        "http://images.cocodataset.org/annotations/annotations_trainval2014.zip",
        "031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009", 252_872_794, _TFDS),
    DREAMBENCH_ARCHIVE: Download(
        f"https://github.com/google/dreambooth/archive/{DREAMBOOTH_COMMIT}.zip", None, None,
        "per-file sha256 of dataset/ computed from a git snapshot of google/dreambooth at "
        f"{DREAMBOOTH_COMMIT}", _parse_file_list(_DREAMBENCH_FILES)),
}

# The downloads a COCO split is read from: (images zip, annotations zip). The
# images are ``<split>/<file_name>`` and the captions ``annotations/captions_<split>.json``.
COCO_SPLITS = {
    "val2017": ("val2017.zip", "annotations_trainval2017.zip"),
    "val2014": ("val2014.zip", "annotations_trainval2014.zip"),
}


def spec(name: str) -> Download:
    if name not in DOWNLOADS:
        raise DataError(f"unknown download {name!r}; known: {', '.join(sorted(DOWNLOADS))}")
    return DOWNLOADS[name]


# --- downloading ------------------------------------------------------------------------------------------

_CHUNK = 1 << 20


def download(name: str, out_path: str | os.PathLike, url: str | None = None) -> Path:
    """Fetch download ``name`` to ``out_path`` and verify it; return the path.

    Bytes go to ``<out_path>.part``, which becomes ``out_path`` only once
    verified, so the final name never holds a partial or wrong file. An
    interrupted download leaves the ``.part``; the next call resumes it with an
    HTTP range request where the server honours one and starts over otherwise
    (``file://`` always starts over). A ``.part`` that fails verification is
    deleted, so a bad resume cannot repeat. ``url`` overrides the table's URL
    (a mirror, or a ``file://`` stand-in); the checksums stay the table's.
    """
    entry = spec(name)
    url = url or entry.url
    out_path = Path(out_path)
    if out_path.is_file():
        try:
            verify(name, out_path, url=url)
            log.info("%s: %s already present and verified", name, out_path)
            return out_path
        except DataError as err:
            log.warning("%s: existing %s fails verification (%s); downloading again", name, out_path, err)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    part = out_path.with_name(out_path.name + ".part")
    size, sha256 = _fetch(name, url, part)
    try:
        _check_digest(name, part, url, size, sha256, entry)
        if entry.files is not None:
            _check_members(name, part, url, entry)
    except DataError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, out_path)
    log.info("%s: %d bytes from %s verified into %s", name, size, url, out_path)
    return out_path


def _fetch(name: str, url: str, part: Path) -> tuple[int, str]:
    """Stream ``url`` into ``part`` (resuming it if possible); return its size and sha256."""
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "ipbench"}
    if offset and url.startswith(("http://", "https://")):
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the range is past the end: the .part is not a prefix we can use
            part.unlink()
            return _fetch(name, url, part)
        raise DataError(f"{name}: downloading {url} failed: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DataError(f"{name}: downloading {url} failed: {reason}") from None
    with response:
        resumed = (offset > 0 and getattr(response, "status", None) == 206
                   and str(response.headers.get("Content-Range", "")).startswith(f"bytes {offset}-"))
        digest = hashlib.sha256()
        size = 0
        if resumed:
            log.info("%s: resuming %s at byte %d", name, url, offset)
            size = _hash_into(part, digest)
        with open(part, "ab" if resumed else "wb") as handle:
            try:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            except (OSError, http.client.HTTPException) as err:
                raise DataError(f"{name}: download of {url} broke off after {size} bytes ({err!r}); "
                                f"{part} is kept, and the next download resumes it where the server "
                                "allows") from None
    return size, digest.hexdigest()


def _hash_into(path: Path, digest) -> int:
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    _hash_into(Path(path), digest)
    return digest.hexdigest()


# --- verification -----------------------------------------------------------------------------------------

def verify(name: str, path: str | os.PathLike, url: str | None = None) -> None:
    """Check ``path`` against download ``name``: whole-file size and sha256, or per-member ones."""
    entry = spec(name)
    path = Path(path)
    url = url or entry.url
    if not path.is_file():
        raise DataError(f"{name}: {path} does not exist (download it from {url}: the download rule)")
    if entry.sha256 is not None:
        digest = hashlib.sha256()
        size = _hash_into(path, digest)
        _check_digest(name, path, url, size, digest.hexdigest(), entry)
    if entry.files is not None:
        _check_members(name, path, url, entry)


def _check_digest(name: str, path: Path, url: str, size: int, sha256: str, entry: Download) -> None:
    if entry.sha256 is None:
        return
    if sha256 != entry.sha256 or (entry.size is not None and size != entry.size):
        raise ChecksumError(
            f"{name}: {path} (from {url}) does not match its checksum: expected sha256 {entry.sha256} "
            f"({entry.size} bytes), got sha256 {sha256} ({size} bytes)")


def _open_zip(name: str, path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise DataError(f"{name}: {path} does not exist")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{name}: {path} is not a readable zip archive ({err})") from None


def _read_member(name: str, path: Path, archive: zipfile.ZipFile, member: str) -> bytes:
    try:
        return archive.read(member)
    except KeyError:
        raise DataError(f"{name}: {path} has no member {member}") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:  # bad CRC, truncated or bad data
        raise DataError(f"{name}: {path}: member {member} is corrupt ({err})") from None


def _archive_root(name: str, path: Path, archive: zipfile.ZipFile) -> str:
    """The single top folder of a GitHub archive (``dreambooth-<commit>/``)."""
    tops = {PurePosixPath(member).parts[0] for member in archive.namelist() if member.strip("/")}
    if len(tops) != 1:
        raise DataError(f"{name}: {path} should hold one top folder (as GitHub archives do); "
                        f"it holds {sorted(tops)[:5]}")
    return tops.pop() + "/"


def _check_members(name: str, path: Path, url: str, entry: Download) -> None:
    """Every listed member present with its size and sha256; no unlisted file under the listed folders."""
    with _open_zip(name, path) as archive:
        root = _archive_root(name, path, archive)
        present = {member[len(root):]: member for member in archive.namelist()
                   if member.startswith(root) and not member.endswith("/")}
        folders = {PurePosixPath(listed).parts[0] for listed in entry.files}
        problems = []
        for listed, (size, sha256) in sorted(entry.files.items()):
            if listed not in present:
                problems.append(f"{root}{listed}: missing")
                continue
            data = _read_member(name, path, archive, present[listed])
            actual = hashlib.sha256(data).hexdigest()
            if actual != sha256 or len(data) != size:
                problems.append(f"{root}{listed}: expected sha256 {sha256} ({size} bytes), "
                                f"got sha256 {actual} ({len(data)} bytes)")
        for relative in sorted(set(present) - set(entry.files)):
            if PurePosixPath(relative).parts[0] in folders:
                problems.append(f"{root}{relative}: not in the checksum list")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ChecksumError(f"{name}: {path} (from {url}) does not match its per-file checksums: {shown}")


# --- shared helpers ---------------------------------------------------------------------------------------

def _supports(source: str, task: str, tasks: tuple[str, ...]) -> None:
    if task not in tasks:
        raise ValueError(f"config key data.source: {source} has no data for task {task!r} (it has {tasks})")


def _rank(seed: int, key: str) -> int:
    """A stable pseudo-random rank: selections are prefixes of one seeded order."""
    return int.from_bytes(hashlib.blake2b(f"{seed}/{key}".encode(), digest_size=8).digest(), "big")


def _pick(seed: int, role: str, keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda key: (_rank(seed, f"{role}/{key}"), key))


def _header(name: str, member: str, data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{name}: member {member} is not an image PIL can read ({err})") from None


def _count(what: str, asked: int | None, available: int, detail: str) -> int:
    if asked is None:
        return available
    if not 0 <= int(asked) <= available:
        raise DataError(f"{what}: asks for {asked}, but {detail} has {available}")
    return int(asked)


# --- COCO -------------------------------------------------------------------------------------------------

def _coco_captions(name: str, path: Path, split: str) -> dict[int, dict]:
    """image id -> {"file_name", "captions": [(annotation id, text), ...] sorted}; captioned images only."""
    member = f"annotations/captions_{split}.json"
    with _open_zip(name, path) as archive:
        data = _read_member(name, path, archive, member)
    try:
        table = json.loads(data)
        images = {int(image["id"]): {"file_name": image["file_name"], "captions": []}
                  for image in table["images"]}
        for annotation in sorted(table["annotations"], key=lambda a: a["id"]):
            images[int(annotation["image_id"])]["captions"].append(
                (int(annotation["id"]), " ".join(str(annotation["caption"]).split())))
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{name}: {path}: {member} is not a COCO captions file ({err!r})") from None
    return {image_id: image for image_id, image in images.items() if image["captions"]}


def _coco_inputs(source: str, split: str, images_zip, annotations_zip) -> tuple[Path, Path, str, str]:
    if split not in COCO_SPLITS:
        raise ValueError(f"config key data.split: {source} knows splits {sorted(COCO_SPLITS)}, not {split!r}")
    images_name, annotations_name = COCO_SPLITS[split]
    images_zip, annotations_zip = Path(images_zip), Path(annotations_zip)
    verify(images_name, images_zip)
    verify(annotations_name, annotations_zip)
    return images_zip, annotations_zip, images_name, annotations_name


def _caption_choice(seed: int, image_id: int, captions: list) -> tuple[int, str]:
    return captions[_rank(seed, f"caption/{image_id}") % len(captions)]


def _coco_id(image_id: int) -> str:
    return check_item_id(f"coco-{image_id:012d}")


def coco_variation(task: str, out_dir: Path, *, n_items: int = 5000, n_real: int = 0, seed: int = 0,
                   images_zip: str | os.PathLike, annotations_zip: str | os.PathLike,
                   split: str = "val2017") -> None:
    """IP-Adapter Table 1: COCO val2017 images as image prompts, one caption each.

    Items are the first ``n_items`` images of a seeded order (all 5,000 by
    default, the protocol); each keeps its original JPEG bytes and one of its
    captions (a seeded choice, the same whatever ``n_items`` is) as the prompt;
    ``truth`` holds all its captions. The real set is the next ``n_real``
    images of the same order, disjoint from the prompts.
    """
    _supports("coco_variation", task, ("variation",))
    images_zip, annotations_zip, images_name, annotations_name = _coco_inputs(
        "coco_variation", split, images_zip, annotations_zip)
    images = _coco_captions(annotations_name, annotations_zip, split)
    order = [int(key) for key in _pick(seed, "variation", [str(image_id) for image_id in images])]
    detail = f"{split} ({len(images)} captioned images; prompts and real images are disjoint)"
    n_items = _count("config key data.n_items", n_items, len(order), detail)
    n_real = _count("config key data.n_real", n_real, len(order) - n_items, detail)
    with atomic_directory(out_dir) as tmp, _open_zip(images_name, images_zip) as archive:
        (tmp / "conditions").mkdir()
        (tmp / "real").mkdir()
        items, real = [], []
        for index, image_id in enumerate(order[:n_items + n_real]):
            image = images[image_id]
            member = f"{split}/{image['file_name']}"
            data = _read_member(images_name, images_zip, archive, member)
            mode = _header(images_name, member, data).mode
            caption_id, caption = _caption_choice(seed, image_id, image["captions"])
            record = {"source": f"coco/{member}", "source_mode": mode}
            if index < n_items:
                (tmp / "conditions" / image["file_name"]).write_bytes(data)
                items.append({"id": _coco_id(image_id),
                              "condition": {"image": f"conditions/{image['file_name']}", "prompt": caption,
                                            **record},
                              "truth": {"coco_image_id": image_id, "caption_id": caption_id,
                                        "captions": [text for _, text in image["captions"]]}})
            else:
                (tmp / "real" / image["file_name"]).write_bytes(data)
                real.append({"path": image["file_name"], "caption": caption, "coco_image_id": image_id,
                             **record})
        write_jsonl(tmp / "items.jsonl", sorted(items, key=lambda item: item["id"]))
        write_jsonl(tmp / "real" / "manifest.jsonl", sorted(real, key=lambda row: row["path"]))
    log.info("coco_variation: %d prompts, %d real images from %s", n_items, n_real, split)


def center_crop_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop, then clean-fid's resize: PIL bicubic per channel in float32, one rounding to uint8.

    PIL's resize filters with the kernel widened by the downscale factor (it
    antialiases), unlike a plain tensor interpolate; resizing in float and
    rounding once avoids the 8-bit intermediate of an RGB-mode resize.
    """
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = np.asarray(image[top:top + side, left:left + side], dtype=np.float32)
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(square[:, :, c])).resize(
        (size, size), Image.Resampling.BICUBIC)) for c in range(3)]
    return np.clip(np.rint(np.stack(channels, axis=2)), 0, 255).astype(np.uint8)


def coco_text2image(task: str, out_dir: Path, *, n_items: int = 30000, n_real: int = 30000,
                    seed: int = 0, images_zip: str | os.PathLike, annotations_zip: str | os.PathLike,
                    split: str = "val2014", image_size: int = 256) -> None:
    """Zero-shot COCO FID-30k: captions as prompts, their images (at ``image_size``²) as the real set.

    One seeded order of the split's captioned images: items are its first
    ``n_items`` images, each with one seeded caption; the real set is its first
    ``n_real`` images, centre-cropped and resized (:func:`center_crop_resize`)
    and stored as PNG. With the defaults both are the same 30,000 images, the
    usual FID-30k pairing of sampled captions with their own images.
    """
    _supports("coco_text2image", task, ("text2image",))
    images_zip, annotations_zip, images_name, annotations_name = _coco_inputs(
        "coco_text2image", split, images_zip, annotations_zip)
    images = _coco_captions(annotations_name, annotations_zip, split)
    order = [int(key) for key in _pick(seed, "text2image", [str(image_id) for image_id in images])]
    detail = f"{split} ({len(images)} captioned images)"
    n_items = _count("config key data.n_items", n_items, len(order), detail)
    n_real = _count("config key data.n_real", n_real, len(order), detail)
    with atomic_directory(out_dir) as tmp, _open_zip(images_name, images_zip) as archive:
        (tmp / "real").mkdir()
        items, real = [], []
        for index, image_id in enumerate(order[:max(n_items, n_real)]):
            image = images[image_id]
            member = f"{split}/{image['file_name']}"
            caption_id, caption = _caption_choice(seed, image_id, image["captions"])
            real_name = f"{_coco_id(image_id)}.png"
            if index < n_real:
                data = _read_member(images_name, images_zip, archive, member)
                header = _header(images_name, member, data)
                try:
                    rgb = np.asarray(header.convert("RGB"))
                except (OSError, ValueError) as err:
                    raise DataError(f"{images_name}: member {member} does not decode ({err})") from None
                (tmp / "real" / real_name).write_bytes(png_bytes(center_crop_resize(rgb, image_size)))
                real.append({"path": real_name, "caption": caption, "coco_image_id": image_id,
                             "source": f"coco/{member}", "source_mode": header.mode,
                             "source_size": list(header.size)})
            if index < n_items:
                truth = {"coco_image_id": image_id, "caption_id": caption_id,
                         "captions": [text for _, text in image["captions"]]}
                if index < n_real:
                    truth["real_image"] = f"real/{real_name}"
                items.append({"id": _coco_id(image_id),
                              "condition": {"prompt": caption, "source": f"coco/{member}"}, "truth": truth})
        write_jsonl(tmp / "items.jsonl", sorted(items, key=lambda item: item["id"]))
        write_jsonl(tmp / "real" / "manifest.jsonl", sorted(real, key=lambda row: row["path"]))
    log.info("coco_text2image: %d captions, %d real images at %d² from %s", n_items, n_real, image_size,
             split)


# --- DreamBench -------------------------------------------------------------------------------------------

# The README of google/dreambooth: "9 out of these subjects are live subjects
# (dogs and cats) and 21 are objects"; prompts_and_classes.txt gives each
# subject's class, so the class decides which prompt list applies.
LIVE_CLASSES = ("cat", "dog")
_PROMPT_LINE = re.compile(r"^'(?P<text>.*)'\.format\(unique_token, class_token\),?$")


@dataclass(frozen=True)
class DreamBenchPrompts:
    classes: dict[str, str]  # subject -> class word
    object_prompts: list[str]  # templates with {unique_token} and {class_token}
    live_prompts: list[str]

    def prompts_for(self, subject: str) -> list[str]:
        return self.live_prompts if self.classes[subject] in LIVE_CLASSES else self.object_prompts


def parse_prompts_and_classes(text: str, where: str = "prompts_and_classes.txt") -> DreamBenchPrompts:
    """Parse dataset/prompts_and_classes.txt: a ``subject_name,class`` table, then two Python prompt lists."""
    classes, lists, section, current = {}, {}, None, None
    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line in ("Classes", "Prompts", "Object Prompts", "Live Subject Prompts"):
            section = line
            continue
        if section == "Classes":
            if line == "subject_name,class":
                continue
            subject, sep, class_word = line.partition(",")
            if not sep or not subject.strip() or not class_word.strip():
                raise DataError(f"{where}:{line_no}: expected 'subject_name,class', got {raw!r}")
            classes[subject.strip()] = class_word.strip()
        elif section in ("Object Prompts", "Live Subject Prompts"):
            if line == "prompt_list = [":
                current = lists.setdefault(section, [])
            elif line == "]":
                current = None
            elif current is not None and (match := _PROMPT_LINE.match(line)):
                current.append(match["text"].replace("{0}", "{unique_token}").replace("{1}", "{class_token}"))
            else:
                raise DataError(f"{where}:{line_no}: unexpected line {raw!r}")
        else:
            raise DataError(f"{where}:{line_no}: unexpected line {raw!r} outside the known sections")
    found = {"Classes": classes, "Object Prompts": lists.get("Object Prompts"),
             "Live Subject Prompts": lists.get("Live Subject Prompts")}
    missing = [key for key, value in found.items() if not value]
    if missing:
        raise DataError(f"{where}: no {', '.join(missing)} found; "
                        "is this DreamBooth's prompts_and_classes.txt?")
    return DreamBenchPrompts(classes, lists["Object Prompts"], lists["Live Subject Prompts"])


def _plain_prompt(template: str, class_word: str) -> str:
    """The prompt without identifier ("a dog in the jungle"): what CLIP-T scores, tuning-free methods get."""
    return " ".join(template.replace("{unique_token}", "").split()).format(class_token=class_word)


def _dreambench_subjects(name: str, path: Path, archive: zipfile.ZipFile, subjects: list[str] | None,
                         n_refs: int | None) -> tuple[str, DreamBenchPrompts, dict[str, list[str]]]:
    """The archive's root, its prompts and classes, and each chosen subject's image members (sorted)."""
    root = _archive_root(name, path, archive)
    member = f"{root}dataset/prompts_and_classes.txt"
    try:
        text = _read_member(name, path, archive, member).decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{name}: {path}: {member} is not UTF-8 text ({err})") from None
    table = parse_prompts_and_classes(text, f"{path}:{member}")
    chosen = sorted(table.classes) if subjects is None else list(subjects)
    unknown = [subject for subject in chosen if subject not in table.classes]
    if unknown:
        raise DataError(f"config key data.subjects: {unknown} are not DreamBench subjects "
                        f"({', '.join(sorted(table.classes))})")
    members = sorted(m for m in archive.namelist() if m.lower().endswith((".jpg", ".jpeg", ".png")))
    images = {}
    for subject in chosen:
        prefix = f"{root}dataset/{subject}/"
        images[subject] = [m for m in members if m.startswith(prefix)]
        if len(images[subject]) < (n_refs or 1):
            raise DataError(f"{name}: subject {subject!r} has {len(images[subject])} images in "
                            f"{path}:{prefix} but {n_refs or 1} are needed")
    return root, table, images


def dreambench(task: str, out_dir: Path, *, n_items: int | None = None, n_real: int | None = None,
               seed: int = 0, archive: str | os.PathLike, n_refs: int | None = None,
               subjects: list[str] | None = None) -> None:
    """DreamBench: subject × prompt items, K reference images each; the real set is the subjects' images.

    ``condition``: ``images`` (the subject's reference images, all of them or
    a seeded ``n_refs``), ``prompt`` (without identifier: "a dog in the
    jungle"), ``prompt_template`` ("a {unique_token} {class_token} in the
    jungle", for methods that bind a token), ``subject`` and ``class_word``.
    ``truth.real_images`` lists all the subject's images in ``real/`` (DINO and
    CLIP-I compare with every one). ``n_items``/``n_real`` of None take
    all (30 × 25 = 750 items, 158 images); fewer take a seeded subset.
    """
    _supports("dreambench", task, ("subject",))
    name, path = DREAMBENCH_ARCHIVE, Path(archive)
    verify(name, path)
    with _open_zip(name, path) as zf, atomic_directory(out_dir) as tmp:
        root, table, subject_images = _dreambench_subjects(name, path, zf, subjects, n_refs)
        (tmp / "real").mkdir()
        items, real = [], []
        for subject, members in subject_images.items():
            class_word = table.classes[subject]
            file_names = [PurePosixPath(member).name for member in members]
            refs = file_names if n_refs is None else sorted(
                _pick(seed, f"refs/{subject}", file_names)[:n_refs])
            (tmp / "conditions" / subject).mkdir(parents=True)
            for member, file_name in zip(members, file_names):
                data = _read_member(name, path, zf, member)
                if file_name in refs:
                    (tmp / "conditions" / subject / file_name).write_bytes(data)
                (tmp / "real" / f"{subject}-{file_name}").write_bytes(data)
                real.append({"path": f"{subject}-{file_name}", "subject": subject, "class_word": class_word,
                             "source": f"dreambooth@{DREAMBOOTH_COMMIT}/{member[len(root):]}",
                             "source_mode": _header(name, member, data).mode})
            condition = {"images": [f"conditions/{subject}/{file_name}" for file_name in refs],
                         "subject": subject, "class_word": class_word}
            truth = {"real_images": [f"real/{subject}-{file_name}" for file_name in file_names],
                     "prompt_list": "live" if class_word in LIVE_CLASSES else "object"}
            for p, template in enumerate(table.prompts_for(subject)):
                items.append({"id": check_item_id(f"{subject}-p{p:02d}"),
                              "condition": {**condition, "prompt": _plain_prompt(template, class_word),
                                            "prompt_template": template},
                              "truth": {**truth, "prompt_index": p}})
        detail = f"DreamBench ({len(subject_images)} subjects)"
        n_items = _count("config key data.n_items", n_items, len(items), f"{detail} as items")
        n_real = _count("config key data.n_real", n_real, len(real), f"{detail} as images")
        kept_items = set(_pick(seed, "items", [item["id"] for item in items])[:n_items])
        kept_real = set(_pick(seed, "real", [row["path"] for row in real])[:n_real])
        for row in real:
            if row["path"] not in kept_real:
                (tmp / "real" / row["path"]).unlink()
        write_jsonl(tmp / "items.jsonl", sorted((item for item in items if item["id"] in kept_items),
                                                key=lambda item: item["id"]))
        write_jsonl(tmp / "real" / "manifest.jsonl",
                    sorted((row for row in real if row["path"] in kept_real), key=lambda row: row["path"]))
    log.info("dreambench: %d items, %d real images of %d subjects", n_items, n_real, len(subject_images))


BUILDERS = {"coco_variation": coco_variation, "coco_text2image": coco_text2image, "dreambench": dreambench}


def dreambench_subjects() -> list[str]:
    """The 30 subject folders of the pinned DreamBench archive, from its file table (no download needed)."""
    files = DOWNLOADS[DREAMBENCH_ARCHIVE].files
    return sorted({PurePosixPath(path).parts[1] for path in files if len(PurePosixPath(path).parts) == 3})


def download_inputs(source: str, **options) -> dict[str, str]:
    """Builder keyword -> download name, for wiring a builder's downloaded inputs (e.g. in the Snakefile)."""
    if source == "dreambench":
        return {"archive": DREAMBENCH_ARCHIVE}
    if source in ("coco_variation", "coco_text2image"):
        default = "val2017" if source == "coco_variation" else "val2014"
        split = options.get("split", default)
        if split not in COCO_SPLITS:
            raise ValueError(f"config key data.split: {source} knows splits {sorted(COCO_SPLITS)}, "
                             f"not {split!r}")
        images_name, annotations_name = COCO_SPLITS[split]
        return {"images_zip": images_name, "annotations_zip": annotations_name}
    raise ValueError(f"config key data.source: {source!r} is not a paper data source ({sorted(BUILDERS)})")
