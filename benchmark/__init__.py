"""dofbench's harness: CLI, configs, datasets, models, the shared training loop, grid runner, tracking."""
