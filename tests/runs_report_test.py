"""Tests of tf_topk.runs.report: report.html of a run.

A tiny hand-made workdir (5 classes, 10 examples, 7 right at top-1) gives
exact numbers; one test renders the page in headless Chromium and skips
where no Chromium is installed.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import tempfile

import tensorflow as tf
from absl.testing import parameterized
from runs_tallies_test import LABELS, TOP_CLASSES

from tf_topk import testing
from tf_topk.runs import report

NAMES = ["cat", "dog", "<script>alert(1)</script>", "fish & chips", "bird"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
]
# Appended to a copy of the page: records whether each <img> decoded.
IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const decoded = images.filter(i => i.complete && i.naturalWidth > 0);
  document.body.setAttribute(
      "data-decoded", decoded.length + "/" + images.length);
});
</script>"""


def write_workdir(directory, *, source="files", predictions=True):
    """A finished run's files; returns the workdir."""
    workdir = os.path.join(directory, "run")
    images = os.path.join(directory, "images")
    os.makedirs(workdir)
    os.makedirs(images)
    files = testing.write_image_files(
        images, LABELS, num_classes=5, height=300, width=200
    )
    results = {
        "num_examples": 10,
        "top1": 0.7,
        "top1_correct": 7,
        "top1_interval95": [0.397, 0.892],
        "top5": 1.0,
        "top5_correct": 10,
        "top5_interval95": [0.722, 1.0],
        "num_scored": 10,
        "ties": {"top1": 1, "top5": 0},
        "ties_rule": "lowest_index",
        "nonfinite": 2,
        "unlabeled": 0,
        "wall_time_s": 1.5,
        "resumed_from": None,
        "throughput": {
            "images_per_s": 99.5,
            "input_time_s": 0.2,
            "model_time_s": 0.7,
        },
        "model": {"name": "tiny<b>net</b>", "weights": "imagenet"},
        "data": {"source": source, "path": images, "num_skipped": 0},
        "preprocessing": [{"image_size": 224, "crop_fraction": 0.875}],
        "published": {"top1": 0.75, "top5": None},
        "versions": {"tf_topk": "0.1", "tensorflow": tf.__version__},
        "device": "cpu",
        "devices": [],
        "distribution": "default",
        "config": {"eval": {"batch_size": 4, "save_predictions": True}},
        "diagnostics": ["labels look off by one"],
    }
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump(results, f)
    write_per_class(workdir, NAMES, [2, 2, 2, 0, 1], [2, 2, 2, 2, 2])
    if predictions:
        folder = os.path.join(workdir, "predictions")
        os.makedirs(folder)
        path = os.path.join(folder, "predictions-00000-of-00001.jsonl")
        with open(path, "w") as f:
            for i, (label, classes) in enumerate(zip(LABELS, TOP_CLASSES)):
                scores = [0.5 - 0.1 * r - 0.01 * i for r in range(5)]
                record = {
                    "id": os.path.basename(files[i]),
                    "labels": [label],
                    "top_classes": classes,
                    "top_scores": scores,
                }
                f.write(json.dumps(record) + "\n")
    return workdir


def write_per_class(workdir, names, correct, count):
    with open(os.path.join(workdir, "per_class.csv"), "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(
            ["class_index", "class_name", "correct", "count", "top1"]
        )
        for i, name in enumerate(names):
            top1 = f"{correct[i] / count[i]:.6f}" if count[i] else ""
            writer.writerow([i, name, correct[i], count[i], top1])


class WriteTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.workdir = write_workdir(self.get_temp_dir())

    def read_page(self, **options):
        path = report.write(self.workdir, **options)
        self.assertEqual(path, os.path.join(self.workdir, "report.html"))
        with open(path) as f:
            return f.read()

    def test_sections_present(self):
        page = self.read_page()
        for title in [
            "Results",
            "Top-k accuracy, k = 1..10",
            "Per-class top-1",
            "The 2 classes with the most top-1 errors",
            "Most confused class pairs",
            "Ties and non-finite predictions",
            "Wrong predictions",
            "Run",
            "Config",
        ]:
            self.assertIn(f">{title}<", page)
        # Results table with intervals and the published figure.
        self.assertIn("70.00%", page)
        self.assertIn("[39.70%, 89.20%]", page)
        self.assertIn("75.00%", page)
        self.assertIn("-5.00 points", page)
        # Ties and non-finite counts; the diagnosis.
        self.assertIn("top1: 1, top5: 0", page)
        self.assertIn("<td>non-finite predictions</td><td>2</td>", page)
        self.assertIn("labels look off by one", page)
        # The curve table: top-3 is 90%.
        self.assertIn("<td>90.00%</td>", page)
        # Throughput and versions.
        self.assertIn("99.5", page)
        self.assertIn(tf.__version__, page)

    def test_plots_and_thumbnails_embedded(self):
        page = self.read_page()
        plots_found = re.findall(
            r'<img class="plot"[^>]*src="data:image/png;', page
        )
        # The curve, the histogram, the worst classes, the confused pairs.
        self.assertLen(plots_found, 4)
        # The 3 top-1 errors, each named in words.
        self.assertLen(re.findall(r'src="data:image/jpeg;base64,', page), 3)
        self.assertIn("true: 3 fish &amp; chips", page)
        self.assertIn("predicted: 2 &lt;script&gt;", page)

    def test_max_thumbnails(self):
        page = self.read_page(max_thumbnails=1)
        self.assertLen(re.findall(r'src="data:image/jpeg;', page), 1)

    def test_every_string_escaped(self):
        page = self.read_page()
        self.assertNotIn("<script>", page)
        self.assertNotIn("<b>net</b>", page)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
        self.assertIn("tiny&lt;b&gt;net&lt;/b&gt;", page)

    def test_no_request_leaves_the_page(self):
        page = self.read_page()
        urls = re.findall(r'(?:src|href)\s*=\s*["\']?([^"\'\s>]+)', page)
        self.assertNotEmpty(urls)
        for url in urls:
            self.assertRegex(url, r"^(data:image/(png|jpeg);base64,|#)")
        self.assertNotRegex(page, r"https?://")
        self.assertIn(report.CONTENT_SECURITY_POLICY, page)

    def test_tensorboard_images(self):
        report.write(self.workdir)
        events = tf.io.gfile.glob(
            os.path.join(self.workdir, "tensorboard", "events.out.tfevents.*")
        )
        self.assertLen(events, 1)
        tags = {
            value.tag
            for event in tf.compat.v1.train.summary_iterator(events[0])
            for value in event.summary.value
        }
        self.assertEqual(
            tags,
            {
                "report/topk_curve",
                "report/per_class_top1",
                "report/worst_classes",
                "report/confused_pairs",
            },
        )

    def test_without_predictions(self):
        shutil.rmtree(os.path.join(self.workdir, "predictions"))
        page = self.read_page()
        self.assertEqual(page.count(report.SAVE_PREDICTIONS_FLAG), 3)
        self.assertIn(">The 2 classes with the most top-1 errors<", page)
        # The histogram and worst classes only; no thumbnails.
        self.assertLen(re.findall(r'src="data:image/png;', page), 2)
        self.assertNotIn("data:image/jpeg", page)

    def test_per_class_from_predictions_without_csv(self):
        os.remove(os.path.join(self.workdir, "per_class.csv"))
        page = self.read_page()
        self.assertIn("<td>1 / 2</td>", page)
        self.assertIn(">The 2 classes with the most top-1 errors<", page)

    def test_latency_memory_and_back_offs(self):
        path = os.path.join(self.workdir, "results.json")
        with open(path) as f:
            results = json.load(f)
        results["throughput"].update(latency_ms_p50=12.5, latency_ms_p95=20.25)
        results["batch_size"] = 16
        results["oom_backoffs"] = [64, 32]
        # 1.5 GiB and 300.0 MiB.
        results["memory"] = {
            "peak_host_bytes": 3 * 2**29,
            "peak_device_bytes": 300 * 2**20,
        }
        with open(path, "w") as f:
            json.dump(results, f)
        page = self.read_page()
        self.assertIn(">Throughput, latency and memory<", page)
        self.assertIn("<td>batch_size</td><td>16</td>", page)
        self.assertIn(
            "<td>step latency</td><td>p50 12.50 ms, p95 20.25 ms</td>", page
        )
        self.assertIn(
            "<td>peak memory</td><td>host 1.5 GiB, device 300.0 MiB</td>",
            page,
        )
        self.assertIn(
            '<p class="note">Out of memory at batch 64, 32: finished at '
            "batch 16.</p>",
            page,
        )
        self.assertNotIn("latency_ms_p50", page)

    def test_a_record_without_latency_or_memory(self):
        # The fixture's results.json predates them: no batch_size,
        # oom_backoffs, memory or latency keys.
        page = self.read_page()
        self.assertIn("<td>batch_size</td><td>n/a</td>", page)
        self.assertIn("<td>step latency</td><td>n/a</td>", page)
        self.assertIn("<td>peak memory</td><td>n/a</td>", page)
        self.assertNotIn("Out of memory", page)

    def test_ensemble_members_listed(self):
        path = os.path.join(self.workdir, "results.json")
        with open(path) as f:
            results = json.load(f)
        results["model"] = "ensemble_of_two"
        results["members"] = [{"name": "alpha_net"}, {"name": "beta_net"}]
        with open(path, "w") as f:
            json.dump(results, f)
        page = self.read_page()
        for name in ["ensemble_of_two", "alpha_net", "beta_net"]:
            self.assertIn(name, page)

    @parameterized.named_parameters(("tfds", "tfds"), ("tfrecord", "tfrecord"))
    def test_no_thumbnails_without_files(self, source):
        workdir = write_workdir(self.create_tempdir().full_path, source=source)
        page = open(report.write(workdir)).read()
        self.assertIn(f"the data source is &#x27;{source}&#x27;", page)
        self.assertNotIn("data:image/jpeg", page)

    def test_missing_image_noted(self):
        os.remove(os.path.join(self.get_temp_dir(), "images", "image_0003.jpg"))
        page = self.read_page()
        self.assertIn("1 image(s) could not be read", page)
        self.assertLen(re.findall(r'src="data:image/jpeg;', page), 2)

    def test_classes_ranked_by_errors_with_counts_and_intervals(self):
        # per_class.csv: 2/2, 2/2, 2/2, 0/2, 1/2: class 3 has two errors,
        # class 4 one; the others none and are not listed.
        page = self.read_page()
        rows = re.findall(
            r"<tr><td class=\"num\">(\d)</td><td>[^<]*</td>"
            r"<td class=\"num\">(\d)</td><td>(\d / \d)</td>"
            r"<td>([^<]*)</td><td>([^<]*)</td></tr>",
            page,
        )
        # Wilson 95% by hand: 0/2 (0, 65.76%), 1/2 (9.45%, 90.55%).
        self.assertEqual(
            rows,
            [
                ("3", "2", "0 / 2", "0.00%", "[0.00%, 65.76%]"),
                ("4", "1", "1 / 2", "50.00%", "[9.45%, 90.55%]"),
            ],
        )
        # Two images a class: too few to rank, and the page says so.
        self.assertIn(
            "Too few images to rank classes: the median class holds 2 "
            "image(s), fewer than 10.",
            page,
        )

    def test_one_image_classes_all_wrong_are_listed_by_errors(self):
        # The case of the issue: many classes of one image, all at 0%
        # (which a ranking by top-1 drew as empty bars).
        write_per_class(
            self.workdir, [f"class {i}" for i in range(30)], [0] * 30, [1] * 30
        )
        shutil.rmtree(os.path.join(self.workdir, "predictions"))
        page = self.read_page()
        self.assertIn(">The 20 classes with the most top-1 errors<", page)
        self.assertEqual(
            page.count("<td>0 / 1</td><td>0.00%</td><td>[0.00%, 79.35%]"), 20
        )
        self.assertIn("the median class holds 1 image(s)", page)

    def test_enough_images_no_caveat_and_no_error_no_chart(self):
        write_per_class(self.workdir, NAMES, [10, 11, 9, 12, 12], [12] * 5)
        shutil.rmtree(os.path.join(self.workdir, "predictions"))
        page = self.read_page()
        self.assertNotIn("Too few images to rank", page)
        self.assertIn(">The 3 classes with the most top-1 errors<", page)
        write_per_class(self.workdir, NAMES, [12] * 5, [12] * 5)
        page = self.read_page()
        self.assertIn(">Classes with top-1 errors<", page)
        self.assertIn("No class has a top-1 error.", page)
        # The histogram only.
        self.assertLen(re.findall(r'src="data:image/png;', page), 1)

    def test_missing_results(self):
        empty = self.create_tempdir().full_path
        with self.assertRaisesRegex(
            FileNotFoundError,
            r"Argument `workdir` must hold a finished run's results.json. "
            rf"Received: workdir='{re.escape(empty)}'",
        ):
            report.write(empty)

    def test_negative_max_thumbnails(self):
        with self.assertRaisesRegex(
            ValueError,
            r"Argument `max_thumbnails` must be a non-negative integer. "
            r"Received: max_thumbnails=-1",
        ):
            report.write(self.workdir, max_thumbnails=-1)

    def test_malformed_prediction_line(self):
        path = os.path.join(
            self.workdir, "predictions", "predictions-00000-of-00001.jsonl"
        )
        with open(path, "a") as f:
            f.write('{"id": "x", "labels": [0]}\n')
        with self.assertRaisesRegex(
            ValueError,
            r"predictions-00000-of-00001.jsonl:11: expected a JSON object "
            r"with a non-empty string `id`, `labels` \(class indices\), 1 to "
            r"10 `top_classes` \(class indices\) and as many numeric "
            r"`top_scores`\. Received: ",
        ):
            report.write(self.workdir)


