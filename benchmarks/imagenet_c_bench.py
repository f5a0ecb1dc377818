"""ImageNet-C in one command costs what one run over as many images does.

Builds a corruption tree of 2 corruptions x 5 severities x N real images
(`tf_topk.testing.corrupted`: the paper's Gaussian-noise and brightness
parameters with TF ops; N = 650 from ../shared/assets val_acuity650 gives
6,500 JPEGs) in a temporary folder, then times, in the same process:

1. the imagenet_c command (`configs/imagenet_c.py`, `tf_topk.cli.run.run`):
   the model built once, one bulk run per cell (10 cells), robustness.json
   and the report written;
2. one single run over the same 6,500 files (hard links in class folders),
   with the same model and preprocessing.

Prints both wall times and their ratio (the command's per-cell cost beyond
the images themselves).

    python benchmarks/imagenet_c_bench.py \
        --assets=../shared/assets --num_images=650
"""

import csv
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from tf_topk.cli import presets, robustness_presets, run  # noqa: E402
from tf_topk.testing import corrupted  # noqa: E402

_ASSETS = flags.DEFINE_string(
    "assets", "../shared/assets", "The folder of weights/ and imagenet/."
)
_NUM_IMAGES = flags.DEFINE_integer(
    "num_images", 650, "Images of val_acuity650 per cell."
)
# 50 divides a cell of 650: no padded last batch per cell, so the ratio
# measures the per-cell start-up (at 64, each cell's last batch pads 54
# images, 8% more images to run through the model).
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 50, "Batch size.")
_REPEATS = flags.DEFINE_integer(
    "repeats", 2, "Times each is run, alternated; the fastest is compared."
)


def configure(config, weights: str, path: str):
    config.model.alpha = 0.25
    config.model.weights = weights
    config.data.source = "folder"
    config.data.path = path
    config.data.batch_size = _BATCH_SIZE.value
    config.eval.progress = "none"
    return config


def single_tree(root: str, target: str) -> int:
    """Every image of the tree in one folder tree (hard links)."""
    count = 0
    for folder, _, names in os.walk(root):
        for name in names:
            synset = os.path.basename(folder)
            cell = os.path.relpath(os.path.dirname(folder), root)
            os.makedirs(os.path.join(target, synset), exist_ok=True)
            link = os.path.join(
                target, synset, cell.replace(os.sep, "_") + "_" + name
            )
            os.link(os.path.join(folder, name), link)
            count += 1
    return count


def timed(config, workdir):
    start = time.perf_counter()
    outcome = run.run(config, workdir)
    return time.perf_counter() - start, outcome


def main_(argv):
    del argv
    logging.set_verbosity(logging.ERROR)
    images = os.path.join(_ASSETS.value, "imagenet", "val_acuity650")
    weights = os.path.join(
        _ASSETS.value, "weights", "mobilenet_0.25_224.weights.h5"
    )
    with open(os.path.join(images, "labels.tsv")) as f:
        rows = list(csv.reader(f, delimiter="\t"))[: _NUM_IMAGES.value]
    with tempfile.TemporaryDirectory() as directory:
        root = os.path.join(directory, "imagenet_c")
        start = time.perf_counter()
        corrupted.write_tree(
            root, [(os.path.join(images, r[0]), r[2]) for r in rows]
        )
        generated = time.perf_counter() - start
        flat = os.path.join(directory, "single")
        count = single_tree(root, flat)
        single = configure(presets.imagenet("mobilenet"), weights, flat)
        single.preprocess.crop_fraction = 1.0
        single.preprocess.crop_mode = "crop_then_resize"
        command = configure(
            robustness_presets.imagenet_c("mobilenet"), weights, root
        )
        # Alternated, the single run first (any warm-up favours the
        # command, timed second); the fastest of each is compared (this
        # machine's noise only ever adds time).
        single_times = []
        command_times = []
        for repeat in range(_REPEATS.value):
            seconds, result = timed(
                single, os.path.join(directory, f"run{repeat}")
            )
            single_times.append(seconds)
            seconds, outcome = timed(
                command, os.path.join(directory, f"c{repeat}")
            )
            command_times.append(seconds)
        single_s = min(single_times)
        command_s = min(command_times)
    cells = outcome.record["cells"]
    counted = sum(c["num_examples"] for c in cells)
    correct = sum(c["top1_correct"] for c in cells)
    assert counted == count == result.num_examples, (counted, count)
    assert correct == result.correct[1], (correct, result.correct[1])
    print(
        f"{count} images ({len(cells)} cells of {len(rows)}; generated in "
        f"{generated:.0f} s), MobileNet 0.25, batch {_BATCH_SIZE.value}, "
        f"{os.cpu_count()} CPUs.\n"
        f"  one run over the {count} images: {single_s:.1f} s "
        f"(runs: {', '.join(f'{t:.1f}' for t in single_times)})\n"
        f"  imagenet_c command ({len(cells)} cells, model built once): "
        f"{command_s:.1f} s "
        f"(runs: {', '.join(f'{t:.1f}' for t in command_times)})\n"
        f"  command / single run: {command_s / single_s:.3f} "
        f"(mCE {outcome.record['mce']:.4f}, top-1 correct {correct} in both)"
    )


if __name__ == "__main__":
    app.run(main_)
