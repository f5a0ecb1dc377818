"""Tests of the ImageNet class list, names and ground-truth parsing."""

import os

import conftest
import tensorflow as tf
from absl.testing import parameterized

from tf_topk import imagenet


class ClassesTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("first", 0, "n01440764", "tench, Tinca tinca"),
        ("tabby", 281, "n02123045", "tabby, tabby cat"),
        (
            "last",
            999,
            "n15075141",
            "toilet tissue, toilet paper, bathroom tissue",
        ),
    )
    def test_pinned_classes(self, index, synset, name):
        self.assertEqual(imagenet.synsets()[index], synset)
        self.assertEqual(imagenet.class_names()[index], name)
        self.assertEqual(imagenet.synset_index()[synset], index)

    def test_sizes_and_order(self):
        synsets = imagenet.synsets()
        self.assertLen(synsets, imagenet.NUM_CLASSES)
        self.assertEqual(list(synsets), sorted(synsets))
        self.assertLen(imagenet.class_names(), imagenet.NUM_CLASSES)
        self.assertTrue(all(imagenet.SYNSET_PATTERN.match(s) for s in synsets))

    def test_validation_labels(self):
        truth = imagenet.validation_labels()
        self.assertLen(truth, 50_000)
        # ILSVRC2012_val_00000001.JPEG is a snake (n01751748, class 65).
        self.assertEqual(truth[0], "n01751748")
        self.assertEqual(imagenet.synset_index()[truth[0]], 65)
        self.assertEqual(
            imagenet.read_line_labels(imagenet.validation_labels_file())[:1],
            (65,),
        )

    def test_validation_file_pattern(self):
        match = imagenet.VALIDATION_FILE_PATTERN.match(
            "ILSVRC2012_val_00000042.JPEG"
        )
        self.assertEqual(int(match.group(1)), 42)
        self.assertIsNone(
            imagenet.VALIDATION_FILE_PATTERN.match("ILSVRC2012_val_42.JPEG")
        )


class ParseLabelTest(parameterized.TestCase):
    @parameterized.named_parameters(
        ("synset", "n02123045", 0, 281),
        ("synset_ignores_offset", "n02123045", 1, 281),
        ("index", "281", 0, 281),
        ("one_based_index", "282", 1, 281),
        ("negative_after_offset", "0", 1, -1),
    )
    def test_parse(self, token, label_offset, expected):
        self.assertEqual(
            imagenet.parse_label(token, label_offset=label_offset, where="x"),
            expected,
        )

    @parameterized.named_parameters(
        (
            "unknown_synset",
            "n99999999",
            "Label 'n99999999' of f.txt:3 is not one of the 1000 ILSVRC2012 "
            "synsets.",
        ),
        (
            "word",
            "cat",
            "Label 'cat' of f.txt:3 is neither a WordNet synset (n01440764) "
            "nor an integer class index.",
        ),
        (
            "float",
            "2.0",
            "Label '2.0' of f.txt:3 is neither a WordNet synset (n01440764) "
            "nor an integer class index.",
        ),
        (
            "empty",
            "",
            "Label '' of f.txt:3 is neither a WordNet synset (n01440764) nor "
            "an integer class index.",
        ),
    )
    def test_bad_token(self, token, message):
        with self.assertRaises(ValueError) as raised:
            imagenet.parse_label(token, label_offset=0, where="f.txt:3")
        self.assertEqual(str(raised.exception), message)

    def test_check_label(self):
        imagenet.check_label(4, raw="5", num_classes=5, where="x")
        with self.assertRaises(ValueError) as raised:
            imagenet.check_label(5, raw="6", num_classes=5, where="f.txt:2")
        self.assertEqual(
            str(raised.exception),
            "Label '6' of f.txt:2 is outside the class range: after the "
            "label offset it is 5, not in [0, 5). Check `label_offset` and "
            "`num_classes`.",
        )


