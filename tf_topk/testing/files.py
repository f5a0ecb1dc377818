"""Tiny image data on disk: encoded images, files, class folders, TFRecords.

Every image is an `oracle.constant_image` of the class it is written as, so the
oracle (`tf_topk.testing.oracle`) reads it back exactly; the formats cover
what real data holds (JPEG, PNG, grayscale, Adobe CMYK JPEG).
"""

from __future__ import annotations

import os

import numpy as np

from tf_topk import imagenet
from tf_topk.testing import oracle

FORMATS = ("jpeg", "png", "gray_jpeg", "gray_png", "cmyk_jpeg")


def _encode(image: np.ndarray, fmt: str) -> bytes:
    import tensorflow as tf

    if fmt == "jpeg":
        return tf.io.encode_jpeg(image, quality=95).numpy()
    if fmt == "png":
        return tf.io.encode_png(image).numpy()
    if fmt == "gray_jpeg":
        return tf.io.encode_jpeg(image[..., :1], quality=95).numpy()
    if fmt == "gray_png":
        return tf.io.encode_png(image[..., :1]).numpy()
    if fmt == "cmyk_jpeg":
        height, width = image.shape[:2]
        if (image != image[0, 0]).any():
            raise ValueError("cmyk_jpeg writes constant images only.")
        red, green, blue = (int(v) for v in image[0, 0])
        if not red == green == blue:
            raise ValueError("cmyk_jpeg writes gray images only.")
        # Adobe (inverted) CMYK decodes to R = C * K / 255: full C, M, Y
        # and K = value, so only a decoder that reads K gets the value.
        return cmyk_jpeg((255, 255, 255, red), height=height, width=width)
    raise ValueError(
        f"Argument `fmt` must be one of {list(FORMATS)}. Received: fmt={fmt!r}"
    )


