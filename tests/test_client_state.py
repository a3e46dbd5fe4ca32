"""Tests for ClientStateStore: per-round append-only files, the index, snapshot and restore."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from fedref_ray.client_state import ClientStateStore, link_or_copy, segment_name

NAMES = ("c", "g")
SIZE = 3


def vec(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def state(base: float) -> dict[str, np.ndarray]:
    """Client state with c = [base, base+1, base+2] and g = -c (hand-checkable values)."""
    c = vec(base, base + 1, base + 2)
    return {"c": c, "g": -c}


def files(folder) -> set[str]:
    return {p.name for p in folder.iterdir()}


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make(folder, num_clients: int = 4) -> ClientStateStore:
    return ClientStateStore(folder, NAMES, SIZE, num_clients)


def test_a_client_that_never_reported_has_no_state(tmp_path) -> None:
    """get omits clients without a row, both before and after another client reports."""
    # Prepare
    store = make(tmp_path / "live")

    # Execute
    before = store.get([0, 1, 2, 3])
    store.put(1, {2: state(1.0)})
    after = store.get([0, 1, 2, 3])

    # Assert
    assert before == {}
    assert list(after) == [2]


def test_put_then_get_returns_exactly_the_vectors_as_float32(tmp_path) -> None:
    """Two clients, two names each: every vector comes back bit for bit, float32, length SIZE."""
    # Prepare
    store = make(tmp_path / "live")
    given = {0: {"c": vec(1.5, -2.0, 3.25), "g": vec(0.0, 0.5, -0.125)}, 3: {"c": vec(7, 8, 9), "g": vec(-1, -2, -3)}}

    # Execute
    store.put(1, given)
    got = store.get([0, 3])

    # Assert
    assert sorted(got) == [0, 3]
    for cid in (0, 3):
        assert sorted(got[cid]) == ["c", "g"]
        for name in NAMES:
            assert got[cid][name].dtype == np.float32 and got[cid][name].shape == (3,)
            np.testing.assert_array_equal(got[cid][name], given[cid][name])
    # The file is 2 clients x 2 names x 3 floats x 4 bytes = 48 bytes.
    assert (tmp_path / "live" / segment_name(1)).stat().st_size == 48


def test_a_later_put_leaves_other_clients_older_state_readable(tmp_path) -> None:
    """Round 2 updates client 1 only; client 0 still reads its round-1 state."""
    # Prepare
    store = make(tmp_path / "live")
    store.put(1, {0: state(10.0), 1: state(20.0)})

    # Execute
    store.put(2, {1: state(30.0)})
    got = store.get([0, 1])

    # Assert
    np.testing.assert_array_equal(got[0]["c"], vec(10, 11, 12))
    np.testing.assert_array_equal(got[0]["g"], vec(-10, -11, -12))
    np.testing.assert_array_equal(got[1]["c"], vec(30, 31, 32))
    np.testing.assert_array_equal(got[1]["g"], vec(-30, -31, -32))


def test_a_file_is_deleted_as_soon_as_no_latest_state_is_in_it(tmp_path) -> None:
    """Rounds 1: {0,1}; 2: {1}; 3: {0}: round 1 survives round 2 (client 0) and is gone after round 3."""
    # Prepare
    live = tmp_path / "live"
    store = make(live)

    # Execute / Assert
    store.put(1, {0: state(1.0), 1: state(2.0)})
    assert files(live) == {segment_name(1)}
    store.put(2, {1: state(3.0)})
    assert files(live) == {segment_name(1), segment_name(2)}
    store.put(3, {0: state(4.0)})
    assert files(live) == {segment_name(2), segment_name(3)}
    got = store.get([0, 1])
    np.testing.assert_array_equal(got[0]["c"], vec(4, 5, 6))
    np.testing.assert_array_equal(got[1]["c"], vec(3, 4, 5))


def test_snapshot_lists_exactly_the_live_files_with_their_sha256(tmp_path) -> None:
    """After rounds 1: {0,1}, 2: {1}, 3: {0} the snapshot names rounds 2 and 3 with hashlib's digests."""
    # Prepare
    live = tmp_path / "live"
    store = make(live)
    store.put(1, {0: state(1.0), 1: state(2.0)})
    store.put(2, {1: state(3.0)})
    store.put(3, {0: state(4.0)})

    # Execute
    snap = store.snapshot()

    # Assert
    assert snap.files == {2: str(live / segment_name(2)), 3: str(live / segment_name(3))}
    assert snap.hashes == {2: sha(live / segment_name(2)), 3: sha(live / segment_name(3))}
    assert snap.names == NAMES and snap.size == SIZE
    assert snap.segment.tolist() == [3, 2, -1, -1] and snap.row.tolist() == [0, 0, -1, -1]


def test_snapshot_hash_follows_a_rewritten_round(tmp_path) -> None:
    """Putting round 1 again with other values gives the new file's hash, not the cached one."""
    # Prepare
    live = tmp_path / "live"
    store = make(live)
    store.put(1, {0: state(1.0)})
    first = store.snapshot().hashes[1]

    # Execute
    store.put(1, {0: state(5.0)})
    second = store.snapshot().hashes[1]

    # Assert
    assert first != second
    assert second == sha(live / segment_name(1))


