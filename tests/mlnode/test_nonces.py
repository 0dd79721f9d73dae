"""Nonce lanes: disjoint across nodes and device groups, and together they cover every nonce."""

from __future__ import annotations

import numpy as np
import pytest

from chain.types.poc import MAX_NONCE
from mlnode.pow.nonces import NonceLane, NonceRangeError, NonceStream


def test_kth_nonce_follows_the_reference_formula():
    lane = NonceLane(node_id=2, node_count=3, group_id=1, n_groups=4)
    assert [lane.nonce(k) for k in range(3)] == [2 + 1 * 3 + k * 12 for k in range(3)]
    assert lane.batch(0, 3).tolist() == [5, 17, 29]
    assert lane.batch(0, 3).dtype == np.uint64


@pytest.mark.parametrize("node_count, n_groups", [(1, 1), (1, 3), (4, 1), (3, 2), (5, 4)])
def test_lanes_partition_the_nonces(node_count, n_groups):
    # Given every (node, group) lane of a participant, each taking the same number of nonces
    per_lane = 50
    lanes = [NonceLane(n, node_count, g, n_groups)
             for n in range(node_count) for g in range(n_groups)]
    taken = [NonceStream(lane).take(per_lane) for lane in lanes]
    everything = np.concatenate(taken)

    # Then no nonce is taken twice, and together they are exactly 0 .. total-1
    assert len(np.unique(everything)) == len(everything)
    assert sorted(everything.tolist()) == list(range(len(lanes) * per_lane))


def test_a_stream_continues_where_it_stopped():
    lane = NonceLane(1, 2)
    stream = NonceStream(lane)
    first, second = stream.take(4), stream.take(3)
    assert np.concatenate([first, second]).tolist() == lane.batch(0, 7).tolist()
    assert stream.next_k == 7
    assert stream.take(0).tolist() == []


@pytest.mark.parametrize("args", [(1, 1), (-1, 2), (0, 0), (0, 1, 1, 1), (0, 1, -1, 2)])
def test_out_of_range_lanes_are_refused(args):
    with pytest.raises(NonceRangeError):
        NonceLane(*args)


def test_a_batch_past_the_largest_nonce_is_refused():
    lane = NonceLane(0, 1)
    assert lane.batch(MAX_NONCE, 1).tolist() == [MAX_NONCE]
    with pytest.raises(NonceRangeError):
        lane.batch(MAX_NONCE, 2)
