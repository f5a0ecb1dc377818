"""ImageNet (ILSVRC2012) facts: the one copy of the class list, its names and
the ground-truth parsing.

Index i of the 1000-class label space is the i-th WordNet synset in sorted
order (`n01440764` is class 0): the order of Keras Applications, tfds and
every published figure. The synsets and the 50,000 validation labels are
read offline from the files tensorflow-datasets ships with its
`imagenet2012` builder; the human-readable names from tfds' own list in the
same order.

>>> synsets()[281], class_names()[281]
('n02123045', 'tabby, tabby cat')

Ground truth comes in two layouts, both read here: a line-per-image file
(`read_line_labels`: line i labels `ILSVRC2012_val_%08d.JPEG` % i) and a TSV
of `<file>\t<label>` lines (`read_tsv_labels`). A label is a synset or an
integer class index (`parse_label`); errors name the file and line.
"""

from __future__ import annotations

import functools
import os
import re
from typing import NamedTuple

import tensorflow as tf

NUM_CLASSES = 1000
SYNSET_PATTERN = re.compile(r"^n\d{8}$")
# ILSVRC2012 validation images: ILSVRC2012_val_00000001.JPEG is image 1.
VALIDATION_FILE_PATTERN = re.compile(r"^ILSVRC2012_val_(\d{8})\.[A-Za-z]+$")
# An integer label: ASCII digits only (int() also takes "1_000" and "٣").
_INTEGER_PATTERN = re.compile(r"[+-]?[0-9]+")
_LINE_END = re.compile(r"\r\n|\r|\n")


def _tfds_resource(name: str) -> str:
    import tensorflow_datasets as tfds

    return os.fspath(tfds.core.tfds_path(f"datasets/imagenet2012/{name}"))


def _read_lines(path: str) -> list[str]:
    with tf.io.gfile.GFile(path) as f:
        return [line.strip() for line in f.read().splitlines() if line.strip()]


@functools.cache
def synsets() -> tuple[str, ...]:
    """The 1000 ILSVRC2012 synsets in sorted order (index = class index)."""
    path = _tfds_resource("labels.txt")
    names = tuple(_read_lines(path))
    if len(names) != NUM_CLASSES or list(names) != sorted(names):
        raise ValueError(
            f"Expected {NUM_CLASSES} sorted synsets in {path}. Received: "
            f"{len(names)} lines; reinstall tensorflow-datasets."
        )
    return names


@functools.cache
def synset_index() -> dict[str, int]:
    """{synset: class index} for the 1000 classes."""
    return {synset: i for i, synset in enumerate(synsets())}


@functools.cache
def class_names() -> tuple[str, ...]:
    """Human-readable names in class order, e.g. 'tabby, tabby cat' (281)."""
    from tensorflow_datasets.datasets.siscore import labels

    names = tuple(labels.IMAGENET_LABELS_LIST)
    if len(names) != NUM_CLASSES:
        raise ValueError(
            f"Expected {NUM_CLASSES} ImageNet class names from "
            f"tensorflow-datasets. Received: {len(names)}"
        )
    return names


@functools.cache
def validation_labels() -> tuple[str, ...]:
    """The 50,000 ILSVRC2012 validation synsets; entry i is image i + 1."""
    return tuple(_read_lines(validation_labels_file()))


def validation_labels_file() -> str:
    """Path of the ILSVRC2012 validation ground truth tfds ships.

    A line-per-image file: line i holds the synset of
    `ILSVRC2012_val_%08d.JPEG` % i (50,000 lines).
    """
    return _tfds_resource("validation_labels.txt")


def label_lines(path) -> tuple[str, ...]:
    """The lines of a labels file, stripped, blank lines kept as "".

    Line i of the result is line i + 1 of the file, so line numbers (and the
    ILSVRC image numbers they stand for) hold. A UTF-8 byte-order mark is
    dropped; LF, CRLF and CR line ends all work, and nothing else ends a line.

    Args:
        path: the labels file.

    Returns:
        The stripped lines.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not UTF-8 text.
    """
    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            "Argument `path` names a labels file that does not exist. "
            f"Received: path={path!r}"
        )
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"Labels file {path!r} must be UTF-8 text. Received bytes that "
            f"are not, on line {path}:{line} ({e}). Save the file as UTF-8."
        ) from e
    # Only LF, CRLF and CR end a line: str.splitlines() also splits at form
    # feeds, \x1c-\x1e, \x85 and \u2028, which would shift every later line
    # onto the wrong image.
    lines = _LINE_END.split(text)
    if lines[-1] == "":
        lines.pop()
    return tuple(line.strip() for line in lines)


def parse_label(token: str, *, label_offset: int = 0, where: str) -> int:
    """The 0-based class index a ground-truth token stands for.

    A WordNet synset (`n01440764`) gives its index among the 1000 sorted
    synsets; an integer gives itself minus `label_offset`. No range check:
    see `check_label`.

    >>> parse_label("n02123045", where="line 1")
    281
    >>> parse_label("282", label_offset=1, where="line 1")
    281

    Args:
        token: the stripped label text.
        label_offset: subtracted from integer labels (1 for 1-based files).
        where: what the token labels, for errors (a file and line).

    Returns:
        The class index.

    Raises:
        ValueError: an unknown synset, or neither a synset nor an integer.
    """
    if SYNSET_PATTERN.match(token):
        index = synset_index().get(token)
        if index is None:
            raise ValueError(
                f"Label {token!r} of {where} is not one of the 1000 "
                "ILSVRC2012 synsets."
            )
        return index
    if not _INTEGER_PATTERN.fullmatch(token):
        raise ValueError(
            f"Label {token!r} of {where} is neither a WordNet synset "
            "(n01440764) nor an integer class index."
        )
    return int(token) - label_offset


