"""Tests for tf_topk.distribute and distributed evaluation, exactly once."""

import doctest
import json
import os
import subprocess
import sys
import types
from unittest import mock

import conftest
import keras
import multiworker_main
import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import distribute, evaluation, progress, testing
from tf_topk.runs import files

_HELPER = os.path.join(os.path.dirname(__file__), "multiworker_main.py")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each worker imports TensorFlow and meets the other; on 2 shared cores
# this takes about 20 s. A hung collective must fail the test, not CI.
_WORKER_TIMEOUT_S = 240


def _tf_config(cluster, task_type, index):
    return json.dumps(
        {"cluster": cluster, "task": {"type": task_type, "index": index}}
    )


class _FakeStrategy:
    """Calls the dataset function as worker `index` of `num_workers`."""

    def __init__(self, num_workers, index, replicas_per_worker):
        self.num_workers = num_workers
        self.index = index
        self.num_replicas_in_sync = num_workers * replicas_per_worker

    def distribute_datasets_from_function(self, dataset_fn, options=None):
        del options  # Where tensors are fetched: no devices here.
        return dataset_fn(
            tf.distribute.InputContext(
                num_input_pipelines=self.num_workers,
                input_pipeline_id=self.index,
                num_replicas_in_sync=self.num_replicas_in_sync,
            )
        )


class GetStrategyTest(tf.test.TestCase, parameterized.TestCase):
    def test_none_is_the_default_strategy(self):
        self.assertIs(
            distribute.get_strategy("none"), tf.distribute.get_strategy()
        )

    def test_mirrored(self):
        self.assertIsInstance(
            distribute.get_strategy("mirrored"), tf.distribute.MirroredStrategy
        )

    @parameterized.named_parameters(
        (
            "unknown_name_lists_the_valid_ones",
            "multiworker",
            {},
            ValueError,
            r"^Argument `name` must be one of \['mirrored', 'multi_worker', "
            r"'none', 'tpu'\]\. Received: name='multiworker'$",
        ),
        (
            "name_must_be_a_string",
            2,
            {},
            TypeError,
            r"Received: name=2 of type int$",
        ),
        (
            "tpu_without_a_tpu",
            "tpu",
            {"TPU_NAME": ""},
            RuntimeError,
            r"^distribution='tpu' needs a TPU, but none was found "
            r"\(tried TPU_NAME='local': .*\)\. Run on a TPU VM, set "
            r"TPU_NAME to your TPU, or use distribution='mirrored' or "
            r"'none'\.$",
        ),
        (
            "multi_worker_rejects_a_malformed_tf_config",
            "multi_worker",
            {"TF_CONFIG": "{worker: 1"},
            ValueError,
            r"^The `TF_CONFIG` environment variable must be JSON like .*"
            r"Received: TF_CONFIG='\{worker: 1' \(",
        ),
    )
    def test_errors(self, name, environ, error, message):
        with mock.patch.dict(os.environ, environ):
            with self.assertRaisesRegex(error, message):
                distribute.get_strategy(name)

    def test_doctest(self):
        failures, tried = doctest.testmod(distribute, extraglobs={"tf": tf})
        self.assertGreater(tried, 10)
        self.assertEqual(failures, 0)


class IsChiefTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("alone", None, True),
        ("worker_0", ({"worker": ["a:1", "b:2"]}, "worker", 0), True),
        ("worker_1", ({"worker": ["a:1", "b:2"]}, "worker", 1), False),
        (
            "worker_0_beside_a_chief",
            ({"chief": ["c:0"], "worker": ["a:1"]}, "worker", 0),
            False,
        ),
        ("chief", ({"chief": ["c:0"], "worker": ["a:1"]}, "chief", 0), True),
        (
            "evaluator",
            ({"worker": ["a:1"], "evaluator": ["e:1"]}, "evaluator", 0),
            False,
        ),
    )
    def test_from_tf_config(self, config, expected):
        environ = {"TF_CONFIG": _tf_config(*config) if config else ""}
        with mock.patch.dict(os.environ, environ):
            self.assertEqual(distribute.is_chief(None), expected)
            self.assertEqual(
                distribute.is_chief(tf.distribute.get_strategy()), expected
            )

    def test_from_the_strategy_cluster_resolver(self):
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec({"worker": ["a:1", "b:2"]}),
            task_type="worker",
            task_id=1,
        )
        strategy = mock.Mock(cluster_resolver=resolver)
        # The resolver wins over a TF_CONFIG that says otherwise.
        environ = {"TF_CONFIG": _tf_config({"worker": ["a:1"]}, "worker", 0)}
        with mock.patch.dict(os.environ, environ):
            self.assertFalse(distribute.is_chief(strategy))
            self.assertEqual(distribute.task(strategy), ("worker", 1))


