"""Process fixtures: Ray head and worker nodes, MLflow servers; started per test, stopped by pid."""
