"""The DCGAN of 128×128 grayscale MRI slices (Keras): config, models, training, the SWD/MS-SSIM metrics and
the Fréchet distance with the real-vs-real floors (``realism``).

Importing this package registers the ``dcgan`` task (``mritune.trainables.tasks``).
"""

from mritune.trainables.dcgan.config import DCGANConfig
from mritune.trainables.tasks import Task, register_task

GENERATOR_FILE = "generator.keras"
DISCRIMINATOR_FILE = "discriminator.keras"

TASK = register_task(Task(
    name="dcgan",
    config_class=DCGANConfig,
    train="mritune.trainables.dcgan.training:train_dcgan",
    evaluate_checkpoint="mritune.trainables.dcgan.evaluation:evaluate_generator_checkpoint",
    # Lower is better for the image metrics (SWD; FD; MS-SSIM between generated pairs, near 1 at mode collapse), the
    # floors (what real images score) and the losses; the discriminator's accuracies are listed as it sees them
    # (higher: it tells real from fake).
    epoch_metrics={
        "fd": "min", "swd": "min", "ms_ssim_diversity": "min", "gen_loss": "min", "disc_loss": "min",
        "d_real_acc": "max", "d_fake_acc": "max", "fd_floor": "min", "swd_floor": "min",
    },
    # The Fréchet distance chooses, ranks and gates, not SWD (benchmarks/dcgan_realism_gate.py, docs/outputs.md): SWD
    # scored an untrained generator's flat grey images better than a 1-epoch generator's for every training seed,
    # while FD ordered untrained > 1 epoch > 3 epochs for all of them, with a sixth of SWD's measurement noise
    # (coefficient of variation over noise draws 0.5% vs 3.2%) and a bootstrap resample in milliseconds, not half
    # a second. Search and gate read the same distance (validation fd, test test_fd): what is ranked is what is
    # registered and gated (platform/tracking/ranking.py).
    search_metric="fd",
    gate_metric="test_fd",
    gate_mode="min",
    progress_metrics=("gen_loss", "disc_loss", "fd", "swd", "ms_ssim_diversity"),
    model_name="mritune-dcgan",
    model_files=(GENERATOR_FILE, DISCRIMINATOR_FILE),
    test_resampler="mritune.trainables.dcgan.evaluation:generator_test_resampler",
    model_logging="mritune.deploy.task_logging:GENERATOR",
    # Each distance beside what real training images score against the same held-out images (realism.py).
    floor_metrics={"fd": "fd_floor", "swd": "swd_floor", "test_fd": "test_fd_floor", "test_swd": "test_swd_floor"},
    # train_dcgan sets both loaded optimizers' learning rates; every epoch reads the other three from the config.
    perturbable=("lr_g", "lr_d", "batch_size", "label_smoothing", "d_steps"),
))