class ReadLabelsTest(parameterized.TestCase):
    def write(self, data: bytes) -> str:
        path = os.path.join(self.create_tempdir().full_path, "labels.txt")
        with open(path, "wb") as f:
            f.write(data)
        return path

    @parameterized.named_parameters(
        ("lf", b"n01440764\n3\n4\n"),
        ("crlf", b"n01440764\r\n3\r\n4\r\n"),
        ("cr", b"n01440764\r3\r4\r"),
        ("bom", b"\xef\xbb\xbfn01440764\n3\n4\n"),
        ("no_final_newline", b"n01440764\n3\n4"),
        ("trailing_blank_lines", b"n01440764\n3\n4\n\n  \n"),
        ("spaces", b"  n01440764 \n\t3\n4  \n"),
    )
    def test_line_labels(self, data):
        path = self.write(data)
        self.assertEqual(
            imagenet.read_line_labels(path, num_classes=5), (0, 3, 4)
        )

    def test_line_labels_offset(self):
        path = self.write(b"1\n5\n")
        self.assertEqual(
            imagenet.read_line_labels(path, label_offset=1, num_classes=5),
            (0, 4),
        )

    @parameterized.named_parameters(
        (
            "blank_line",
            b"1\n\n2\n",
            "Line {path}:2 is blank. A line-per-image labels file needs a "
            "label on every line (line i labels image i).",
        ),
        (
            "bad_token",
            b"1\ncat\n",
            "Label 'cat' of {path}:2 is neither a WordNet synset (n01440764) "
            "nor an integer class index.",
        ),
        (
            "out_of_range",
            b"1\r\n2\r\n5\r\n",
            "Label '5' of {path}:3 is outside the class range: after the "
            "label offset it is 5, not in [0, 5). Check `label_offset` and "
            "`num_classes`.",
        ),
        (
            "tsv_given",
            b"a.jpg\t1\n",
            "Label 'a.jpg\\t1' of {path}:1 is neither a WordNet synset "
            "(n01440764) nor an integer class index.",
        ),
    )
    def test_line_labels_errors(self, data, message):
        path = self.write(data)
        with self.assertRaises(ValueError) as raised:
            imagenet.read_line_labels(path, num_classes=5)
        self.assertEqual(str(raised.exception), message.format(path=path))

    def test_tsv_labels(self):
        path = self.write(
            b"\xef\xbb\xbfa.jpg\tn01440764\textra\r\n\r\nb.png\t4\r\n"
        )
        self.assertEqual(
            imagenet.read_tsv_labels(path, num_classes=5),
            (
                imagenet.LabelledFile("a.jpg", 0, 1),
                imagenet.LabelledFile("b.png", 4, 3),
            ),
        )
        rows = imagenet.read_tsv_labels(
            path, label_offset=1, num_classes=5, directory="/data"
        )
        self.assertEqual(
            [(row.file, row.label) for row in rows],
            [("/data/a.jpg", 0), ("/data/b.png", 3)],
        )

    @parameterized.named_parameters(
        (
            "no_tab",
            b"a.jpg\t1\nb.jpg 2\n",
            "Line {path}:2 must be '<file>\\t<label>'. Received: 'b.jpg 2'",
        ),
        (
            "bad_token",
            b"a.jpg\tcat\n",
            "Label 'cat' of 'a.jpg' ({path}:1) is neither a WordNet synset "
            "(n01440764) nor an integer class index.",
        ),
        (
            "unknown_synset",
            b"\na.jpg\tn00000000\n",
            "Label 'n00000000' of 'a.jpg' ({path}:2) is not one of the 1000 "
            "ILSVRC2012 synsets.",
        ),
        (
            "out_of_range",
            b"a.jpg\t7\n",
            "Label '7' of 'a.jpg' ({path}:1) is outside the class range: "
            "after the label offset it is 7, not in [0, 5). Check "
            "`label_offset` and `num_classes`.",
        ),
    )
    def test_tsv_labels_errors(self, data, message):
        path = self.write(data)
        with self.assertRaises(ValueError) as raised:
            imagenet.read_tsv_labels(path, num_classes=5)
        self.assertEqual(str(raised.exception), message.format(path=path))

    def test_missing_file(self):
        path = os.path.join(self.create_tempdir().full_path, "nope.txt")
        with self.assertRaises(FileNotFoundError) as raised:
            imagenet.read_line_labels(path)
        self.assertEqual(
            str(raised.exception),
            "Argument `path` names a labels file that does not exist. "
            f"Received: path={path!r}",
        )

    def test_not_utf8(self):
        path = self.write(b"\xff\xfe1\n")
        with self.assertRaisesRegex(
            ValueError, f"^Labels file {path!r} must be UTF-8 text"
        ):
            imagenet.label_lines(path)


class RealAssetsTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        self.imagenet = conftest.ASSETS / "imagenet"
        if not (self.imagenet / "synsets.txt").is_file():
            self.skipTest(f"Real ImageNet assets not found at {self.imagenet}.")

    def test_packaged_synsets_match_the_assets(self):
        synsets = (self.imagenet / "synsets.txt").read_text().split()
        self.assertEqual(list(imagenet.synsets()), synsets)
        truth = (self.imagenet / "validation_labels.txt").read_text().split()
        self.assertEqual(list(imagenet.validation_labels()), truth)

    def test_tsv_and_line_labels_agree(self):
        # The assets' labels.tsv (<file>\t<index>\t<synset>) against the
        # ILSVRC2012 ground truth read line by line.
        truth = imagenet.read_line_labels(
            self.imagenet / "validation_labels.txt"
        )
        rows = imagenet.read_tsv_labels(
            self.imagenet / "val_pjpeg100" / "labels.tsv"
        )
        self.assertLen(rows, 100)
        for row in rows:
            match = imagenet.VALIDATION_FILE_PATTERN.match(row.file)
            self.assertEqual(row.label, truth[int(match.group(1)) - 1])
