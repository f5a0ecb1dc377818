"""Property-based tests of the ground-truth and TFRecord parsers.

Hypothesis writes labels files (ILSVRC line-per-image files and TSVs) with
blank lines, a byte-order mark, CRLF or CR line ends, stray whitespace and
tabs, negative, out-of-range and non-numeric labels (odd Unicode included),
missing and duplicate entries, and TFRecord shards with missing keys,
wrong feature types, wrong value counts and records that are not
`tf.train.Example`s. Every input must either parse to exactly the labels an
independent reading of the format gives, or raise a `ValueError` naming the
file and the line (or record) of the first bad entry: never another
exception, and never a silent mislabel.

The format, as the expectations below read it: a line ends at LF, CRLF or
CR only; a line is stripped of surrounding whitespace; a label is one of the
1000 ILSVRC2012 synsets or an ASCII integer (minus `label_offset`), and
must lie in [0, num_classes).
"""

import os
import re

import tensorflow as tf
from absl.testing import absltest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tf_topk import imagenet
from tf_topk.datasets import tfrecord

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # Same examples on every run: a failure reproduces.
    database=None,  # Writes nothing into the working tree.
    suppress_health_check=[HealthCheck.too_slow],
)
NUM_CLASSES = 1000
LINE_ENDS = ("\n", "\r\n", "\r")
INTEGER = re.compile(r"[+-]?[0-9]+")
NOT_A_LINE_END = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\r\n"
)

# Label tokens: good ones, and each way a token can be wrong.
synset_tokens = st.integers(0, NUM_CLASSES - 1).map(
    lambda i: imagenet.synsets()[i]
)
integer_tokens = st.integers(-3, NUM_CLASSES + 3).map(str) | st.integers(
    0, 20
).map(lambda i: f"+{i:03d}")
odd_tokens = st.sampled_from(
    [
        "cat",
        "n99999999",  # Synset-shaped, not one of the 1000.
        "1_000",  # int() takes it.
        "\u0663",  # Arabic-Indic 3: int() takes it.
        "1.0",
        "1e3",
        "0x1f",
        "\ufeff3",  # A second byte-order mark.
        "3\x0c4",  # str.splitlines() splits at the form feed.
        "3\u20284",  # ... and at a Unicode line separator.
        "3\x854",
    ]
) | st.text(NOT_A_LINE_END, max_size=6)
tokens = synset_tokens | integer_tokens | odd_tokens
padding = st.sampled_from(["", " ", "\t", " \t ", "\t\t", "\x0b", "\u3000"])


def expected_label(token: str, label_offset: int):
    """(label, None) or (None, why) for a stripped token."""
    index = imagenet.synset_index()
    if token in index:
        return index[token], None
    if INTEGER.fullmatch(token):
        label = int(token) - label_offset
        if 0 <= label < NUM_CLASSES:
            return label, None
        return None, "out of range"
    return None, "not a label"


def file_text(lines, *, bom, line_end, final_end):
    text = line_end.join(lines) + (line_end if final_end else "")
    return ("\ufeff" if bom else "") + text


class LabelsFileTestCase(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.create_tempdir().full_path, "labels")

    def write(self, text: str) -> str:
        with open(self.path, "wb") as f:
            f.write(text.encode("utf-8"))
        return self.path

    def assertNamesLine(self, error: ValueError, line: int, token=None):
        message = str(error)
        self.assertIn(f"{self.path}:{line}", message)
        if token is not None:
            self.assertIn(repr(token), message)


