"""Bad input, end to end: each mistake a user can make is refused clearly.

Every case goes through `tf_topk.cli.run.run` (or the command line) on tiny
generated data and checks the rendered message: it names the argument or
config path, the value received and the fix (STYLE.md, "Errors"). After a
failing run the workdir holds nothing that looks like a result: no
results.json, no per_class.csv, no TensorBoard events and no `*.tmp-*` file
(tf_topk.runs.files writes atomically, and results.json last).

Not errors, and checked as behaviour: NaN outputs count as wrong and are
reported as `nonfinite`; float16 outputs count as float32 ones; a corrupt
image is skipped and listed with `skip_corrupt=True`.

The two factories below are models for `config.model.weights=
"bad_input_test:<factory>"` (tests/ is on sys.path under pytest, and
`run_cli` puts it on PYTHONPATH).
"""

import glob
import json
import os
import re

import cli_main_test
import keras
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import testing
from tf_topk.cli import main, run
from tf_topk.runs import files

NUM_CLASSES = cli_main_test.NUM_CLASSES  # 5
NUM_EXAMPLES = 10  # Batch 4: a partial last batch.
# The smoke images paint class i % 5 into image i; labels agree on the
# first 7. Class 0 is painted into images 0 and 5, both labelled right.
NAN_CLASS = 0


def nan_model(num_classes: int = NUM_CLASSES) -> keras.Model:
    """The oracle, with NaN logits for images painted as class NAN_CLASS."""
    oracle = testing.oracle_model(num_classes)

    def poison(logits):
        hit = keras.ops.equal(keras.ops.argmax(logits, axis=-1), NAN_CLASS)
        return keras.ops.where(hit[:, None], float("nan"), logits)

    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(poison)(oracle(inputs))
    return keras.Model(inputs, outputs, name="nan_oracle")


def float16_model(num_classes: int = NUM_CLASSES) -> keras.Model:
    """The oracle with float16 outputs (|logits| <= 255**2 < fp16 max)."""
    oracle = testing.oracle_model(num_classes)
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(lambda x: keras.ops.cast(x, "float16"))(
        oracle(inputs)
    )
    return keras.Model(inputs, outputs, name="float16_oracle")


# Set-up steps of the cases: each takes the test and changes its config or
# writes its data under test.dir.


def set_fields(**fields):
    """Sets `section__key=value` config fields (ConfigDicts are locked)."""

    def setup(test):
        for name, value in fields.items():
            section, _, key = name.rpartition("__")
            target = test.config[section] if section else test.config
            with test.config.unlocked():
                target[key] = value

    return setup


def chain(*steps):
    def setup(test):
        for step in steps:
            step(test)

    return setup


def use_path(relative, source=None, labels_file=None):
    def setup(test):
        test.config.data.path = os.path.join(test.dir, relative)
        if source:
            test.config.data.source = source
        if labels_file:
            test.config.data.labels_file = os.path.join(test.dir, labels_file)

    return setup


def write(relative, data: bytes):
    def setup(test):
        path = os.path.join(test.dir, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    return setup


def truncate_first_image(test):
    folder = os.path.join(test.images, sorted(os.listdir(test.images))[0])
    path = os.path.join(folder, sorted(os.listdir(folder))[0])
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def flat_images(count=3):
    """`plain/image_000i.jpg`, painted as class i."""

    def setup(test):
        folder = os.path.join(test.dir, "plain")
        os.makedirs(folder)
        testing.write_image_files(
            folder, list(range(count)), num_classes=NUM_CLASSES
        )

    return setup


def ilsvrc_images(classes, num_classes=NUM_CLASSES):
    """`ilsvrc/images/ILSVRC2012_val_%08d.JPEG` and `ilsvrc/labels.txt`."""

    def setup(test):
        folder = os.path.join(test.dir, "ilsvrc")
        os.makedirs(folder)
        testing.write_ilsvrc_files(
            folder, classes, classes, num_classes=num_classes
        )

    return setup


def tfrecords(**kwargs):
    """Three shards under `tfr/` of the ten smoke examples."""

    def setup(test):
        folder = os.path.join(test.dir, "tfr")
        os.makedirs(folder)
        classes = np.arange(NUM_EXAMPLES) % NUM_CLASSES
        testing.write_tfrecords(
            folder, classes, classes, num_classes=NUM_CLASSES, **kwargs
        )
        test.config.data.source = "tfrecord"
        test.config.data.path = folder

    return setup


def truncate(relative, num_bytes):
    def setup(test):
        path = os.path.join(test.dir, relative)
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:-num_bytes])

    return setup


