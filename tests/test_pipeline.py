"""The decoded-image cache and the tf.data pipelines built on it."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import ImageWriter
from dermkit.core import Record
from dermkit.data import images as images_module
from dermkit.data.cache import CacheWarning, ImageCache, default_cache_root
from dermkit.data.images import ImageSettings, load_image
from dermkit.data.loader import ImageLoader
from dermkit.errors import DataError

SETTINGS = ImageSettings(size=16)


@pytest.fixture
def counted_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every real decode, to prove cache hits decode nothing."""
    calls: list[str] = []
    real = images_module.decode_image

    def counting(data: bytes, **kwargs: object) -> np.ndarray:
        calls.append(str(kwargs.get("where")))
        return real(data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(images_module, "decode_image", counting)
    return calls


# ----------------------------------------------------------------------------- cache


def test_default_cache_root_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DERMKIT_CACHE", str(tmp_path / "c"))
    assert default_cache_root() == tmp_path / "c"
    assert ImageCache().root == tmp_path / "c"
    monkeypatch.delenv("DERMKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_root() == tmp_path / "xdg" / "dermkit" / "images"


def test_second_load_reads_the_cache(
    tmp_path: Path, write_image: ImageWriter, counted_decodes: list[str]
) -> None:
    paths = [write_image(tmp_path / f"{i}.jpg", 24, 30, seed=i) for i in range(3)]
    cache = ImageCache(tmp_path / "cache")
    first = ImageLoader(SETTINGS, cache)
    originals = [first(p) for p in paths]
    assert first.decodes == 3 and len(counted_decodes) == 3
    later_run = ImageLoader(SETTINGS, ImageCache(tmp_path / "cache"))  # a new process, say
    again = [later_run(p) for p in paths]
    assert later_run.hits == 3 and later_run.decodes == 0 and len(counted_decodes) == 3
    for a, b in zip(originals, again, strict=True):
        assert np.array_equal(a, b) and b.shape == (16, 16, 3) and b.dtype == np.uint8
    assert np.array_equal(again[0], load_image(paths[0], SETTINGS))
    entries = list((tmp_path / "cache" / SETTINGS.cache_key()).glob("??/*.npy"))
    assert len(entries) == 3
    assert np.array_equal(np.load(entries[0]).shape, (16, 16, 3))  # plain .npy files


def test_corrupt_cache_entry_is_a_miss_and_is_rewritten(
    tmp_path: Path, write_image: ImageWriter, counted_decodes: list[str]
) -> None:
    path = write_image(tmp_path / "a.png")
    cache = ImageCache(tmp_path / "cache")
    loader = ImageLoader(SETTINGS, cache)
    expected = loader(path)
    entry = cache.entry_path(path, SETTINGS)
    for damage in (entry.read_bytes()[:100], b"", b"garbage" * 200, entry.read_bytes() + b"x"):
        entry.write_bytes(damage)
        assert np.array_equal(loader(path), expected)
        assert cache.read(entry, SETTINGS) is not None  # healed
    assert loader.decodes == 5 and len(counted_decodes) == 5
    assert not list(entry.parent.glob(".tmp-*"))  # no temporary files left behind


def test_changed_file_or_settings_miss(tmp_path: Path, write_image: ImageWriter) -> None:
    path = write_image(tmp_path / "a.png", seed=1)
    cache = ImageCache(tmp_path / "cache")
    loader = ImageLoader(SETTINGS, cache)
    before = loader(path)
    write_image(path, seed=2)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = loader(path)
    assert loader.decodes == 2 and not np.array_equal(before, after)
    ImageLoader(ImageSettings(size=8), cache)(path)
    assert {p.name for p in (tmp_path / "cache").iterdir()} == {
        SETTINGS.cache_key(),
        ImageSettings(size=8).cache_key(),
    }


def test_content_hash_survives_a_move(tmp_path: Path, write_image: ImageWriter) -> None:
    cache = ImageCache(tmp_path / "cache", content_hash=True)
    path = write_image(tmp_path / "a.png")
    ImageLoader(SETTINGS, cache)(path)
    moved = path.rename(tmp_path / "b.png")
    loader = ImageLoader(SETTINGS, cache)
    loader(moved)
    assert loader.hits == 1 and loader.decodes == 0


def test_concurrent_writers_are_safe(tmp_path: Path, write_image: ImageWriter) -> None:
    paths = [write_image(tmp_path / f"{i}.png", seed=i) for i in range(4)]
    cache = ImageCache(tmp_path / "cache")
    results: list[list[np.ndarray]] = []

    def run() -> None:
        loader = ImageLoader(SETTINGS, ImageCache(cache.root))
        results.append([loader(p) for p in paths])

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    for result in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(results[0], result, strict=True))
    assert len(list(cache.root.rglob("*.npy"))) == 4
    assert not list(cache.root.rglob(".tmp-*"))


def test_unwritable_cache_warns_once_and_still_loads(
    tmp_path: Path, write_image: ImageWriter
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    loader = ImageLoader(SETTINGS, ImageCache(blocker))
    paths = [write_image(tmp_path / f"{i}.png", seed=i) for i in range(2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in paths:
            assert loader(path).shape == (16, 16, 3)
    assert [w.category for w in caught] == [CacheWarning]


def test_loader_without_cache_and_bad_files(tmp_path: Path) -> None:
    loader = ImageLoader(SETTINGS, None)
    (tmp_path / "bad.jpg").write_text("nope")
    with pytest.raises(DataError, match="not an image"):
        loader(tmp_path / "bad.jpg")
    with pytest.raises(DataError, match="not found"):
        ImageLoader(SETTINGS, ImageCache(tmp_path / "c"))(tmp_path / "missing.jpg")


# ----------------------------------------------------------------------------- tf.data


def test_image_dataset_keeps_order_shape_and_dtype(
    tmp_path: Path, write_image: ImageWriter
) -> None:
    from dermkit.data.pipeline import image_dataset

    paths = [write_image(tmp_path / f"ä{i}.png", 20 + i, 30, seed=i) for i in range(6)]
    loader = ImageLoader(SETTINGS, ImageCache(tmp_path / "cache"))
    dataset = image_dataset(paths, loader, num_parallel_calls=4)
    assert tuple(dataset.element_spec.shape) == (16, 16, 3)
    out = [x.numpy() for x in dataset]
    assert len(out) == 6 and out[0].dtype == np.uint8
    for path, image in zip(paths, out, strict=True):
        assert np.array_equal(image, load_image(path, SETTINGS))


def test_records_dataset_batches_and_shuffles_reproducibly(
    tmp_path: Path, write_image: ImageWriter
) -> None:
    import tensorflow as tf

    from dermkit.data.pipeline import records_dataset

    records = [
        Record(path=write_image(tmp_path / f"{i}.png", seed=i), label=i % 3, group=str(i))
        for i in range(7)
    ]
    loader = ImageLoader(SETTINGS, None)
    plain = records_dataset(records, loader, 3, batch_size=4, shuffle=False, seed=0)
    batches = list(plain)
    assert [b[0].shape[0] for b in batches] == [4, 3]
    images, labels = batches[0]
    assert images.dtype == tf.float32 and labels.dtype == tf.int32
    assert float(tf.reduce_max(images)) <= 255.0 and float(tf.reduce_max(images)) > 1.0
    assert labels.numpy().tolist() == [0, 1, 2, 0]

    originals = [load_image(r.path, SETTINGS).astype(np.float32) for r in records]

    def order(seed: int) -> list[int]:
        ds = records_dataset(records, loader, 3, batch_size=7, shuffle=True, seed=seed)
        images = next(iter(ds))[0].numpy()
        return [next(i for i, o in enumerate(originals) if np.array_equal(o, x)) for x in images]

    assert order(1) == order(1)
    assert sorted(order(1)) == list(range(7))

    repeated = records_dataset(records, loader, 3, batch_size=5, shuffle=True, seed=0, repeat=True)
    assert len(list(repeated.take(4))) == 4


def test_records_dataset_refuses_nonsense(tmp_path: Path) -> None:
    from dermkit.data.pipeline import records_dataset

    loader = ImageLoader(SETTINGS, None)
    with pytest.raises(DataError, match="no records"):
        records_dataset([], loader, 3, batch_size=2, shuffle=False, seed=0)
    record = Record(path=tmp_path / "x.png", label=5, group="x")
    with pytest.raises(DataError, match=r"outside 0\.\.2"):
        records_dataset([record], loader, 3, batch_size=2, shuffle=False, seed=0)


def test_bad_image_in_the_stream_surfaces_as_a_data_error(
    tmp_path: Path, write_image: ImageWriter
) -> None:
    import tensorflow as tf

    from dermkit.data.pipeline import image_dataset, surface_data_errors

    good = write_image(tmp_path / "good.png")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    dataset = image_dataset([good, bad], ImageLoader(SETTINGS, None))
    with pytest.raises(tf.errors.OpError, match="empty file"):  # even unwrapped, it says why
        list(dataset)
    with pytest.raises(DataError, match="empty file") as caught, surface_data_errors():
        list(dataset)
    assert caught.value.where == str(bad)


def test_load_batch_matches_single_loads_and_fills_from_the_cache(
    tmp_path: Path, write_image: ImageWriter
) -> None:
    paths = [write_image(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    loader = ImageLoader(SETTINGS, ImageCache(tmp_path / "cache"))
    cold = loader.load_batch(paths)
    warm = loader.load_batch([os.fsencode(p) for p in paths])  # tf hands over bytes
    assert cold.shape == (3, 16, 16, 3) and loader.hits == 3 and loader.decodes == 3
    assert np.array_equal(cold, warm)
    assert all(np.array_equal(warm[i], load_image(p, SETTINGS)) for i, p in enumerate(paths))


def test_progress_shows_only_on_a_terminal_for_slow_jobs() -> None:
    import io

    from dermkit.data.verify import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet = io.StringIO()
    meter = Progress("verifying images", 3, stream=quiet, delay=0.0)
    meter.update(3)
    meter.close()
    assert quiet.getvalue() == ""
    screen = Terminal()
    meter = Progress("verifying images", 3, stream=screen, delay=0.0)
    meter.update(3)
    meter.close()
    assert "verifying images: 3/3 done" in screen.getvalue()


def test_progress_writes_a_line_a_minute_to_a_log(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from dermkit.data import verify

    clock = [1000.0]
    monkeypatch.setattr(verify.time, "monotonic", lambda: clock[0])
    log = io.StringIO()
    meter = verify.Progress("frozen features", 100, stream=log, log_every=60.0)
    clock[0] += 30.0
    meter.update(10)
    assert log.getvalue() == ""  # nothing before the first minute
    clock[0] += 30.0
    meter.update(10)  # 20 done in 60 s: 1/3 per second, 80 left
    assert log.getvalue() == "frozen features: 20/100 (0.3/s, 4:00 left)\n"
    clock[0] += 10.0
    meter.update(10)
    assert log.getvalue().count("\n") == 1  # the next line waits another minute
    meter.update(70)
    meter.close()
    assert log.getvalue().endswith("frozen features: 100/100 done\n")
    assert "\r" not in log.getvalue()
    quick = io.StringIO()
    meter = verify.Progress("verifying images", 3, stream=quick)
    meter.update(3)
    meter.close()
    assert quick.getvalue() == ""  # a job shorter than a minute leaves no trace


def test_reading_datasets_imports_neither_tensorflow_nor_opencv() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dermkit.data.plugin, dermkit.data.open, dermkit.cli.data_cmd;"
        "from dermkit.data.images import ImageSettings; ImageSettings();"
        "bad = [m for m in ('tensorflow', 'cv2', 'keras') if m in sys.modules];"
        "sys.exit(str(bad) if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