class LineLabelsPropertyTest(LabelsFileTestCase):
    @SETTINGS
    @given(
        entries=st.lists(
            st.tuples(padding, tokens | st.just(""), padding), max_size=12
        ),
        trailing_blank=st.integers(0, 2),
        bom=st.booleans(),
        line_end=st.sampled_from(LINE_ENDS),
        final_end=st.booleans(),
        label_offset=st.sampled_from([0, 1]),
    )
    def test_parses_right_or_names_the_line(
        self, entries, trailing_blank, bom, line_end, final_end, label_offset
    ):
        lines = [left + token + right for left, token, right in entries]
        lines += [" "] * trailing_blank
        path = self.write(
            file_text(lines, bom=bom, line_end=line_end, final_end=final_end)
        )
        stripped = [line.strip() for line in lines]
        while stripped and not stripped[-1]:
            stripped.pop()
        expected, first_error = [], None
        for number, token in enumerate(stripped, 1):
            label, why = (
                (None, "blank")
                if not token
                else expected_label(token, label_offset)
            )
            if why:
                first_error = (number, token or None)
                break
            expected.append(label)

        if first_error is None:
            labels = imagenet.read_line_labels(
                path, label_offset=label_offset, num_classes=NUM_CLASSES
            )
            self.assertEqual(labels, tuple(expected))
        else:
            with self.assertRaises(ValueError) as raised:
                imagenet.read_line_labels(
                    path, label_offset=label_offset, num_classes=NUM_CLASSES
                )
            self.assertNamesLine(raised.exception, *first_error)

    @SETTINGS
    @given(
        lines=st.lists(st.text(NOT_A_LINE_END, max_size=8), max_size=8),
        bom=st.booleans(),
        line_end=st.sampled_from(LINE_ENDS),
        final_end=st.booleans(),
    )
    def test_line_numbers_follow_line_ends_only(
        self, lines, bom, line_end, final_end
    ):
        path = self.write(
            file_text(lines, bom=bom, line_end=line_end, final_end=final_end)
        )
        if lines and not lines[-1] and not final_end:
            lines = lines[:-1]  # An empty last line is no line at all.
        if not lines and final_end:
            lines = [""]  # A lone line end ends one blank line.
        got = imagenet.label_lines(path)
        self.assertEqual(got, tuple(line.strip() for line in lines))


# TSV rows: how a row can be written.
file_names = st.sampled_from(
    ["a.jpg", "b.JPEG", "c.png", "sub/d.jpg", "./a.jpg", "sub/../b.JPEG"]
)


@st.composite
def tsv_lines(draw):
    kind = draw(
        st.sampled_from(
            ["row", "row", "row", "blank", "no_tab", "empty_label", "extra"]
        )
    )
    name, token = draw(file_names), draw(tokens)
    left, right = draw(padding), draw(padding)
    if kind == "blank":
        return right
    if kind == "no_tab":
        return f"{left}{name} {token}{right}"
    if kind == "empty_label":
        return f"{left}{name}\t{right}\t{token}"
    if kind == "extra":
        return f"{left}{name}\t{token}\t{draw(tokens)}\t{right}"
    return f"{left}{name}\t{left}{token}{right}"


def expected_tsv(lines, label_offset):
    """([(file, label, line)], None) or (rows so far, (line, token))."""
    rows, seen = [], set()
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            return rows, (number, None)
        token = fields[1].strip()
        label, why = expected_label(token, label_offset)
        if why:
            return rows, (number, token)
        key = os.path.normpath(fields[0])
        if key in seen:
            return rows, (number, None)
        seen.add(key)
        rows.append((fields[0], label, number))
    return rows, None


class TsvLabelsPropertyTest(LabelsFileTestCase):
    @SETTINGS
    @given(
        lines=st.lists(tsv_lines(), max_size=8),
        bom=st.booleans(),
        line_end=st.sampled_from(LINE_ENDS),
        final_end=st.booleans(),
        label_offset=st.sampled_from([0, 1]),
    )
    def test_parses_right_or_names_the_line(
        self, lines, bom, line_end, final_end, label_offset
    ):
        path = self.write(
            file_text(lines, bom=bom, line_end=line_end, final_end=final_end)
        )
        rows, first_error = expected_tsv(lines, label_offset)
        if first_error is None:
            got = imagenet.read_tsv_labels(
                path, label_offset=label_offset, num_classes=NUM_CLASSES
            )
            self.assertEqual([tuple(row) for row in got], rows)
        else:
            with self.assertRaises(ValueError) as raised:
                imagenet.read_tsv_labels(
                    path, label_offset=label_offset, num_classes=NUM_CLASSES
                )
            self.assertNamesLine(raised.exception, *first_error)