def run_chromium(*arguments):
    """Runs headless Chromium; returns (stdout, its console messages)."""
    with tempfile.TemporaryDirectory() as profile:
        process = subprocess.run(
            [shutil.which("chromium"), *CHROMIUM_FLAGS]
            + [f"--user-data-dir={profile}", *arguments],
            capture_output=True,
            text=True,
            timeout=120,
        )
    # With --enable-logging=stderr every console message of the page (a
    # script error, console.error, a request refused by the page's CSP) is
    # one ":CONSOLE" log line whatever its level; the report has no
    # script, so any such line is a failure.
    console = [
        line for line in process.stderr.splitlines() if ":CONSOLE" in line
    ]
    return process.stdout, console


class BrowserTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        if shutil.which("chromium") is None:
            self.skipTest(
                "No `chromium` on PATH: install Debian's chromium package "
                "(.ci/run does where apt-get works) to render the report"
            )

    def test_console_errors_are_caught(self):
        # The check below would pass vacuously if this Chromium logged
        # console messages differently: a refused request must show.
        page = os.path.join(self.get_temp_dir(), "leak.html")
        with open(page, "w") as f:
            f.write(
                '<meta http-equiv="Content-Security-Policy" content="'
                f'{report.CONTENT_SECURITY_POLICY}">'
                '<img src="http://example.invalid/x.png">'
            )
        _, console = run_chromium("--dump-dom", f"file://{page}")
        self.assertLen(console, 1)
        self.assertIn("Content Security Policy", console[0])

    def test_renders_without_console_errors(self):
        workdir = write_workdir(self.get_temp_dir())
        path = report.write(workdir)
        screenshot = os.path.join(self.get_temp_dir(), "report.png")
        stdout, console = run_chromium(
            f"--screenshot={screenshot}",
            "--window-size=1280,4000",
            f"file://{path}",
        )
        self.assertEqual(console, [], stdout)
        pixels = tf.io.decode_png(tf.io.read_file(screenshot), channels=3)
        self.assertEqual(pixels.shape, (4000, 1280, 3))
        not_white = tf.reduce_mean(
            tf.cast(tf.reduce_any(pixels < 200, -1), tf.float32)
        )
        self.assertGreater(float(not_white), 0.02)
        # A copy whose script (allowed by its CSP) records which images
        # the browser decoded: all plots and thumbnails must be real images.
        with open(path) as f:
            page = f.read()
        policy = report.CONTENT_SECURITY_POLICY
        page = page.replace(policy, f"{policy}; script-src 'unsafe-inline'")
        page = page.replace("</body>", IMAGE_PROBE + "</body>")
        probe = os.path.join(self.get_temp_dir(), "probe.html")
        with open(probe, "w") as f:
            f.write(page)
        dom, console = run_chromium("--dump-dom", f"file://{probe}")
        self.assertEqual(console, [])
        self.assertIn('data-decoded="7/7"', dom)
        self.assertLen(re.findall(r'<img class="plot"', dom), 4)


if __name__ == "__main__":
    tf.test.main()