def ensemble(weights):
    """Two oracle members with `config.ensemble_weights=weights`."""

    def setup(test):
        with test.config.unlocked():
            model = test.config.model
            test.config.members = {
                "member0": model.copy_and_resolve_references(),
                "member1": model.copy_and_resolve_references(),
            }
            test.config.ensemble_weights = weights

    return setup


def workdir_is_a_file(test):
    with open(test.workdir, "w") as f:
        f.write("not a folder")


TSV_PLAIN = "plain/labels.tsv"
SHARD = "tfr/validation-00001-of-00003"

# (name, set-up, exception, regex of the message; {tmp} is the test folder)
RUN_CASES = (
    (
        "source_typo",
        set_fields(data__source="tfrecords"),
        ValueError,
        r"`config\.data\.source` must be one of \['files', 'folder', 'tfds', "
        r"'tfrecord'\]\. Received: 'tfrecords'",
    ),
    (
        "interpolation_typo",
        set_fields(preprocess__interpolation="bicubik"),
        ValueError,
        r"Argument `interpolation` must be one of \[.*'bicubic'.*\]\. "
        r"Received: interpolation='bicubik'",
    ),
    (
        "path_not_set",
        set_fields(data__path=None),
        ValueError,
        r"`config\.data\.path` must be set for config\.data\.source="
        r"'folder'\. Received: None",
    ),
    (
        "path_empty",
        set_fields(data__path=""),
        ValueError,
        r"`config\.data\.path` must be set for config\.data\.source="
        r"'folder'\. Received: ''",
    ),
    (
        "path_missing",
        use_path("missing"),
        FileNotFoundError,
        r"Argument `path` names a path that does not exist\. "
        r"Received: path='{tmp}/missing'",
    ),
    (
        "labels_file_missing",
        chain(flat_images(), use_path("plain", "files", "missing.tsv")),
        FileNotFoundError,
        r"Argument `labels_file` names a path that does not exist\. "
        r"Received: labels_file='{tmp}/missing\.tsv'",
    ),
    (
        "folder_without_class_folders",
        chain(flat_images(), use_path("plain")),
        ValueError,
        r"Argument `path` must be a folder of class subfolders \(one "
        r"subfolder of images per class\)\. Received: path='{tmp}/plain', "
        r"which has no subfolders\. Point it at the folder above the class "
        r"folders, or use source='files' for a flat folder\.",
    ),
    (
        "folder_of_non_images",
        chain(
            write("texts/class_a/notes.txt", b"hello"),
            write("texts/class_b/data.csv", b"1,2"),
            use_path("texts"),
        ),
        ValueError,
        r"Argument `path` must hold images \(extensions \['\.bmp', .*\]\) in "
        r"its class subfolders\. Received: path='{tmp}/texts', whose 2 "
        r"subfolders hold no image files\. Point it at the folder of class "
        r"folders of images\.",
    ),
    (
        "every_image_corrupt_with_skip_corrupt",
        chain(
            write("fake/class_a/a.jpg", b"not a jpeg"),
            write("fake/class_a/b.png", b"not a png"),
            use_path("fake"),
            set_fields(data__skip_corrupt=True),
        ),
        ValueError,
        r"Every image of the folder source at '{tmp}/fake' is corrupt\. "
        r"Received: skip_corrupt=True and 2 images, none of which decodes\. "
        r"Check that the files are images",
    ),
    (
        "truncated_jpeg_among_good_ones",
        truncate_first_image,
        ValueError,
        r"Could not read or decode image {tmp}/images/class_00/image_0000\.jpg"
        r" \(corrupt, truncated or not an image\)\. Fix or remove it, or pass "
        r"skip_corrupt=True to leave it out",
    ),
    (
        "truncated_tfrecord_shard",
        chain(tfrecords(), truncate(SHARD, 100)),
        ValueError,
        r"TFRecord shard '{tmp}/tfr/validation-00001-of-00003' is truncated "
        r"or corrupt: only its first [0-3] records read \(.+\)\. Copy the "
        r"shard again, or leave it out of `path`\.",
    ),
    (
        "tfrecord_label_under_another_key",
        tfrecords(label_key="label"),
        ValueError,
        r"Record 0 of TFRecord shard '{tmp}/tfr/validation-00000-of-00003' "
        r"has no feature 'image/class/label' \(its features: .*'label': "
        r"'int64_list'.*\)\. Expected .* label_key='image/class/label': "
        r"pass the keys the shard uses, or rewrite it\.",
    ),
    (
        "tfrecord_zero_based_labels_read_as_one_based",
        tfrecords(label_offset=0),
        ValueError,
        r"Label 0 of '{tmp}/tfr/validation-00000-of-00003' record 0 is "
        r"outside the class range: after the label offset it is -1, not in "
        r"\[0, 5\)\. Check `label_offset` and `num_classes`\.",
    ),
    (
        "labels_out_of_range",
        set_fields(data__num_classes=3),
        ValueError,
        r"Label 'class_03' of folder '{tmp}/images/class_03' is outside the "
        r"class range: after the label offset it is 3, not in \[0, 3\)\. "
        r"Check `label_offset` and `num_classes`\.",
    ),
    (
        "negative_label_in_a_tsv",
        chain(
            flat_images(2),
            write(TSV_PLAIN, b"image_0000.jpg\t0\nimage_0001.jpg\t-1\n"),
            use_path("plain", "files", TSV_PLAIN),
        ),
        ValueError,
        r"Label '-1' of '{tmp}/plain/image_0001\.jpg' \({tmp}/plain/labels"
        r"\.tsv:2\) is outside the class range: after the label offset it is "
        r"-1, not in \[0, 5\)\. Check `label_offset` and `num_classes`\.",
    ),
    (
        "non_numeric_label_in_a_tsv",
        chain(
            flat_images(2),
            write(TSV_PLAIN, b"image_0000.jpg\tcat\nimage_0001.jpg\t1\n"),
            use_path("plain", "files", TSV_PLAIN),
        ),
        ValueError,
        r"Label 'cat' of '{tmp}/plain/image_0000\.jpg' \({tmp}/plain/labels"
        r"\.tsv:1\) is neither a WordNet synset \(n01440764\) nor an integer "
        r"class index\.",
    ),
    (
        "one_based_labels_into_a_1000_class_model",
        chain(
            ilsvrc_images([0, 999, 5], num_classes=1000),
            write("ilsvrc/labels.txt", b"1\n1000\n6\n"),
            use_path("ilsvrc/images", "files", "ilsvrc/labels.txt"),
            set_fields(model__kwargs={"num_classes": 1000}),
            set_fields(data__num_classes=1000),
        ),
        ValueError,
        r"Label '1000' of '{tmp}/ilsvrc/images/ILSVRC2012_val_00000002\.JPEG'"
        r" \({tmp}/ilsvrc/labels\.txt:2\) is outside the class range: after "
        r"the label offset it is 1000, not in \[0, 1000\)\. Check "
        r"`label_offset` and `num_classes`\.",
    ),
    (
        "ground_truth_shorter_than_the_folder",
        chain(
            ilsvrc_images([0, 1, 2, 3]),
            write("ilsvrc/labels.txt", b"0\n1\n2\n"),
            use_path("ilsvrc/images", "files", "ilsvrc/labels.txt"),
        ),
        ValueError,
        r"Argument `labels_file` has no label for image '{tmp}/ilsvrc/images/"
        r"ILSVRC2012_val_00000004\.JPEG': line 4 of the file is missing \(3 "
        r"lines\)\. Received: labels_file='{tmp}/ilsvrc/labels\.txt'\. Pass "
        r"the ground truth of these images",
    ),
    (
        "tsv_shorter_than_the_folder",
        chain(
            flat_images(3),
            write(TSV_PLAIN, b"image_0000.jpg\t0\nimage_0002.jpg\t2\n"),
            use_path("plain", "files", TSV_PLAIN),
        ),
        ValueError,
        r"Argument `labels_file` must label every image in '{tmp}/plain'; 1 "
        r"are not listed, e\.g\. \['image_0001\.jpg'\]\. Received: "
        r"labels_file='{tmp}/plain/labels\.tsv'\. Add a '<file>\\t<label>' "
        r"line for each, or move them out of the folder\.",
    ),
    (
        "duplicate_file_in_a_tsv",
        chain(
            flat_images(2),
            write(
                TSV_PLAIN,
                b"image_0000.jpg\t0\nimage_0001.jpg\t1\n./image_0000.jpg\t2\n",
            ),
            use_path("plain", "files", TSV_PLAIN),
        ),
        ValueError,
        r"File '{tmp}/plain/\./image_0000\.jpg' is listed twice in labels file"
        r" '{tmp}/plain/labels\.tsv': on lines 1 and 3 \(.*:3\)\. List each "
        r"image once: a second line would count it twice\.",
    ),
    (
        "k_zero",
        set_fields(eval__ks=(0,)),
        ValueError,
        r"Argument `ks` must hold positive integers, e\.g\. ks=\(1, 5\)\. "
        r"Received: ks=\(0,\) \(bad value: 0\)",
    ),
    (
        "k_above_the_number_of_classes",
        set_fields(eval__ks=(1, 6)),
        ValueError,
        r"Argument `k` must be at most the number of classes \(5\)\. "
        r"Received: k=6",
    ),
    (
        "batch_size_zero",
        set_fields(data__batch_size=0),
        ValueError,
        r"Argument `batch_size` must be a positive integer\. "
        r"Received: batch_size=0",
    ),
    (
        "num_crops_not_1_or_10",
        set_fields(data__num_crops=3),
        ValueError,
        r"Argument `num_crops` must be one of \[1, 10\]\. "
        r"Received: num_crops=3",
    ),
    (
        "crop_fraction_above_1",
        set_fields(preprocess__crop_fraction=1.5),
        ValueError,
        r"Argument `crop_fraction` must be a number in \(0, 1\]\. "
        r"Received: crop_fraction=1\.5",
    ),
    (
        "ensemble_weight_count",
        ensemble("2,1,1"),
        ValueError,
        r"`config\.ensemble_weights` must have 2 values, one per member\. "
        r"Received: '2,1,1'",
    ),
    (
        "ensemble_weights_not_numbers",
        ensemble("2,x"),
        ValueError,
        r"`config\.ensemble_weights` must be comma-separated numbers, one per "
        r"member\. Received: '2,x'",
    ),
    (
        "empty_class_subset",
        set_fields(model__class_subset=","),
        ValueError,
        r"`config\.model\.class_subset` must list class indices or synsets, "
        r"or name a file of them\. Received: ','",
    ),
    (
        "workdir_is_a_file",
        workdir_is_a_file,
        ValueError,
        r"Argument `workdir` must be a folder \(or a path where one can be "
        r"created\)\. Received: workdir='{tmp}/workdir', which is a file\.",
    ),
)


