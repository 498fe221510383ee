"""The guard's settings: `[guard]` in the config file maps onto `GuardSettings`.

>>> GuardSettings(policy="promote").max_rollbacks
3
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drift.concept import DETECTORS

POLICIES = ("stay", "resume", "promote")


@dataclass(frozen=True)
class GuardSettings:
    """How the guard detects and decides; `[guard]` in the config file maps onto these fields."""

    enabled: bool = True  # automatic detection and decisions; manual commands work either way
    detector: str = "adwin"
    detector_params: dict = field(default_factory=dict)
    min_increase: float = 0.08  # classifiers: error-rate rise a concept alarm must show
    min_ratio: float = 1.5  # regressors: scaled-error ratio a concept alarm must show
    data_drift: bool = True
    reference_size: int = 1000
    data_window: int = 200
    check_every: int = 25
    psi_threshold: float = 0.25
    min_quarantine: int = 50  # labeled events before an automatic resolution
    max_quarantine: int = 5000  # labeled events before the policy applies
    policy: str = "stay"
    evidence_window: int = 500
    # labeled events a concept alarm waits, before it rolls back, for the restore point's model to
    # show the rise persists (0: no wait)
    persist_events: int = 100
    alpha: float = 0.01
    margin: float = 0.1  # relative loss improvement a challenger must show
    # In quarantine, a fresh model (untrained, the same spec) learns in shadow beside the candidate:
    # a learner that adapts slowly (a tree's settled leaves) may need to start over to follow a change.
    fresh_candidate: bool = True
    harmless_after: int = 1000  # labeled events proving a shift of the inputs does not hurt
    max_rollbacks: int = 3
    rollback_window: int = 20_000  # events
    parked_max: int = 3
    # labeled events after a promotion (parked models and the runner-up in shadow), a recall (the
    # displaced one) or an incident over (the candidate). Long enough for a rival that overtakes
    # late: drawn seed 5, sine gradual change / tree, the runner-up behind for 2,000 events and then
    # ahead did not win in 5,000 (1.73 points under no-guard) and won at 18,608 in 10,000.
    probation: int = 10_000
    lookback: int = 5000  # events: how far back an onset (and so a restore point) can lie

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}")