class StrategyFactsTest(tf.test.TestCase, parameterized.TestCase):
    def test_is_default(self):
        default = tf.distribute.get_strategy()
        self.assertTrue(distribute.is_default(default))
        self.assertTrue(distribute.is_default(distribute.get_strategy("none")))
        mirrored = tf.distribute.MirroredStrategy(conftest.logical_cpus(1))
        self.assertFalse(distribute.is_default(mirrored))
        self.assertFalse(
            distribute.is_default(tf.distribute.OneDeviceStrategy("/cpu:0"))
        )
        with mirrored.scope():
            self.assertFalse(distribute.is_default(mirrored))
            # A TensorFlow rule: scopes of different strategies do not nest.
            with self.assertRaises(RuntimeError):
                distribute.is_default(default)

    @parameterized.named_parameters(
        ("1_worker_2_replicas", ("a", "b"), 2, 1),
        ("2_workers_2_replicas_each", ("a", "b"), 4, 2),
        ("3_workers_1_replica_each", ("a",), 3, 3),
    )
    def test_num_input_pipelines(self, local_devices, replicas, expected):
        strategy = types.SimpleNamespace(
            extended=types.SimpleNamespace(worker_devices=local_devices),
            num_replicas_in_sync=replicas,
        )
        self.assertEqual(distribute.num_input_pipelines(strategy), expected)

    def test_num_input_pipelines_of_real_strategies(self):
        self.assertEqual(
            distribute.num_input_pipelines(tf.distribute.get_strategy()), 1
        )
        mirrored = tf.distribute.MirroredStrategy(conftest.logical_cpus(2))
        self.assertEqual(distribute.num_input_pipelines(mirrored), 1)
        # No `extended` (not a tf.distribute strategy): one pipeline.
        self.assertEqual(distribute.num_input_pipelines(object()), 1)

    def test_local_sum_reads_every_local_replica(self):
        strategy = tf.distribute.MirroredStrategy(conftest.logical_cpus(2))
        with strategy.scope():
            variable = tf.Variable(
                [0.0, 0.0],
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.SUM,
            )
            keras_variable = keras.Variable(
                [0.0, 0.0],
                synchronization="on_read",
                aggregation="sum",
            )

        def add():
            variable.assign_add([1.0, 2.0])
            keras_variable.assign_add([3.0, 4.0])

        strategy.run(add)
        self.assertAllEqual(
            distribute.local_sum(variable, strategy), [2.0, 4.0]
        )
        self.assertAllEqual(
            distribute.local_sum(keras_variable, strategy), [6.0, 8.0]
        )
        self.assertEqual(
            float(
                distribute.local_sum(
                    tf.Variable(2.5), tf.distribute.get_strategy()
                )
            ),
            2.5,
        )


class BatchRulesTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("one_pipeline", 64, 1, 64),
        ("divides", 64, 2, 32),
        ("rounds_up", 64, 3, 22),
        ("more_pipelines_than_rows", 2, 3, 1),
    )
    def test_per_worker_batch_size(self, batch_size, pipelines, expected):
        self.assertEqual(
            distribute.per_worker_batch_size(batch_size, pipelines), expected
        )

    @parameterized.named_parameters(
        ("one_pipeline_partial_batch", 10, 4, 1, 3),
        ("one_pipeline_full_batches", 8, 4, 1, 2),
        ("no_examples", 0, 4, 1, 0),
        # Share 0 holds ceil(1001 / W) examples, in batches of ceil(64 / W).
        ("2_pipelines", 1001, 64, 2, 16),
        ("3_pipelines", 1001, 64, 3, 16),
        ("4_pipelines", 1001, 64, 4, 16),
        # 10 examples, 3 pipelines: shares 4, 3, 3 in batches of 2.
        ("largest_share_sets_the_count", 10, 4, 3, 2),
    )
    def test_num_steps(self, num_examples, batch_size, pipelines, expected):
        self.assertEqual(
            distribute.num_steps(
                num_examples, batch_size, num_pipelines=pipelines
            ),
            expected,
        )