def checkpoint_of(store: ClientStateStore, folder):
    """Hard-link the snapshot's files into `folder` (as a checkpoint does) and point the snapshot there."""
    snap = store.snapshot()
    folder.mkdir()
    for round_, source in snap.files.items():
        link_or_copy(source, folder / segment_name(round_))
    return dataclasses.replace(snap, files={r: str(folder / segment_name(r)) for r in snap.files})


def test_restore_into_a_fresh_store_gives_identical_states(tmp_path) -> None:
    """A store in another folder restored from a checkpoint reads the same vectors and holds the same files."""
    # Prepare
    store = make(tmp_path / "live")
    store.put(1, {0: state(1.0), 1: state(2.0)})
    store.put(2, {1: state(3.0), 2: state(6.0)})
    snap = checkpoint_of(store, tmp_path / "ckpt")
    expected = store.get(range(4))
    fresh = make(tmp_path / "other")

    # Execute
    fresh.restore(snap)

    # Assert
    got = fresh.get(range(4))
    assert sorted(got) == [0, 1, 2]
    for cid in got:
        for name in NAMES:
            np.testing.assert_array_equal(got[cid][name], expected[cid][name])
    assert files(tmp_path / "other") == {segment_name(1), segment_name(2)}
    assert fresh.snapshot().hashes == snap.hashes


def test_restore_removes_files_written_after_the_snapshot(tmp_path) -> None:
    """Rounds 3 and 4 after the checkpoint are undone: the live folder holds only rounds 1 and 2 again."""
    # Prepare
    live = tmp_path / "live"
    store = make(live)
    store.put(1, {0: state(1.0), 1: state(2.0)})
    store.put(2, {1: state(3.0)})
    snap = checkpoint_of(store, tmp_path / "ckpt")
    store.put(3, {0: state(100.0)})
    store.put(4, {1: state(200.0), 3: state(300.0)})
    assert files(live) == {segment_name(3), segment_name(4)}  # rounds 1, 2 were dropped live

    # Execute
    store.restore(snap)

    # Assert
    assert files(live) == {segment_name(1), segment_name(2)}
    got = store.get(range(4))
    assert sorted(got) == [0, 1]
    np.testing.assert_array_equal(got[0]["c"], vec(1, 2, 3))
    np.testing.assert_array_equal(got[1]["g"], vec(-3, -4, -5))


def test_a_put_after_restore_never_changes_the_checkpoint_files(tmp_path) -> None:
    """Re-running round 2 after a restore from hard links writes a new file; the checkpoint's bytes stay."""
    # Prepare
    store = make(tmp_path / "live")
    store.put(1, {0: state(1.0)})
    store.put(2, {1: state(2.0)})
    snap = checkpoint_of(store, tmp_path / "ckpt")
    fresh = make(tmp_path / "other")
    fresh.restore(snap)

    # Execute
    fresh.put(2, {1: state(50.0)})

    # Assert
    assert {r: sha(tmp_path / "ckpt" / segment_name(r)) for r in (1, 2)} == snap.hashes
    np.testing.assert_array_equal(fresh.get([1])[1]["c"], vec(50, 51, 52))


@pytest.mark.parametrize(
    ("names", "size", "num_clients"),
    [(("c",), SIZE, 4), (("c", "h"), SIZE, 4), (NAMES, 4, 4), (NAMES, SIZE, 5)],
)
def test_restore_refuses_a_snapshot_of_other_names_size_or_clients(tmp_path, names, size, num_clients) -> None:
    """A snapshot of a store with other names, vector size or client count is a ValueError."""
    # Prepare
    store = make(tmp_path / "live")
    store.put(1, {0: state(1.0)})
    snap = store.snapshot()
    other = ClientStateStore(tmp_path / "other", names, size, num_clients)

    # Execute / Assert
    with pytest.raises(ValueError, match="does not fit"):
        other.restore(snap)


def test_a_vector_of_wrong_length_is_a_value_error_and_changes_nothing(tmp_path) -> None:
    """g with 2 values instead of 3 is refused; client 0's round-1 state is still the latest."""
    # Prepare
    store = make(tmp_path / "live")
    store.put(1, {0: state(1.0)})

    # Execute
    with pytest.raises(ValueError, match=r"has 2 values, not the model's 3"):
        store.put(2, {0: {"c": vec(9, 9, 9), "g": vec(1, 2)}})

    # Assert
    np.testing.assert_array_equal(store.get([0])[0]["c"], vec(1, 2, 3))
    assert segment_name(2) not in files(tmp_path / "live")


def test_put_with_no_states_writes_nothing(tmp_path) -> None:
    """An empty round adds no file and leaves the index alone."""
    # Prepare
    live = tmp_path / "live"
    store = make(live)
    store.put(1, {0: state(1.0)})

    # Execute
    store.put(2, {})

    # Assert
    assert files(live) == {segment_name(1)}
    assert store.snapshot().segment.tolist() == [1, -1, -1, -1]
