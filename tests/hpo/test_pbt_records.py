"""Where a population stands, from its stored trials alone (mnist_hpo/hpo/pbt/_records.py).

Every worker decides from this snapshot, so these rules are what keeps two workers from running
one segment twice, or a crash from losing one: which trial is which member, which trial *is* a
segment when there are several, and when the next generation may start.
"""

from __future__ import annotations

from optuna.trial import TrialState

from mnist_hpo.hpo.pbt import Population, is_final, is_segment

C, R, W, F, P = TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL, TrialState.PRUNED


def test_generation_zeros_members_are_the_first_trials_made_and_one_more_is_surplus(pbt_cfg, segment):
    # 0 and 2 recorded their members; 1 and 3 were just made; 4 came from a worker racing another; 5 is queued later
    trials = [
        segment(0, 0),
        segment(1, None, state=R),
        segment(2, 2),
        segment(3, None, state=R),
        segment(4, None, state=R),
        segment(5, 0, 1, W, started=False),
    ]
    pop = Population(pbt_cfg, trials)
    assert [pop.key(t) for t in trials] == [(0, 0), (1, 0), (2, 0), (3, 0), None, (0, 1)]
    assert pop.missing_members() == 0 and pop.duplicate_of(trials[4]) is None


def test_a_retry_is_its_segment_and_the_crash_before_it_is_not(pbt_cfg, segment):
    trials = [
        segment(0, 0),
        segment(1, 1, state=F),
        segment(2, 2),
        segment(3, 3),
        segment(4, 1, state=W, failed_trial=1),
    ]
    pop = Population(pbt_cfg, trials)
    assert pop.canonical(1, 0).number == 4 and pop.status(1, 0) == "pending" and not pop.ended(0)
    done = Population(pbt_cfg, [*trials[:4], segment(4, 1, failed_trial=1)])
    assert done.status(1, 0) == "done" and done.ended(0)
    # a member that died before it recorded which it was: its retry is still that member
    early = Population(pbt_cfg, [segment(0, None, state=F), segment(1, None, state=W, failed_trial=0)])
    assert early.key(early.trials[1]) == (0, 0)


def test_a_crash_with_its_retry_not_yet_queued_is_pending_until_its_retries_are_spent(pbt_cfg, segment):
    pop = Population(pbt_cfg, [segment(0, 0, state=F)])
    assert pop.status(0, 0) == "pending"
    spent = Population(pbt_cfg, [segment(7, 0, state=F, failed_trial=1, retry_history=[1, 3, 5])])
    assert spent.status(0, 0) == "broken"  # its fourth crash: not retried again, the member copies another


def test_a_failed_or_diverged_segment_has_ended_broken(pbt_cfg, segment):
    trials = [segment(0, 0, error="RuntimeError: boom", state=F), segment(1, 1, state=P), segment(2, 2), segment(3, 3)]
    pop = Population(pbt_cfg, trials)
    assert [pop.status(m, 0) for m in range(4)] == ["broken", "broken", "done", "done"] and pop.ended(0)


def test_the_first_of_two_queued_copies_is_the_segment(pbt_cfg, segment):
    trials = [
        segment(0, 0, 1, W, started=False),
        segment(1, 0, 1, W, started=False),
        segment(2, 0, 1, F, started=False, discarded="a duplicate of trial 0"),
    ]
    pop = Population(pbt_cfg, trials)
    assert pop.duplicate_of(trials[1]).number == 0 and pop.duplicate_of(trials[0]) is None
    assert pop.canonical(0, 1).number == 0
    # the copy stays a copy whatever the first one's fate: a settled segment stays settled
    settled = Population(pbt_cfg, [segment(0, 0, 1), trials[1]])
    assert settled.status(0, 1) == "done" and settled.duplicate_of(trials[1]).number == 0


def test_a_segment_may_run_once_the_generation_before_it_has_ended(pbt_cfg, segment):
    gen0 = [segment(0, 0), segment(1, 1), segment(2, 2), segment(3, 3, state=R)]
    queued = segment(4, 0, 1, W, started=False)
    assert not Population(pbt_cfg, [*gen0, queued]).ready(queued)
    gen0[3] = segment(3, 3, error="ValueError: x", state=F)
    pop = Population(pbt_cfg, [*gen0, queued])
    assert pop.ready(queued) and not pop.finished


def test_a_population_is_finished_when_its_last_generation_has_ended(pbt_cfg, segment):
    trials = [segment(4 * g + m, m, g) for g in range(3) for m in range(4)]
    assert Population(pbt_cfg, trials).finished
    assert not Population(pbt_cfg, trials[:-1]).finished


def test_what_a_worker_that_died_for_good_left_undone_is_found(pbt_cfg, segment):
    # member 0's segment ended but its next was never queued (its worker's fourth crash); member 1 crashed
    # and its retry was never queued
    trials = [
        segment(0, 0, error="x", state=F),
        segment(1, 1, state=F),
        segment(2, 2),
        segment(3, 3),
        segment(4, 2, 1, W, started=False),
        segment(5, 3, 1, W, started=False),
    ]
    unqueued, unretried = Population(pbt_cfg, trials).lost()
    assert unqueued == [(0, 1)] and [t.number for t in unretried] == [1]


def test_segments_and_final_segments_are_told_apart(segment):
    queued = segment(0, 1, 2, W, started=False)
    assert not is_segment(queued) and is_segment(segment(1, 1, 2))
    last = segment(2, 1, 2)
    last.user_attrs["pbt"]["final"] = True
    middle = segment(3, 1, 1)
    middle.user_attrs["pbt"]["final"] = False
    assert is_final(last) and not is_final(middle)
    assert is_final(segment(4, None))  # a trial of a study without [pbt] ends its own training