class WholeDatasetTest(tf.test.TestCase, parameterized.TestCase):
    def test_a_dataset_is_returned_as_is(self):
        data = tf.data.Dataset.range(3).batch(2)
        self.assertIs(distribute.whole_dataset(data), data)

    def test_a_function_is_called_as_the_only_input_pipeline(self):
        data = tf.data.Dataset.range(3).batch(2)
        contexts = []

        def dataset_fn(context):
            contexts.append(context)
            return data

        self.assertIs(distribute.whole_dataset(dataset_fn), data)
        (context,) = contexts
        self.assertEqual(context.num_input_pipelines, 1)
        self.assertEqual(context.input_pipeline_id, 0)

    @parameterized.named_parameters(
        ("not_a_dataset", [1, 2]),
        ("a_function_returning_no_dataset", lambda context: [1, 2]),
    )
    def test_errors(self, dataset):
        with self.assertRaisesRegex(
            TypeError,
            r"^Argument `dataset` must be a tf\.data\.Dataset of batches, or "
            r"a function of a tf\.distribute\.InputContext returning one\. "
            r"Received: list$",
        ):
            distribute.whole_dataset(dataset)


class PadToBatchTest(tf.test.TestCase):
    def _data(self, num_examples=10, batch_size=4):
        images = np.arange(num_examples * 2, dtype=np.float32).reshape(
            num_examples, 2
        )
        labels = np.arange(num_examples, dtype=np.int32) + 1
        return tf.data.Dataset.from_tensor_slices((images, labels)).batch(
            batch_size
        )

    def test_partial_batch_padded_with_weight_zero(self):
        padded = distribute.pad_to_batch(self._data(), 4)
        images, labels, weights = padded.element_spec
        # Static shapes: one compiled step serves every batch.
        self.assertEqual(images.shape.as_list(), [4, 2])
        self.assertEqual(labels.shape.as_list(), [4])
        self.assertEqual(weights.shape.as_list(), [4])
        self.assertEqual(weights.dtype, tf.float32)
        elements = list(padded)
        self.assertLen(elements, 3)
        self.assertAllEqual(
            [w.numpy().tolist() for _, _, w in elements],
            [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]],
        )
        images, labels, _ = elements[-1]
        self.assertAllEqual(labels, [9, 10, 0, 0])
        self.assertAllEqual(images, [[16, 17], [18, 19], [0, 0], [0, 0]])

    def test_rows_and_given_weights(self):
        weighted = self._data().map(
            lambda x, y: (x, y, tf.cast(y % 2, tf.int32))
        )
        padded = distribute.pad_to_batch(weighted, 4, rows=6)
        self.assertEqual(padded.element_spec[2].shape.as_list(), [6])
        weights = [w.numpy().tolist() for _, _, w in padded]
        self.assertEqual(weights[-1], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        self.assertEqual(sum(sum(w) for w in weights), 5.0)

    def test_every_image_input_is_padded(self):
        # An ensemble's inputs: a tuple of image batches of two sizes.
        data = self._data().map(lambda x, y: ((x, tf.stack([x, x], 1)), y))
        (small, large), _, _ = distribute.pad_to_batch(data, 4).element_spec
        self.assertEqual(small.shape.as_list(), [4, 2])
        self.assertEqual(large.shape.as_list(), [4, 2, 2])

    def test_a_batch_larger_than_batch_size_is_an_error(self):
        padded = distribute.pad_to_batch(self._data(batch_size=5), 4)
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            r"A batch is larger than batch_size=4\.",
        ):
            list(padded)


class RowSplitTest(tf.test.TestCase, parameterized.TestCase):
    """Every worker and replica gets one static slice of every batch."""

    @parameterized.named_parameters(
        ("2_workers_2_replicas", 2, 2, 16),
        ("3_workers_1_replica", 3, 1, 22),
    )
    def test_each_example_once_and_equal_steps(
        self, num_workers, per_worker, rows
    ):
        data = multiworker_main.oracle_dataset()
        expected = sorted(
            np.concatenate([labels.numpy() for _, labels in data]).tolist()
        )
        seen, steps = [], []
        for index in range(num_workers):
            strategy = _FakeStrategy(num_workers, index, per_worker)
            worker = distribute.distribute_dataset(
                data, strategy, batch_size=64
            )
            images, labels, weights = worker.element_spec
            self.assertEqual(images.shape.as_list(), [rows, 8, 8, 3])
            self.assertEqual(weights.shape.as_list(), [rows])
            elements = list(worker)
            steps.append(len(elements) / per_worker)
            for _, labels, weights in elements:
                seen.extend(labels.numpy()[weights.numpy() > 0].tolist())
        # 1,001 examples in batches of 64: 16 steps on every worker.
        self.assertEqual(steps, [16] * num_workers)
        self.assertEqual(sorted(seen), expected)


