"""Tests of tf_topk.cli.leaderboard: the rows of a bulk run.

The files they become: cli_leaderboard_files_test.py.
"""

import dataclasses
import doctest

import tensorflow as tf
from absl.testing import parameterized

from tf_topk import results, testing
from tf_topk.cli import leaderboard


def preprocessing(**overrides):
    """A `preprocessing.Options.to_dict()` record."""
    options = dict(
        image_size=224,
        crop_fraction=0.875,
        interpolation="bilinear",
        antialias=True,
        crop_mode="resize_then_crop",
        num_crops=1,
    )
    options.update(overrides)
    return options


def make_metadata(**overrides):
    """What tf_topk.cli.run.run_one writes for one model."""
    metadata = dict(
        model={"name": "mobilenet", "alpha": 0.25, "image_size": 224},
        members=None,
        preprocessing=[preprocessing()],
        published={"top1": 0.684, "top5": 0.882},
        num_parameters=2_600_000,
    )
    metadata.update(overrides)
    return metadata


def make_result(correct=None, *, num_scored=650, **overrides):
    correct = {1: 504, 5: 618} if correct is None else correct
    ks = tuple(sorted(correct))
    fields = dict(
        ks=ks,
        num_examples=num_scored,
        num_scored=num_scored,
        correct=correct,
        ties={k: 0 for k in ks},
        nonfinite=0,
        unlabeled=0,
        per_class_correct=None,
        per_class_count=None,
        wall_time_s=2.0,
        images_per_s=325.0,
        input_time_s=0.5,
        model_time_s=1.5,
        metadata=make_metadata(),
    )
    fields.update(overrides)
    return testing.eval_result(**fields)


@dataclasses.dataclass(frozen=True)
class ResultWithInputRate(results.EvalResult):
    """An EvalResult whose throughput also reports the input pipeline."""

    def to_dict(self):
        record = super().to_dict()
        record["throughput"]["input_images_per_s"] = 1300.0
        return record


def ok_row(run, top1_correct, **overrides):
    result = make_result({1: top1_correct, 5: 618}, **overrides)
    return leaderboard.row(run, "mobilenet", result)


class FieldsTest(tf.test.TestCase):
    def test_columns_are_the_public_contract(self):
        self.assertEqual(
            leaderboard.FIELDS,
            (
                "run",
                "model",
                "status",
                "error",
                "num_examples",
                "top1",
                "top5",
                "top1_correct",
                "top5_correct",
                "top1_interval95_low",
                "top1_interval95_high",
                "top5_interval95_low",
                "top5_interval95_high",
                "published_top1",
                "published_top5",
                "top1_minus_published",
                "top5_minus_published",
                "images_per_s",
                "input_images_per_s",
                "num_parameters",
                "image_size",
                "preprocessing",
                "batch_size",
                "oom_backoffs",
                "latency_ms_p50",
                "latency_ms_p95",
                "peak_host_bytes",
                "peak_device_bytes",
            ),
        )
        self.assertEqual(
            tuple(f.name for f in dataclasses.fields(leaderboard.Row)),
            leaderboard.FIELDS,
        )


