"""Tests of the run's self-description (`tf_topk.provenance`)."""

import dataclasses
import json

import conftest
import tensorflow as tf

import tf_topk
from tf_topk import provenance


def model_record(**overrides):
    fields = dict(
        name="mobilenet_v2",
        weights="imagenet",
        weights_file=None,
        weights_sha256=None,
        alpha=1.0,
        image_size=224,
        preprocess_mode="tf",
        output="probabilities",
        has_background_class=False,
        class_subset_size=None,
    )
    return provenance.ModelRecord(**{**fields, **overrides})


def data_record(**overrides):
    fields = dict(
        source="folder",
        name=None,
        split=None,
        path="/data/val",
        labels_file=None,
        num_examples=10,
        label_offset=0,
        num_crops=1,
        label_mapping="folder names",
        multi_label=False,
        num_skipped=1,
        skipped=("bad.jpg",),
    )
    return provenance.DataRecord(**{**fields, **overrides})


def metadata(**overrides):
    fields = dict(
        model=model_record(),
        members=None,
        data=data_record(),
        preprocessing=({"image_size": 224},),
        published={
            "top1": 0.7,
            "top5": None,
            "source": "config",
            "conditions": None,
        },
        distribution="default",
        config={"eval": {"batch_size": 4}},
        devices=("/cpu:0",),
        device="CPU (x86_64, 2 cores)",
        versions={"tf_topk": "0"},
    )
    return provenance.RunMetadata(**{**fields, **overrides})


class RunMetadataTest(tf.test.TestCase):
    def test_to_dict_is_json_with_lists(self):
        record = metadata(diagnostics=("a cause",)).to_dict()
        self.assertEqual(json.loads(json.dumps(record)), record)
        self.assertEqual(record["data"]["skipped"], ["bad.jpg"])
        self.assertEqual(record["preprocessing"], [{"image_size": 224}])
        self.assertEqual(record["devices"], ["/cpu:0"])
        self.assertEqual(record["diagnostics"], ["a cause"])
        self.assertIsNone(record["members"])
        self.assertEqual(record["model"]["name"], "mobilenet_v2")
        self.assertEqual(record["data"]["cache"], "none")

    def test_members_are_listed(self):
        members = (model_record(), model_record(name="resnet50"))
        record = metadata(model="ensemble", members=members).to_dict()
        self.assertEqual(
            [m["name"] for m in record["members"]],
            ["mobilenet_v2", "resnet50"],
        )

    def test_fingerprint_keeps_what_a_resume_must_match(self):
        fingerprint = metadata().fingerprint()
        self.assertEqual(
            list(fingerprint), ["model", "members", "data", "preprocessing"]
        )
        self.assertEqual(
            fingerprint["data"],
            {
                "source": "folder",
                "name": None,
                "split": None,
                "path": "/data/val",
                "labels_file": None,
                "num_examples": 10,
                "label_offset": 0,
                "num_crops": 1,
            },
        )

    def test_fingerprint_ignores_the_cache_devices_and_skipped_files(self):
        base = metadata()
        other = dataclasses.replace(
            base,
            data=data_record(cache="memory", num_skipped=0, skipped=()),
            devices=("/gpu:0",),
            config={"eval": {"batch_size": 64}},
        )
        self.assertEqual(base.fingerprint(), other.fingerprint())
        moved = dataclasses.replace(base, data=data_record(label_offset=1))
        self.assertNotEqual(base.fingerprint(), moved.fingerprint())


class EnvironmentTest(tf.test.TestCase):
    def test_versions(self):
        found = provenance.versions()
        self.assertEqual(
            list(found), ["tf_topk", "tensorflow", "keras", "python"]
        )
        self.assertEqual(found["tf_topk"], tf_topk.__version__)
        self.assertEqual(found["tensorflow"], tf.__version__)

    def test_devices_of_the_default_strategy(self):
        (name,) = provenance.devices(None)
        self.assertRegex(name, r"/device:(CPU|GPU):0$")

    def test_devices_of_a_mirrored_strategy(self):
        strategy = tf.distribute.MirroredStrategy(conftest.logical_cpus(2))
        self.assertLen(provenance.devices(strategy), 2)

    def test_device_description(self):
        description = provenance.device()
        if tf.config.list_physical_devices("GPU"):
            self.assertRegex(description, r" x\d+$")
        else:
            self.assertRegex(description, r"^CPU \(.+, \d+ cores\)$")

    def test_default_fields(self):
        record = provenance.RunMetadata(
            model="m",
            members=None,
            data=data_record(),
            preprocessing=(),
            published=None,
            distribution="default",
            config={},
        )
        self.assertEqual(record.versions, provenance.versions())
        self.assertEqual(record.device, provenance.device())


if __name__ == "__main__":
    tf.test.main()
