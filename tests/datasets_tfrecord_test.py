"""Tests of the `tfrecord` source: shards, keys, label offset, errors."""

import os

import numpy as np
from absl.testing import parameterized
from datasets_testcase import (
    LABELS,
    NUM_CLASSES,
    PREDICTED,
    DataTestCase,
    build,
)

from tf_topk import testing


class TfrecordTest(DataTestCase):
    @parameterized.named_parameters(
        ("glob", True, 3), ("folder", False, 3), ("one_shard", True, 1)
    )
    def test_one_based_by_default(self, glob, num_shards):
        testing.write_tfrecords(
            self.dir,
            PREDICTED,
            LABELS,
            num_classes=NUM_CLASSES,
            num_shards=num_shards,
        )
        path = os.path.join(self.dir, "validation-*") if glob else self.dir
        dataset, num_examples = build("tfrecord", path=path)
        self.assertExact(dataset, num_examples)

    def test_keys_and_offset(self):
        testing.write_tfrecords(
            self.dir,
            PREDICTED,
            LABELS,
            num_classes=NUM_CLASSES,
            label_offset=0,
            image_key="jpeg",
            label_key="class",
            fmt="png",
        )
        dataset, num_examples = build(
            "tfrecord",
            path=self.dir,
            label_offset=0,
            image_key="jpeg",
            label_key="class",
        )
        self.assertExact(dataset, num_examples)

    @parameterized.named_parameters(
        dict(
            # The classic off-by-one: 0-based records read as 1-based.
            testcase_name="zero_based_data_with_default_offset",
            path="{dir}",
            error=ValueError,
            message="Label 0 of '{dir}/validation-00000-of-00003' record "
            f"{np.flatnonzero(LABELS == 0)[0]} is outside the class range: "
            "after the label offset it is -1, not in [0, 5). Check "
            "`label_offset` and `num_classes`.",
        ),
        dict(
            testcase_name="no_shards",
            path="{dir}/train-*",
            error=FileNotFoundError,
            message="Argument `path` matches no TFRecord files. "
            "Received: path='{dir}/train-*'",
        ),
        dict(
            testcase_name="no_path",
            path=None,
            error=ValueError,
            message="Argument `path` is required for source='tfrecord' (a "
            "glob of shards or a folder). Received: path=None",
        ),
    )
    def test_error(self, path, error, message):
        testing.write_tfrecords(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES, label_offset=0
        )
        if path is not None:
            path = path.format(dir=self.dir)
        with self.assertRaisesMessage(error, message.format(dir=self.dir)):
            build("tfrecord", path=path)
