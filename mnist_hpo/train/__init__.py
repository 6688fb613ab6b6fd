"""Training a model, without Optuna: the epoch loops as plain functions (loops, classifier, gan) and several trials
trained at once as stacked tensors (stacked)."""