class BadInputTestCase(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        self.dir = self.create_tempdir().full_path
        self.images = os.path.join(self.dir, "images")
        os.makedirs(self.images)
        cli_main_test.write_smoke_images(self.images)
        self.config = cli_main_test.load_config_module("smoke").get_config()
        self.config.data.path = self.images
        self.workdir = os.path.join(self.dir, "workdir")

    def pattern(self, regex):
        return regex.replace("{tmp}", re.escape(self.dir))

    def assertNothingHalfWritten(self, workdir):
        """No result, extra or temporary file; only resume state may stay."""
        if not os.path.isdir(workdir):
            return
        left = [
            os.path.relpath(path, workdir)
            for path in glob.glob(os.path.join(workdir, "**"), recursive=True)
            if os.path.isfile(path)
        ]
        self.assertEmpty(
            [
                name
                for name in left
                if ".tmp-" in name
                or not (
                    name.startswith(files.CHECKPOINT_DIR + os.sep)
                    or name == files.PROGRESS_FILE
                )
            ],
            left,
        )


class RunRefusesBadInputTest(BadInputTestCase):
    @parameterized.named_parameters(*RUN_CASES)
    def test_refused_with_a_message_naming_value_and_fix(
        self, setup, error, regex
    ):
        setup(self)
        with self.assertRaisesRegex(error, self.pattern(regex)):
            run.run(self.config, self.workdir)
        if os.path.isfile(self.workdir):  # The workdir_is_a_file case.
            with open(self.workdir) as f:
                self.assertEqual(f.read(), "not a folder")
        else:
            self.assertNothingHalfWritten(self.workdir)


class NotErrorsTest(BadInputTestCase):
    """Input that is odd but well defined: counted, and said so."""

    def test_truncated_jpeg_skipped_and_listed_with_skip_corrupt(self):
        truncate_first_image(self)
        self.config.data.skip_corrupt = True
        result = run.run(self.config, None)
        self.assertEqual(result.num_examples, NUM_EXAMPLES - 1)
        # Image 0 (class 0) was labelled right: 6 of the 9 left are.
        self.assertEqual(result.correct[1], 6)
        self.assertEqual(result.metadata["data"]["num_skipped"], 1)
        self.assertEqual(
            result.metadata["data"]["skipped"],
            [os.path.join(self.images, "class_00", "image_0000.jpg")],
        )

    def test_nan_outputs_count_as_wrong_and_are_reported(self):
        with self.config.unlocked():
            self.config.model.weights = "bad_input_test:nan_model"
        result = run.run(self.config, self.workdir)
        # Images 0 and 5 (class 0, both labelled right) have NaN logits.
        self.assertEqual(result.nonfinite, 2)
        self.assertEqual(result.num_examples, NUM_EXAMPLES)
        self.assertEqual(result.correct[1], 5)
        self.assertEqual(result.correct[5], NUM_EXAMPLES - 2)
        with open(os.path.join(self.workdir, "results.json")) as f:
            record = json.load(f)
        self.assertEqual(record["nonfinite"], 2)
        self.assertEqual(record["top1_correct"], 5)
        self.assertIn(
            "2 non-finite predictions",
            main.printed_summary(result, "nan_oracle"),
        )

    def test_float16_outputs_count_as_float32_ones(self):
        reference = run.run(self.config, None)
        with self.config.unlocked():
            self.config.model.weights = "bad_input_test:float16_model"
        result = run.run(self.config, None)
        self.assertEqual(result.correct, reference.correct)
        self.assertEqual(result.correct[1], 7)
        self.assertEqual(result.nonfinite, 0)


# (name, command-line arguments, regex of stderr). {tmp}: the test folder,
# {images}: the smoke images, {configs}: configs/.
CLI_CASES = (
    (
        "config_field_typo",
        ("--config={configs}/smoke.py", "--config.data.bacth_size=4"),
        r"Unknown config field in --config\.data\.bacth_size: config\.data "
        r"has no field 'bacth_size'\. Valid fields of config\.data: \[.*"
        r"'batch_size'",
    ),
    (
        "unknown_preset",
        ("--config={configs}/imagenet.py:resnet5",),
        r"Unknown preset 'resnet5' in configs/imagenet\.py:resnet5\. Valid "
        r"presets: \[.*'resnet50'.*\] \(join with '\+' for an ensemble, "
        r"',' for several runs\)\.",
    ),
    (
        "source_typo",
        ("--config={configs}/smoke.py", "--config.data.source=tfrecords"),
        r"`config\.data\.source` must be one of \['files', 'folder', 'tfds', "
        r"'tfrecord'\]\. Received: 'tfrecords'",
    ),
    (
        "path_missing",
        ("--config={configs}/smoke.py", "--config.data.path={tmp}/missing"),
        r"Argument `path` names a path that does not exist\. "
        r"Received: path='{tmp}/missing'",
    ),
    (
        "truncated_jpeg_among_good_ones",
        ("--config={configs}/smoke.py", "--config.data.path={images}"),
        r"Could not read or decode image {tmp}/images/class_00/image_0000\.jpg"
        r" \(corrupt, truncated or not an image\)\. Fix or remove it, or pass "
        r"skip_corrupt=True",
    ),
    (
        "workdir_is_a_file",
        ("--config={configs}/smoke.py", "--config.data.path={images}"),
        r"Argument `workdir` must be a folder \(or a path where one can be "
        r"created\)\. Received: workdir='{tmp}/workdir', which is a file\.",
    ),
)


class CommandLineRefusesBadInputTest(BadInputTestCase):
    """The message reaches the user as one line: no traceback, exit 1."""

    @parameterized.named_parameters(*CLI_CASES)
    def test_refused_without_a_traceback(self, args, regex):
        if self._testMethodName.endswith("truncated_jpeg_among_good_ones"):
            truncate_first_image(self)
        if self._testMethodName.endswith("workdir_is_a_file"):
            workdir_is_a_file(self)
        values = dict(
            configs=cli_main_test.CONFIGS, images=self.images, tmp=self.dir
        )
        completed = cli_main_test.run_cli(
            *[arg.format(**values) for arg in args],
            f"--workdir={self.workdir}",
        )
        self.assertEqual(completed.returncode, 1, completed.stderr[-3000:])
        self.assertRegex(completed.stderr, self.pattern(regex))
        self.assertNotIn("Traceback", completed.stderr)
        if not os.path.isfile(self.workdir):
            self.assertNothingHalfWritten(self.workdir)

    @pytest.mark.slow
    def test_nan_outputs_reported_in_the_table_and_results(self):
        completed = cli_main_test.run_cli(
            f"--config={cli_main_test.CONFIGS}/smoke.py",
            f"--config.data.path={self.images}",
            "--config.model.weights=bad_input_test:nan_model",
            f"--workdir={self.workdir}",
            env={"PYTHONPATH": os.path.dirname(os.path.abspath(__file__))},
        )
        self.assertEqual(completed.returncode, 0, completed.stderr[-3000:])
        self.assertIn("2 non-finite predictions", completed.stdout)
        self.assertIn("5 / 10", completed.stdout)
        with open(os.path.join(self.workdir, "results.json")) as f:
            self.assertEqual(json.load(f)["nonfinite"], 2)


if __name__ == "__main__":
    tf.test.main()
