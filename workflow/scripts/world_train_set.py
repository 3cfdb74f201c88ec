from ipbench.jobs import start_job
from ipbench.world.train_data import render_training_set, save_npz


def main(snakemake):
    log = start_job(snakemake)
    data = render_training_set(snakemake.params.n, "train", snakemake.params.seed, workers=snakemake.threads)
    save_npz(snakemake.output[0], data)
    log.info("%d training renders (%d blob twins)", len(data["images"]), len(data["twin_images"]))


# Spawned worker processes re-import this file: only the parent runs the job.
if __name__ == "__main__":
    main(snakemake)