# TFRecord features: (kind, values) or None for a missing key; "unset" is
# a Feature with no kind.
TFR_CLASSES = 5
IMAGE_KEY, LABEL_KEY = tfrecord.DEFAULT_IMAGE_KEY, tfrecord.DEFAULT_LABEL_KEY
GARBAGE = (b"\x07", b"not a proto", b"")  # b"": an Example with no features.
image_features = st.sampled_from(
    [
        ("bytes_list", [b"jpeg bytes"]),
        ("bytes_list", [b"jpeg bytes"]),
        ("bytes_list", []),
        ("bytes_list", [b"one", b"two"]),
        ("int64_list", [1]),
        ("float_list", [1.0]),
        ("unset", None),
        None,
    ]
)
label_features = st.integers(-2, TFR_CLASSES + 2).map(
    lambda v: ("int64_list", [v])
) | st.sampled_from(
    [
        ("int64_list", []),
        ("int64_list", [1, 2]),
        ("float_list", [1.0]),
        ("bytes_list", [b"1"]),
        ("unset", None),
        None,
    ]
)
records = st.one_of(
    st.tuples(image_features, label_features),
    st.sampled_from(GARBAGE),
)


def feature(kind, values) -> tf.train.Feature:
    if kind == "unset":
        return tf.train.Feature()
    lists = dict(
        bytes_list=tf.train.BytesList,
        int64_list=tf.train.Int64List,
        float_list=tf.train.FloatList,
    )
    return tf.train.Feature(**{kind: lists[kind](value=values)})


def serialize(record) -> bytes:
    if isinstance(record, bytes):
        return record
    features = {"other": feature("int64_list", [7])}
    for key, spec in zip((IMAGE_KEY, LABEL_KEY), record):
        if spec is not None:
            features[key] = feature(*spec)
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString()


def structurally_valid(record) -> bool:
    if isinstance(record, bytes):
        return False
    image, label = record
    return (
        image is not None
        and image[0] == "bytes_list"
        and len(image[1]) == 1
        and label is not None
        and label[0] == "int64_list"
        and len(label[1]) == 1
    )


class TFRecordPropertyTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path

    @SETTINGS
    @given(
        shards=st.lists(
            st.lists(records, min_size=1, max_size=4), min_size=1, max_size=2
        ),
        label_offset=st.sampled_from([0, 1]),
    )
    def test_parses_right_or_names_the_record(self, shards, label_offset):
        for name in os.listdir(self.dir):
            os.remove(os.path.join(self.dir, name))
        files = []
        for index, shard in enumerate(shards):
            files.append(os.path.join(self.dir, f"shard-{index}"))
            with tf.io.TFRecordWriter(files[-1]) as writer:
                for record in shard:
                    writer.write(serialize(record))

        expected, error = [], None
        for file, shard in zip(files, shards):
            bad = [i for i, r in enumerate(shard) if not structurally_valid(r)]
            if bad:
                error = f"Record {bad[0]} of TFRecord shard {file!r} "
                break
            labels = [record[1][1][0] - label_offset for record in shard]
            out = [i for i, v in enumerate(labels) if not 0 <= v < TFR_CLASSES]
            if out:
                error = f"{file!r} record {out[0]} is outside the class range"
                break
            expected.extend(labels)

        def read():
            return tfrecord.read(
                self.dir,
                image_key=IMAGE_KEY,
                label_key=LABEL_KEY,
                label_offset=label_offset,
                num_classes=TFR_CLASSES,
            )

        if error is None:
            examples = read()
            self.assertEqual(examples.num_examples, len(expected))
            got = [
                (bytes(image), int(label))
                for image, label in examples.dataset.as_numpy_iterator()
            ]
            self.assertEqual(got, [(b"jpeg bytes", v) for v in expected])
        else:
            with self.assertRaises(ValueError) as raised:
                read()
            self.assertIn(error, str(raised.exception))


if __name__ == "__main__":
    absltest.main()
