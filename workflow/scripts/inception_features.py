import torch

from ipbench.jobs import check_device, start_job
from metrics.fid import save_features
from metrics.images import list_images, size_warning
from metrics.inception import INCEPTION, extract_features_with_report

log = start_job(snakemake)
options = dict(snakemake.params.options)
device = check_device(options.pop("device"))
torch.set_num_threads(snakemake.threads)
folder = snakemake.params.images
paths = list_images(folder)
features, converted = extract_features_with_report(
    paths, device=device, batch_size=options.get("batch_size", 32), num_workers=options.get("workers", 0),
    progress=True,
)
for name in converted:
    log.warning("converted to RGB: %s", name)
mixed = size_warning(folder, paths)
if mixed:
    log.warning("%s", mixed)
ids = [str(p.relative_to(folder)) for p in paths]
save_features(snakemake.output[0], features, ids, {"backbone": INCEPTION, "n": len(paths), "converted": converted,
                                                   "device": device, "size_warning": mixed})
log.info("%d Inception features from %s on %s", len(paths), folder, device)
