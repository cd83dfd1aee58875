"""training: captions -> labels, data, fine-tuning, evaluation, export to MLflow."""