class ShardedInputTest(tf.test.TestCase, parameterized.TestCase):
    """A dataset function: each worker reads only its own share."""

    @parameterized.named_parameters(
        ("2_workers_2_replicas", 2, 2, 16, 16),
        ("3_workers_1_replica", 3, 1, 22, 16),
        ("4_workers_3_replicas", 4, 3, 6, 16),
    )
    def test_each_example_once_and_equal_steps(
        self, num_workers, per_worker, rows, want_steps
    ):
        expected = sorted(
            np.concatenate(
                [
                    labels.numpy()
                    for _, labels in multiworker_main.oracle_dataset()
                ]
            ).tolist()
        )
        seen, steps = [], []
        for index in range(num_workers):
            strategy = _FakeStrategy(num_workers, index, per_worker)
            worker = distribute.distribute_dataset(
                multiworker_main.oracle_dataset(),
                strategy,
                batch_size=64,
                dataset_fn=multiworker_main.oracle_shards,
                num_examples=1001,
            )
            images, labels, weights = worker.element_spec
            # One static shape for every replica of every worker.
            self.assertEqual(images.shape.as_list(), [rows, 8, 8, 3])
            self.assertEqual(weights.shape.as_list(), [rows])
            elements = list(worker)
            steps.append(len(elements) / per_worker)
            own = []
            for _, labels, weights in elements:
                own.extend(labels.numpy()[weights.numpy() > 0].tolist())
            # This worker got exactly its share: examples index, index + W...
            self.assertLen(own, len(range(index, 1001, num_workers)))
            seen.extend(own)
        # ceil(ceil(1001 / W) / ceil(64 / W)) = 16 steps on every worker.
        self.assertEqual(steps, [want_steps] * num_workers)
        self.assertEqual(sorted(seen), expected)

    def test_mirrored_with_a_dataset_function(self):
        strategy = tf.distribute.MirroredStrategy(conftest.logical_cpus(2))
        with strategy.scope():
            model = testing.oracle_model(multiworker_main.NUM_CLASSES)
        result = evaluation.evaluate(
            model,
            multiworker_main.oracle_shards,
            strategy=strategy,
            expected_num_examples=1001,
            batch_size=64,
            progress="none",
        )
        self.assertEqual(result.correct, {1: 737, 5: 887})
        self.assertEqual(result.num_examples, 1001)

    @parameterized.named_parameters(
        (
            "a_dataset_function_needs_the_count",
            multiworker_main.oracle_shards,
            None,
            r"^Argument `num_examples` is needed with a `dataset_fn` \(every "
            r"share is padded to the step count of the largest\)\. "
            r"Received: num_examples=None$",
        ),
        (
            "shares_need_static_shapes",
            lambda context: tf.data.Dataset.from_generator(
                lambda: iter(()),
                output_signature=(
                    tf.TensorSpec([None, None, None, 3], tf.float32),
                    tf.TensorSpec([None], tf.int32),
                ),
            ),
            1001,
            r"^A sharded dataset function must yield batches of static "
            r"shape \(images resized to a fixed size\)\. Received: ",
        ),
    )
    def test_errors(self, dataset_fn, num_examples, message):
        with self.assertRaisesRegex(ValueError, message):
            distribute.distribute_dataset(
                multiworker_main.oracle_dataset(),
                _FakeStrategy(2, 0, 1),
                batch_size=64,
                dataset_fn=dataset_fn,
                num_examples=num_examples,
            )

    def test_an_oversized_share_is_cut_at_the_step_count(self):
        # A function returning everything to every worker would count
        # examples twice; each worker stops after the steps of a correct
        # share (ceil(501 / 32) = 16 batches of 32 here), so the run's count
        # falls short and evaluate's count check refuses it.
        strategy = _FakeStrategy(2, 0, 1)
        worker = distribute.distribute_dataset(
            multiworker_main.oracle_dataset(),
            strategy,
            batch_size=64,
            dataset_fn=lambda context: multiworker_main.oracle_dataset(32),
            num_examples=1001,
        )
        rows = sum(float(w.numpy().sum()) for _, _, w in worker)
        self.assertEqual(rows, 16 * 32)


class MirroredTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        keras.backend.clear_session()

    @parameterized.named_parameters(
        ("1_device", 1),
        ("2_devices", 2),
        ("3_devices", 3),
        ("2_devices_xla", 2, True),
    )
    def test_identical_exact_counts(self, num_devices, jit_compile=False):
        strategy = tf.distribute.MirroredStrategy(
            conftest.logical_cpus(num_devices)
        )
        with strategy.scope():
            model = testing.oracle_model(multiworker_main.NUM_CLASSES)
        result = evaluation.evaluate(
            model,
            multiworker_main.oracle_dataset(),
            ks=(1, 5),
            strategy=strategy,
            expected_num_examples=1001,
            batch_size=64,
            jit_compile=jit_compile,
            progress=progress.Progress("log", log_every_n_examples=500),
        )
        self.assertEqual(strategy.num_replicas_in_sync, num_devices)
        self.assertEqual(result.num_examples, 1001)
        self.assertEqual(result.num_scored, 1001)
        self.assertEqual(result.correct, {1: 737, 5: 887})
        self.assertEqual(sum(result.per_class_count), 1001)
        self.assertEqual(sum(result.per_class_correct), 737)
        self.assertEqual(result.nonfinite, 0)

    def test_wrong_expected_count_raises_under_a_strategy(self):
        strategy = tf.distribute.MirroredStrategy(conftest.logical_cpus(2))
        with self.assertRaisesRegex(
            ValueError,
            r"^The evaluation saw 1001 examples but "
            r"expected_num_examples=1000: ",
        ):
            evaluation.evaluate(
                testing.oracle_model(multiworker_main.NUM_CLASSES),
                multiworker_main.oracle_dataset(),
                strategy=strategy,
                expected_num_examples=1000,
                progress="none",
            )


@pytest.mark.slow
class MultiWorkerTest(tf.test.TestCase, parameterized.TestCase):
    def _run_workers(self, name, num_workers, results_dir, *extra):
        out_dir = self.create_tempdir().full_path
        ports = conftest.free_ports(num_workers)
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        processes = []
        for index in range(num_workers):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
            env["TF_CONFIG"] = (
                _tf_config(cluster, "worker", index) if num_workers > 1 else ""
            )
            env["PYTHONPATH"] = os.pathsep.join(
                [_REPO, env.get("PYTHONPATH", "")]
            )
            processes.append(
                subprocess.Popen(
                    [sys.executable, _HELPER, name, out_dir, results_dir]
                    + list(extra),
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        logs = conftest.communicate_all(processes, _WORKER_TIMEOUT_S)
        for process, log in zip(processes, logs):
            self.assertEqual(process.returncode, 0, msg=log[-3000:])
        records = []
        for name in sorted(os.listdir(out_dir)):
            with open(os.path.join(out_dir, name)) as f:
                records.append(json.load(f))
        return records

    @parameterized.named_parameters(
        ("whole_dataset_each", ()), ("own_shard_each", ("sharded",))
    )
    def test_two_workers_count_as_one_process_and_write_once(self, extra):
        single_dir = self.create_tempdir().full_path
        results_dir = self.create_tempdir().full_path
        (single,) = self._run_workers("none", 1, single_dir)
        workers = self._run_workers("multi_worker", 2, results_dir, *extra)

        self.assertEqual(single["correct"], {"1": 737, "5": 887})
        self.assertEqual(single["num_examples"], 1001)
        self.assertEqual(
            [w["task"] for w in workers], [["worker", 0], ["worker", 1]]
        )
        self.assertEqual([w["is_chief"] for w in workers], [True, False])
        for worker in workers:
            self.assertEqual(worker["num_replicas"], 2)
            for key in (
                "num_examples",
                "correct",
                "per_class_count",
                "per_class_correct",
            ):
                self.assertEqual(worker[key], single[key], msg=key)
        # Only the chief wrote: one results.json, with the global counts.
        written = [
            os.path.relpath(os.path.join(root, f), results_dir)
            for root, _, names in os.walk(results_dir)
            for f in names
            if f == files.RESULTS_FILE
        ]
        self.assertEqual(written, [files.RESULTS_FILE])
        with open(os.path.join(results_dir, files.RESULTS_FILE)) as f:
            results = json.load(f)
        self.assertEqual(results["num_examples"], 1001)
        self.assertEqual(results["top1_correct"], 737)
        self.assertEqual(results["top5_correct"], 887)
