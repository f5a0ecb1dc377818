"""Tests of the decoded-image cache: `build(cache=...)` and `InputCache`.

A cache is proved to be read, not decoded again, by damaging every image
after the first pass: the second pass still yields the same pixels.
"""

import os

import conftest
import numpy as np
import tensorflow as tf
from datasets_testcase import (
    BATCH_SIZE,
    IMAGE_SIZE,
    LABELS,
    NUM_CLASSES,
    NUM_EXAMPLES,
    PREDICTED,
    DataTestCase,
    build,
)

from tf_topk import datasets, evaluate, preprocessing, testing
from tf_topk.datasets import caching

# The folder source reads class by class, files sorted.
ORDER = np.argsort(LABELS, kind="stable")
OPTIONS = preprocessing.Options(image_size=IMAGE_SIZE)
# float32 pixels of one 8 x 8 view, plus the per-example overhead.
EXAMPLE_BYTES = caching.example_bytes([OPTIONS])


def elements(dataset):
    """Every element of `dataset` as numpy arrays, batch by batch."""
    return [tf.nest.map_structure(np.asarray, e) for e in dataset]


class CacheTest(DataTestCase):
    def setUp(self):
        super().setUp()
        testing.write_class_folders(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )

    def damage_images(self):
        """Overwrites every image: decoding any of them now fails."""
        for root, _, names in os.walk(self.dir):
            for name in names:
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"not an image")

    def assertSameElements(self, got, expected):
        self.assertEqual(len(got), len(expected))
        for a, b in zip(got, expected):
            tf.nest.map_structure(self.assertAllEqual, a, b)

    def test_example_bytes_counts_float32_pixels_of_every_view(self):
        ten_crops = preprocessing.Options(image_size=8, num_crops=10)
        self.assertEqual(
            caching.example_bytes([OPTIONS, ten_crops]) - EXAMPLE_BYTES,
            4 * 10 * 8 * 8 * 3,
        )

    def test_memory_cache_is_read_not_decoded_again(self):
        uncached, _ = build("folder", path=self.dir)
        expected = elements(uncached)
        dataset, info = build(
            "folder", path=self.dir, cache="memory", with_info=True
        )
        self.assertEqual(info.cache, "memory")
        self.assertSameElements(elements(dataset), expected)
        self.damage_images()
        # The uncached pipeline fails now; the cached one reads memory.
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "decode"):
            elements(uncached)
        self.assertSameElements(elements(dataset), expected)
        self.assertExact(dataset, NUM_EXAMPLES, labels=LABELS[ORDER])

    def test_disk_cache_is_shared_by_pipelines_of_the_same_input(self):
        cache_dir = os.path.join(self.create_tempdir().full_path, "cache")
        expected = elements(build("folder", path=self.dir)[0])
        first, info = build(
            "folder",
            path=self.dir,
            cache="disk",
            cache_dir=cache_dir,
            with_info=True,
        )
        self.assertEqual(info.cache, "disk")
        self.assertSameElements(elements(first), expected)
        self.assertNotEmpty(tf.io.gfile.listdir(cache_dir))
        self.damage_images()
        # A new pipeline (a later run, another process) reads the files.
        second, _ = build(
            "folder", path=self.dir, cache="disk", cache_dir=cache_dir
        )
        self.assertSameElements(elements(second), expected)
        caching.clear(cache_dir)
        self.assertFalse(tf.io.gfile.exists(cache_dir))

    def test_disk_cache_names_differ_by_preprocessing(self):
        cache_dir = self.create_tempdir().full_path
        for size in (4, 6):
            dataset, _ = build(
                "folder",
                path=self.dir,
                preprocess=preprocessing.Options(image_size=size),
                cache="disk",
                cache_dir=cache_dir,
            )
            images = np.concatenate([x for x, _ in elements(dataset)])
            self.assertEqual(images.shape[1:], (size, size, 3))
        prefixes = {name.split(".")[0] for name in os.listdir(cache_dir)}
        self.assertLen({p.split("_")[0] for p in prefixes}, 2)

    def test_cache_keeps_ids_partial_batch_start_and_views(self):
        views = [OPTIONS, preprocessing.Options(image_size=4, num_crops=10)]
        kwargs = dict(path=self.dir, preprocess=views, with_ids=True, start=3)
        expected = elements(build("folder", **kwargs)[0])
        dataset, count = build("folder", cache="memory", **kwargs)
        self.assertEqual(count, NUM_EXAMPLES)
        for _ in range(2):
            got = elements(dataset)
            self.assertSameElements(got, expected)
        # 7 examples after `start`, batch 4: the last batch is partial.
        self.assertEqual([len(e[1]) for e in got], [4, 3])
        self.assertEqual(got[0][0][1].shape, (4, 10, 4, 4, 3))

    def test_cardinality_is_known(self):
        dataset, _ = build("folder", path=self.dir, cache="memory")
        self.assertEqual(
            int(dataset.cardinality()), -(-NUM_EXAMPLES // BATCH_SIZE)
        )

    def test_auto_chooses_memory_within_the_budget(self):
        size = NUM_EXAMPLES * EXAMPLE_BYTES
        for budget, cache_dir, chosen in (
            (size, None, "memory"),
            (size - 1, self.create_tempdir().full_path, "disk"),
            (size - 1, None, "none"),
        ):
            _, info = build(
                "folder",
                path=self.dir,
                cache="auto",
                cache_dir=cache_dir,
                cache_budget_bytes=budget,
                with_info=True,
            )
            self.assertEqual(info.cache, chosen, (budget, cache_dir))

    def test_counts_are_the_same_cached_and_uncached(self):
        model = testing.oracle_model(NUM_CLASSES)
        counts = []
        for cache in ("none", "memory", "memory"):
            dataset, count = build("folder", path=self.dir, cache=cache)
            for _ in range(2):
                result = evaluate(
                    model,
                    dataset,
                    ks=(1, 5),
                    expected_num_examples=count,
                    progress="none",
                )
                counts.append((result.correct[1], result.num_examples))
        self.assertEqual(set(counts), {(7, NUM_EXAMPLES)})

    def test_mirrored_run_reads_the_memory_cache(self):
        strategy = tf.distribute.MirroredStrategy(conftest.logical_cpus(3))
        with strategy.scope():
            model = testing.oracle_model(NUM_CLASSES)
        dataset, count = build("folder", path=self.dir, cache="memory")
        correct = []
        for damage in (False, True):
            if damage:
                self.damage_images()
            result = evaluate(
                model,
                dataset,
                strategy=strategy,
                expected_num_examples=count,
                progress="none",
            )
            correct.append(result.correct[1])
        self.assertEqual(correct, [7, 7])

    def test_bad_mode(self):
        with self.assertRaisesMessage(
            ValueError,
            "Argument `cache` must be one of ['auto', 'memory', 'disk', "
            "'none']. Received: cache='ram'",
        ):
            build("folder", path=self.dir, cache="ram")

    def test_disk_needs_a_folder(self):
        with self.assertRaisesMessage(
            ValueError,
            "Argument `cache_dir` must name a folder for cache='disk'. "
            "Received: cache_dir=None. Pass a folder with room for about "
            "0.00 GiB, or cache='memory'.",
        ):
            build("folder", path=self.dir, cache="disk")


class InputCacheTest(DataTestCase):
    def setUp(self):
        super().setUp()
        testing.write_class_folders(
            self.dir, PREDICTED, LABELS, num_classes=NUM_CLASSES
        )
        self.kwargs = dict(
            path=self.dir,
            batch_size=BATCH_SIZE,
            num_classes=NUM_CLASSES,
            with_info=True,
        )

    def test_same_input_same_dataset(self):
        inputs = datasets.InputCache("memory")
        first = inputs.build("folder", preprocess=OPTIONS, **self.kwargs)
        self.assertFalse(
            inputs.reused("folder", preprocess=OPTIONS, **self.kwargs)
        )
        second = inputs.build("folder", preprocess=OPTIONS, **self.kwargs)
        self.assertIs(first, second)
        self.assertTrue(
            inputs.reused("folder", preprocess=OPTIONS, **self.kwargs)
        )
        other = inputs.build(
            "folder",
            preprocess=preprocessing.Options(image_size=4),
            **self.kwargs,
        )
        self.assertIsNot(other[0], first[0])
        self.assertEqual(first[1].cache, "memory")
        self.assertEqual(
            inputs.memory_bytes,
            2 * NUM_EXAMPLES * 64 + (NUM_EXAMPLES * 4 * 3 * (8 * 8 + 4 * 4)),
        )

    def test_budget_lets_the_oldest_go_then_falls_back_to_disk(self):
        size = NUM_EXAMPLES * EXAMPLE_BYTES
        cache_dir = os.path.join(self.create_tempdir().full_path, "cache")
        inputs = datasets.InputCache(
            "auto", directory=cache_dir, budget_bytes=size + size // 2
        )
        first = inputs.build("folder", preprocess=OPTIONS, **self.kwargs)
        self.assertEqual(first[1].cache, "memory")
        flipped = preprocessing.Options(image_size=IMAGE_SIZE, antialias=False)
        second = inputs.build("folder", preprocess=flipped, **self.kwargs)
        self.assertEqual(second[1].cache, "memory")
        self.assertEqual(inputs.memory_bytes, size)
        # The first input was let go: asking again builds it afresh.
        third = inputs.build("folder", preprocess=OPTIONS, **self.kwargs)
        self.assertIsNot(third[0], first[0])
        big = preprocessing.Options(image_size=32)
        fourth = inputs.build("folder", preprocess=big, **self.kwargs)
        self.assertEqual(fourth[1].cache, "disk")
        elements(fourth[0])
        self.assertTrue(tf.io.gfile.exists(cache_dir))
        inputs.close()
        self.assertFalse(tf.io.gfile.exists(cache_dir))

    def test_only_shared_inputs_are_cached(self):
        small = preprocessing.Options(image_size=4)
        inputs = datasets.InputCache("memory", shared=[OPTIONS, [small, small]])
        shared = inputs.build("folder", preprocess=OPTIONS, **self.kwargs)
        pair = inputs.build("folder", preprocess=[small, small], **self.kwargs)
        alone = inputs.build("folder", preprocess=small, **self.kwargs)
        self.assertEqual(shared[1].cache, "memory")
        self.assertEqual(pair[1].cache, "memory")
        self.assertEqual(alone[1].cache, "none")
        resumed = inputs.build(
            "folder", preprocess=OPTIONS, start=4, **self.kwargs
        )
        self.assertEqual(resumed[1].cache, "none")

    def test_bad_mode_names_the_config_field(self):
        with self.assertRaisesMessage(
            ValueError,
            "Argument `config.data.cache` must be one of ['auto', 'memory', "
            "'disk', 'none']. Received: config.data.cache='yes'",
        ):
            datasets.InputCache("yes")