def cmyk_jpeg(values, *, height: int, width: int) -> bytes:
    """A constant 4-channel Adobe CMYK baseline JPEG, encoded by hand.

    Quantisation is all ones and every block holds only its DC term, so the
    stored channel values are exact. Adobe CMYK is stored inverted: the
    usual decoders give RGB = (C * K / 255, M * K / 255, Y * K / 255).

    Args:
        values: the stored (C, M, Y, K) values, 0..255.
        height: image height.
        width: image width.

    Returns:
        The JPEG bytes.
    """
    import struct

    def segment(marker: int, payload: bytes) -> bytes:
        return (
            bytes([0xFF, marker])
            + struct.pack(">H", len(payload) + 2)
            + payload
        )

    components = range(1, 5)
    header = b"\xff\xd8"
    header += segment(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0))
    header += segment(0xDB, b"\x00" + b"\x01" * 64)
    header += segment(
        0xC0,
        struct.pack(">BHHB", 8, height, width, 4)
        + b"".join(bytes([c, 0x11, 0]) for c in components),
    )
    # DC: categories 0..11 as 4-bit codes; AC: only end-of-block, code "0".
    header += segment(
        0xC4, b"\x00" + bytes([0, 0, 0, 12] + [0] * 12) + bytes(range(12))
    )
    header += segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
    header += segment(
        0xDA,
        bytes([4])
        + b"".join(bytes([c, 0]) for c in components)
        + bytes([0, 63, 0]),
    )
    bits: list[int] = []

    def put(value: int, length: int) -> None:
        bits.extend((value >> (length - 1 - i)) & 1 for i in range(length))

    num_blocks = -(-height // 8) * -(-width // 8)
    for block in range(num_blocks):
        for value in values:
            diff = 8 * (int(value) - 128) if block == 0 else 0
            category = abs(diff).bit_length()
            put(category, 4)
            if category:
                put(diff if diff >= 0 else diff + (1 << category) - 1, category)
            put(0, 1)
    bits.extend([1] * (-len(bits) % 8))
    data = bytearray()
    for i in range(0, len(bits), 8):
        byte = int("".join(map(str, bits[i : i + 8])), 2)
        data.append(byte)
        if byte == 0xFF:
            data.append(0)
    return header + bytes(data) + b"\xff\xd9"


def _write(path: str, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return path


def encoded_image(
    class_index: int,
    num_classes: int,
    *,
    fmt: str = "jpeg",
    height: int = 32,
    width: int = 40,
) -> bytes:
    """JPEG or PNG bytes of `constant_image(class_index, num_classes)`."""
    image = oracle.constant_image(
        class_index, num_classes, height=height, width=width
    )
    return _encode(image, fmt)


def _extension(fmt: str) -> str:
    return "png" if fmt.endswith("png") else "jpg"


def _sizes(num: int, height: int, width: int, vary_size: bool):
    """Image sizes; with vary_size, portrait and landscape alternate."""
    for i in range(num):
        if vary_size and i % 2:
            yield width + i, height
        else:
            yield height + (i if vary_size else 0), width


def write_image_files(
    directory: str,
    classes,
    *,
    num_classes: int,
    fmt: str = "jpeg",
    height: int = 32,
    width: int = 40,
    vary_size: bool = True,
    name_format: str = "image_{:04d}.{ext}",
) -> list[str]:
    """Writes one constant image per entry of `classes`, painted as that class.

    Args:
        directory: an existing folder.
        classes: the class each image paints (what the oracle predicts).
        num_classes: number of classes of the oracle.
        fmt: one of `FORMATS`.
        height: image height (varied per image when `vary_size`).
        width: image width.
        vary_size: give images different sizes and orientations.
        name_format: file name, formatted with the 0-based position and
            `ext`.

    Returns:
        The written paths, in the order of `classes`.
    """
    ext = _extension(fmt)
    paths = []
    sizes = _sizes(len(classes), height, width, vary_size)
    for i, (c, (h, w)) in enumerate(zip(classes, sizes)):
        path = os.path.join(directory, name_format.format(i, ext=ext))
        paths.append(
            _write(
                path,
                encoded_image(int(c), num_classes, fmt=fmt, height=h, width=w),
            )
        )
    return paths


def write_ilsvrc_files(
    directory: str,
    classes,
    labels,
    *,
    num_classes: int,
    numbers=None,
    synsets: bool = False,
    fmt: str = "jpeg",
) -> tuple[list[str], str]:
    """Writes `ILSVRC2012_val_%08d.JPEG` images and a line-per-image file.

    Args:
        directory: an existing folder; the images go in `directory/images`.
        classes: the class each image paints.
        labels: the label of each image (0-based class index).
        num_classes: number of classes of the oracle.
        numbers: the 1-based ILSVRC number of each image (default 1..n);
            lines of other numbers get label 0.
        synsets: write labels as the real ILSVRC2012 synset of each index
            (`n01440764` for 0) instead of the index.
        fmt: one of `FORMATS` (the name keeps the .JPEG extension).

    Returns:
        (image paths in `classes` order, labels file path).
    """
    numbers = (
        list(numbers)
        if numbers is not None
        else list(range(1, len(classes) + 1))
    )
    images = os.path.join(directory, "images")
    os.makedirs(images, exist_ok=True)
    paths = write_image_files(
        images,
        classes,
        num_classes=num_classes,
        fmt=fmt,
        name_format="ILSVRC2012_val_{:08d}.JPEG",
    )
    renamed = []
    for path, number in zip(paths, numbers):
        target = os.path.join(images, f"ILSVRC2012_val_{number:08d}.JPEG")
        os.replace(path, target + ".tmp")
        renamed.append(target)
    for target in renamed:
        os.replace(target + ".tmp", target)
    lines = ["0"] * max(numbers)
    names = imagenet.synsets() if synsets else None
    for number, label in zip(numbers, labels):
        lines[number - 1] = names[int(label)] if synsets else str(int(label))
    labels_file = os.path.join(directory, "labels.txt")
    _write(labels_file, ("\n".join(lines) + "\n").encode())
    return renamed, labels_file


def write_class_folders(
    directory: str,
    classes,
    labels,
    *,
    num_classes: int,
    class_names=None,
    fmt: str = "jpeg",
) -> list[str]:
    """Writes images into one subfolder per label.

    Args:
        directory: an existing folder.
        classes: the class each image paints.
        labels: the label (folder index) of each image.
        num_classes: number of classes of the oracle.
        class_names: folder name of each label index (default
            `class_{:02d}`; pass real synsets to test synset mapping).
        fmt: one of `FORMATS`.

    Returns:
        Image paths in the order the `folder` source reads them.
    """
    if class_names is None:
        class_names = [f"class_{i:02d}" for i in range(num_classes)]
    for name in class_names:
        os.makedirs(os.path.join(directory, name), exist_ok=True)
    ext = _extension(fmt)
    paths = []
    sizes = _sizes(len(classes), 32, 40, True)
    for i, (c, label, (h, w)) in enumerate(zip(classes, labels, sizes)):
        path = os.path.join(
            directory, class_names[int(label)], f"image_{i:04d}.{ext}"
        )
        _write(
            path,
            encoded_image(int(c), num_classes, fmt=fmt, height=h, width=w),
        )
        paths.append(path)
    return sorted(paths)


def write_photo_jpegs(
    directory: str,
    num_images: int,
    num_classes: int,
    *,
    height: int = 375,
    width: int = 500,
    seed: int = 0,
) -> None:
    """Writes photo-like JPEGs (smooth gradients plus noise) in class
    folders `class_00`, ...: decoding them costs what decoding ImageNet
    validation images (typically 500 x 375) costs, for benchmarks."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    for i in range(num_images):
        folder = os.path.join(directory, f"class_{i % num_classes:02d}")
        os.makedirs(folder, exist_ok=True)
        base = rng.uniform(0, 255, 3)
        slope = rng.uniform(-0.3, 0.3, (2, 3))
        image = (
            base
            + rows[..., None] * slope[0]
            + cols[..., None] * slope[1]
            + rng.normal(0, 12, (height, width, 3))
        )
        _write(
            os.path.join(folder, f"image_{i:05d}.jpg"),
            _encode(np.clip(image, 0, 255).astype(np.uint8), "jpeg"),
        )


def write_tfrecords(
    directory: str,
    classes,
    labels,
    *,
    num_classes: int,
    num_shards: int = 3,
    label_offset: int = 1,
    image_key: str = "image/encoded",
    label_key: str = "image/class/label",
    fmt: str = "jpeg",
    file_names: bool = False,
) -> list[str]:
    """Writes ImageNet-layout TFRecord shards of `tf.train.Example`.

    Shard s holds a contiguous run of examples, so reading the shards in
    sorted order gives the input order.

    Args:
        directory: an existing folder.
        classes: the class each image paints.
        labels: 0-based labels; stored as `label + label_offset`.
        num_classes: number of classes of the oracle.
        num_shards: number of `validation-%05d-of-%05d` files.
        label_offset: added to stored labels (1 = the ImageNet convention).
        image_key: feature holding the encoded image.
        label_key: feature holding the int64 label.
        fmt: one of `FORMATS`.
        file_names: also store `image/filename` = `image_<i>.jpg`.

    Returns:
        Shard paths in sorted order.
    """
    import tensorflow as tf

    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[value])
            )
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    num = len(classes)
    bounds = np.linspace(0, num, num_shards + 1).round().astype(int)
    sizes = list(_sizes(num, 32, 40, True))
    paths = []
    for shard in range(num_shards):
        path = os.path.join(
            directory, f"validation-{shard:05d}-of-{num_shards:05d}"
        )
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(bounds[shard], bounds[shard + 1]):
                h, w = sizes[i]
                data = encoded_image(
                    int(classes[i]), num_classes, fmt=fmt, height=h, width=w
                )
                features = {
                    image_key: feature(data),
                    label_key: feature(int(labels[i]) + label_offset),
                }
                if file_names:
                    features["image/filename"] = feature(
                        f"image_{i:04d}.jpg".encode()
                    )
                example = tf.train.Example(
                    features=tf.train.Features(feature=features)
                )
                writer.write(example.SerializeToString())
        paths.append(path)
    return paths