class RowTest(tf.test.TestCase, parameterized.TestCase):
    def test_hand_checked_values(self):
        entry = leaderboard.row("run0", "mobilenet alpha=0.25", make_result())
        self.assertEqual(entry.status, "ok")
        self.assertIsNone(entry.error)
        self.assertEqual(entry.num_examples, 650)
        self.assertEqual((entry.top1_correct, entry.top5_correct), (504, 618))
        self.assertAlmostEqual(entry.top1, 0.7753846153846154)
        self.assertAlmostEqual(entry.top5, 0.9507692307692308)
        # Wilson 95% of 504/650: center 0.7738, half-width 0.0320.
        self.assertAllClose(
            (entry.top1_interval95_low, entry.top1_interval95_high),
            (0.741738, 0.805796),
            atol=1e-6,
        )
        self.assertAllClose(
            (entry.top5_interval95_low, entry.top5_interval95_high),
            results.wilson_interval(618, 650),
        )
        self.assertEqual(entry.published_top1, 0.684)
        self.assertEqual(entry.published_top5, 0.882)
        # 0.775385 - 0.684 and 0.950769 - 0.882.
        self.assertAlmostEqual(entry.top1_minus_published, 0.0913846, 6)
        self.assertAlmostEqual(entry.top5_minus_published, 0.0687692, 6)
        self.assertEqual(entry.images_per_s, 325.0)
        self.assertIsNone(entry.input_images_per_s)
        self.assertEqual(entry.num_parameters, 2_600_000)
        self.assertEqual(entry.image_size, "224")
        self.assertEqual(
            entry.preprocessing, "resize_then_crop 0.875 bilinear aa 1 crop"
        )
        for name in leaderboard.FIELDS[-6:]:
            self.assertIsNone(getattr(entry, name), name)

    def test_batch_size_back_offs_latency_and_memory(self):
        result = make_result(
            batch_size=16,
            oom_backoffs=(64, 32),
            latency_ms_p50=12.5,
            latency_ms_p95=20.25,
            peak_host_bytes=3 * 2**29,
            peak_device_bytes=2**32,
        )
        entry = leaderboard.row("run0", "m", result)
        self.assertEqual(entry.batch_size, 16)
        self.assertEqual(entry.oom_backoffs, "64 32")
        self.assertEqual(
            (entry.latency_ms_p50, entry.latency_ms_p95), (12.5, 20.25)
        )
        self.assertEqual(entry.peak_host_bytes, 1_610_612_736)
        self.assertEqual(entry.peak_device_bytes, 4_294_967_296)

    def test_no_back_off_is_an_empty_cell(self):
        entry = leaderboard.row("run0", "m", make_result(batch_size=64))
        self.assertEqual(entry.batch_size, 64)
        self.assertIsNone(entry.oom_backoffs)

    def test_a_record_written_before_latency_and_memory(self):
        record = make_result().to_dict()
        for key in ("batch_size", "oom_backoffs", "memory"):
            del record[key]
        for key in ("latency_ms_p50", "latency_ms_p95"):
            del record["throughput"][key]
        entry = leaderboard.row("run0", "m", results.from_record(record))
        self.assertEqual(entry.top1_correct, 504)
        for name in leaderboard.FIELDS[-6:]:
            self.assertIsNone(getattr(entry, name), name)

    def test_input_rate_is_read_from_the_throughput_record(self):
        result = ResultWithInputRate(**dataclasses.asdict(make_result()))
        entry = leaderboard.row("run0", "mobilenet", result)
        self.assertEqual(entry.input_images_per_s, 1300.0)

    @parameterized.named_parameters(
        ("top1_only", {1: 504}, 1, 5),
        ("top5_only", {5: 618}, 5, 1),
    )
    def test_a_k_not_evaluated_leaves_its_cells_empty(
        self, correct, present, absent
    ):
        entry = leaderboard.row("run0", "m", make_result(correct))
        self.assertIsNotNone(getattr(entry, f"top{present}"))
        self.assertIsNotNone(getattr(entry, f"top{present}_minus_published"))
        for suffix in (
            "",
            "_correct",
            "_interval95_low",
            "_interval95_high",
            "_minus_published",
        ):
            self.assertIsNone(getattr(entry, f"top{absent}{suffix}"))
        # The published figure stays: it is known, only the run lacks k.
        self.assertIsNotNone(getattr(entry, f"published_top{absent}"))

    def test_no_metadata_leaves_the_model_cells_empty(self):
        entry = leaderboard.row("run0", "m", make_result(metadata={}))
        self.assertEqual(entry.top1_correct, 504)
        for name in (
            "published_top1",
            "top1_minus_published",
            "num_parameters",
            "image_size",
            "preprocessing",
        ):
            self.assertIsNone(getattr(entry, name), name)

    @parameterized.named_parameters(
        ("sizes_differ", (224, 299), "224/299"),
        ("same_size", (224, 224), "224"),
    )
    def test_ensemble(self, sizes, expected_size):
        metadata = make_metadata(
            model="resnet50+inception_v3",
            members=[{"name": "m", "image_size": s} for s in sizes],
            preprocessing=[
                preprocessing(image_size=sizes[0]),
                preprocessing(image_size=sizes[1], crop_fraction=1.0),
            ],
            published=None,
            num_parameters=49_000_000,
        )
        entry = leaderboard.row("run0", "e", make_result(metadata=metadata))
        self.assertEqual(entry.image_size, expected_size)
        self.assertEqual(
            entry.preprocessing,
            "resize_then_crop 0.875 bilinear aa 1 crop"
            " / resize_then_crop 1 bilinear aa 1 crop",
        )
        self.assertEqual(entry.num_parameters, 49_000_000)
        self.assertIsNone(entry.published_top1)

    def test_image_size_falls_back_to_the_preprocessing(self):
        metadata = make_metadata(
            model="custom", preprocessing=[preprocessing(image_size=160)]
        )
        entry = leaderboard.row("run0", "m", make_result(metadata=metadata))
        self.assertEqual(entry.image_size, "160")

    def test_identical_member_preprocessing_is_written_once(self):
        metadata = make_metadata(
            model="e",
            members=[{"image_size": 224}, {"image_size": 224}],
            preprocessing=[preprocessing(), preprocessing()],
        )
        entry = leaderboard.row("run0", "e", make_result(metadata=metadata))
        self.assertEqual(
            entry.preprocessing, "resize_then_crop 0.875 bilinear aa 1 crop"
        )

    def test_describe_preprocessing_without_antialias_and_ten_crops(self):
        self.assertEqual(
            leaderboard.describe_preprocessing(
                preprocessing(
                    crop_mode="crop_then_resize",
                    interpolation="bicubic",
                    antialias=False,
                    num_crops=10,
                )
            ),
            "crop_then_resize 0.875 bicubic no-aa 10 crops",
        )


