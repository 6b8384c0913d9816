"""Training the purchase model: examples, features, candidates and their fit, evaluation,
backtest, explanations and the train report."""
