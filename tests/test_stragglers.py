"""FedProx-paper stragglers in plan_round (system.straggler_fraction / straggler_policy).

Hand check: 10 sampled clients, E = 20, every client 7 samples (n_k * E = 140). With fraction 1
every client is a straggler doing a uniform 1..19 epochs, so max_samples = 7 * epochs <= 133 < 140;
with 0.5 exactly round(10 * 0.5) = 5 are stragglers (the authors' count).
"""

import numpy as np
import pytest

from fedref_ray.config import SystemConfig
from fedref_ray.errors import UserError
from fedref_ray.system import ClientProfiles, plan_round

SIZES = np.full(30, 7)
SAMPLED = np.arange(0, 30, 3)  # 10 clients
E = 20


def plan(round_=1, seed=0, **system):
    cfg = SystemConfig(**system)
    profiles = ClientProfiles.draw(cfg, len(SIZES), seed)
    return plan_round(round_, SAMPLED, SIZES, E, 100, 100, cfg, profiles, seed)


def test_all_stragglers_partial_do_less_than_full_work():
    p = plan(straggler_fraction=1.0, straggler_policy="partial")
    assert len(p.tasks) == 10 and p.dropped == ()
    for t in p.tasks:
        assert t.max_samples is not None and t.max_samples < 7 * E
        assert t.max_samples % 7 == 0 and 1 <= t.max_samples // 7 <= E - 1


def test_all_stragglers_drop_are_all_dropped():
    p = plan(straggler_fraction=1.0, straggler_policy="drop")
    assert p.tasks == () and sorted(p.dropped) == SAMPLED.tolist()


def test_half_gives_exactly_five_stragglers():
    for r in range(1, 6):
        partial = plan(round_=r, straggler_fraction=0.5, straggler_policy="partial")
        assert sum(t.max_samples is not None for t in partial.tasks) == 5
        dropped = plan(round_=r, straggler_fraction=0.5, straggler_policy="drop")
        assert len(dropped.dropped) == 5 and len(dropped.tasks) == 5
        # the same clients straggle under both policies (as FedAvg and FedProx share them in the paper)
        assert sorted(dropped.dropped) == sorted(t.client_id for t in partial.tasks if t.max_samples is not None)


def test_fraction_zero_is_the_plain_plan():
    assert plan(straggler_fraction=0.0, straggler_policy="partial") == plan()
    assert plan(availability=0.5, faulty_fraction=0.3, straggler_fraction=0.0) == plan(
        availability=0.5, faulty_fraction=0.3
    )


def test_seeded_and_repeatable():
    a = plan(round_=3, seed=7, straggler_fraction=0.9, straggler_policy="partial")
    assert a == plan(round_=3, seed=7, straggler_fraction=0.9, straggler_policy="partial")
    others = [plan(round_=r, seed=7, straggler_fraction=0.9, straggler_policy="partial") for r in (4, 5, 6)]
    assert any(o.tasks != a.tasks for o in others)


@pytest.mark.parametrize(
    ("field", "value"), [("straggler_fraction", -0.1), ("straggler_fraction", 1.5), ("straggler_policy", "keep")]
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(UserError) as err:
        SystemConfig(**{field: value})
    assert f"system.{field}" in str(err.value) and "\n" not in str(err.value)