class FailedTest(tf.test.TestCase, parameterized.TestCase):
    def test_exception_on_one_line_and_no_measurement(self):
        entry = leaderboard.failed(
            "run3", "vgg16", FileNotFoundError("no weights\n  at /w/x.h5")
        )
        self.assertEqual(entry.status, "failed")
        self.assertEqual(
            entry.error, "FileNotFoundError: no weights at /w/x.h5"
        )
        for name in leaderboard.FIELDS[4:]:
            self.assertIsNone(getattr(entry, name), name)

    @parameterized.named_parameters(
        ("string", "out of memory\r\nat step 3", "out of memory at step 3"),
        ("empty_message", MemoryError(), "MemoryError"),
    )
    def test_error_rendering(self, error, expected):
        self.assertEqual(leaderboard.failed("r", "m", error).error, expected)

    def test_long_error_is_cut(self):
        entry = leaderboard.failed("r", "m", ValueError("x" * 2000))
        self.assertLen(entry.error, leaderboard.MAX_ERROR_CHARS)
        self.assertTrue(entry.error.startswith("ValueError: xxx"))
        self.assertTrue(entry.error.endswith("x..."))


class DescribeModelTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("no_overrides", {}, "mobilenet"),
        ("alpha", {"alpha": 0.25}, "mobilenet alpha=0.25"),
        (
            "sorted_by_key",
            {"weights": "/path/x.h5", "alpha": 0.25, "include_top": True},
            "mobilenet alpha=0.25 include_top=True weights=/path/x.h5",
        ),
        (
            "string_without_quotes",
            {"output": "logits"},
            "mobilenet output=logits",
        ),
    )
    def test_describe(self, overrides, expected):
        self.assertEqual(
            leaderboard.describe_model("mobilenet", overrides), expected
        )


class ErrorsTest(tf.test.TestCase):
    def test_empty_run(self):
        with self.assertRaises(ValueError) as raised:
            leaderboard.row("", "m", make_result())
        self.assertEqual(
            str(raised.exception),
            "Argument `run` must be a non-empty name. Received: run=''",
        )

    def test_result_of_the_wrong_type(self):
        with self.assertRaises(TypeError) as raised:
            leaderboard.row("run0", "m", make_result().to_dict())
        self.assertEqual(
            str(raised.exception),
            "Argument `result` must be a tf_topk.results.EvalResult (what "
            "evaluation.evaluate returns); for a run that raised, use "
            "leaderboard.failed(run, model, error). "
            "Received: result of type dict",
        )

    def test_run_not_a_string(self):
        with self.assertRaises(TypeError) as raised:
            leaderboard.failed(0, "m", "boom")
        self.assertEqual(
            str(raised.exception),
            "Argument `run` must be a string. Received: run=0 of type int",
        )

    def test_empty_error(self):
        with self.assertRaises(ValueError) as raised:
            leaderboard.failed("run0", "m", " \n")
        self.assertEqual(
            str(raised.exception),
            "Argument `error` must say why the run failed. "
            "Received: error=' \\n'",
        )

    def test_bad_status(self):
        with self.assertRaises(ValueError) as raised:
            leaderboard.Row(run="run0", model="m", status="error")
        self.assertEqual(
            str(raised.exception),
            "Argument `status` must be one of ['ok', 'failed']. "
            "Received: status='error'",
        )

    def test_overrides_not_a_mapping(self):
        with self.assertRaises(TypeError) as raised:
            leaderboard.describe_model("mobilenet", ["alpha"])
        self.assertEqual(
            str(raised.exception),
            "Argument `overrides` must be a mapping of setting to value, "
            "e.g. {'alpha': 0.25} ({} for none). "
            "Received: overrides=['alpha']",
        )

    def test_duplicate_runs(self):
        rows = [leaderboard.failed("run0", "m", "a")] * 2
        with self.assertRaises(ValueError) as raised:
            leaderboard.checked_rows(rows)
        self.assertEqual(
            str(raised.exception),
            "Argument `rows` must name each run once: run names are the "
            "runs' folders. Received: run='run0' twice. Give each run its "
            "own name.",
        )

    def test_not_a_row(self):
        with self.assertRaises(TypeError) as raised:
            leaderboard.any_failed([{"run": "run0"}])
        self.assertEqual(
            str(raised.exception),
            "Argument `rows` must hold leaderboard.Row values (from "
            "leaderboard.row or leaderboard.failed). Received: rows[0] of "
            "type dict",
        )


class AnyFailedTest(tf.test.TestCase):
    def test_any_failed(self):
        ok = ok_row("run0", 504)
        self.assertFalse(leaderboard.any_failed([ok]))
        self.assertFalse(leaderboard.any_failed([]))
        self.assertTrue(
            leaderboard.any_failed([ok, leaderboard.failed("run1", "m", "x")])
        )

    def test_doctest(self):
        failures, attempted = doctest.testmod(leaderboard)
        self.assertEqual(failures, 0)
        self.assertGreater(attempted, 0)


if __name__ == "__main__":
    tf.test.main()