def check_label(label: int, *, raw, num_classes: int, where: str) -> None:
    """Raises unless `label` (after the offset) lies in [0, num_classes).

    Args:
        label: the 0-based class index.
        raw: the label as the data holds it (token, number or class name).
        num_classes: the size of the label space.
        where: what the label labels, for the error.

    Raises:
        ValueError: naming `raw`, `where`, the index and the range.
    """
    if not 0 <= label < num_classes:
        raise ValueError(
            f"Label {raw!r} of {where} is outside the class range: after "
            f"the label offset it is {label}, not in [0, {num_classes}). "
            "Check `label_offset` and `num_classes`."
        )


def read_line_labels(
    path, *, label_offset: int = 0, num_classes: int = NUM_CLASSES
) -> tuple[int, ...]:
    """A line-per-image labels file (ILSVRC layout) as class indices.

    Line i holds the label of image i (`ILSVRC2012_val_%08d.JPEG` % i): a
    synset or an integer (see `parse_label`). Trailing blank lines are
    ignored; a blank line before the last label is an error, since it would
    leave its image unlabelled.

    Args:
        path: the labels file.
        label_offset: subtracted from integer labels.
        num_classes: every label must lie in [0, num_classes).

    Returns:
        Entry i is the class index of image i + 1.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: a blank line, a bad token or a label out of range,
            naming the file and line.
    """
    path = os.fspath(path)
    lines = list(label_lines(path))
    while lines and not lines[-1]:
        lines.pop()
    labels = []
    for number, token in enumerate(lines, 1):
        where = f"{path}:{number}"
        if not token:
            raise ValueError(
                f"Line {where} is blank. A line-per-image labels file needs "
                f"a label on every line (line i labels image i)."
            )
        label = parse_label(token, label_offset=label_offset, where=where)
        check_label(label, raw=token, num_classes=num_classes, where=where)
        labels.append(label)
    return tuple(labels)


class LabelledFile(NamedTuple):
    """One row of a TSV labels file (see `read_tsv_labels`)."""

    file: str
    label: int
    line: int  # 1-based line number in the labels file, for errors.


def read_tsv_labels(
    path,
    *,
    label_offset: int = 0,
    num_classes: int = NUM_CLASSES,
    directory=None,
) -> tuple[LabelledFile, ...]:
    """A TSV of `<file>\\t<label>[\\t...]` lines as labelled files.

    Blank lines are skipped; columns after the label are ignored. The order
    is the file's; a file listed twice is an error (it would count twice).
    Whether the files exist is the caller's concern.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".tsv") as f:
    ...     _ = f.write("a.jpg\\tn02123045\\n\\nb.jpg\\t7\\n")
    ...     f.flush()
    ...     [tuple(row) for row in read_tsv_labels(f.name)]
    [('a.jpg', 281, 1), ('b.jpg', 7, 3)]

    Args:
        path: the labels file.
        label_offset: subtracted from integer labels.
        num_classes: every label must lie in [0, num_classes).
        directory: joined in front of each file name (default: none).

    Returns:
        A `LabelledFile` (file, class index, line number) per non-blank
        line.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: a line without a tab, a bad token, a label out of
            range or a file listed twice, naming the file and line.
    """
    path = os.fspath(path)
    rows = []
    first_line = {}  # Normalised file -> the line that listed it first.
    for number, line in enumerate(label_lines(path), 1):
        if not line:
            continue
        where = f"{path}:{number}"
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(
                f"Line {where} must be '<file>\\t<label>'. Received: {line!r}"
            )
        file = fields[0]
        if directory is not None:
            file = os.path.join(os.fspath(directory), file)
        token = fields[1].strip()
        label_of = f"{file!r} ({where})"
        label = parse_label(token, label_offset=label_offset, where=label_of)
        check_label(label, raw=token, num_classes=num_classes, where=label_of)
        key = os.path.normpath(file)
        if key in first_line:
            raise ValueError(
                f"File {file!r} is listed twice in labels file {path!r}: on "
                f"lines {first_line[key]} and {number} ({where}). List each "
                "image once: a second line would count it twice."
            )
        first_line[key] = number
        rows.append(LabelledFile(file, label, number))
    return tuple(rows)


def names_for(
    num_outputs: int, source_names
) -> tuple[list[str] | None, list[str] | None]:
    """(names in words, synsets) of a model's classes, where known.

    The 1000 ImageNet classes are named in words ("tabby, tabby cat");
    other label spaces by the source's class names (`source_names`), when
    there is one per output.
    """
    names = list(source_names) if source_names else None
    standard = names is None or names == list(synsets())
    if num_outputs == NUM_CLASSES and standard:
        return list(class_names()), list(synsets())
    if names is not None and len(names) == num_outputs:
        return names, None
    return None, None
