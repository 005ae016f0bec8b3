"""The pruning callback on Keras' TensorFlow and JAX backends, with a real Optuna trial."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

# A fit of 5 epochs whose trial a pruner stops after epoch 2 (every report below 2.0 is
# pruned from step 2 on): the callback reports each epoch, and the fit
# ends after the epoch the pruner answered.
SCRIPT = textwrap.dedent(
    """
    import keras
    import numpy as np
    import optuna

    from alexnet_cifar10.pipelines.tune.callbacks import TrialPruning

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.ThresholdPruner(lower=2.0, n_warmup_steps=2)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    trial = study.ask()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.eye(2, dtype="float32")[np.arange(32) % 2]
    pruning = TrialPruning(trial, "val_accuracy")
    history = model.fit(x, y, validation_data=(x, y), epochs=5, verbose=0, callbacks=[pruning])
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    print(keras.backend.backend(), pruning.pruned_at, len(history.history["loss"]),
          sorted(study.trials[0].intermediate_values))
    """
)


@pytest.mark.parametrize("backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.slow)])
def test_a_pruned_trial_stops_the_fit_after_the_epoch_it_was_pruned(backend: str) -> None:
    pytest.importorskip(backend, reason=f"the {backend} backend is not installed here")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**os.environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[-2] == f"{backend} 2 2 [1, 2]"
